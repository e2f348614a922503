import { ExitCode, type ExitCodeValue } from '../core/exit-codes.js';
import type { TargetResult } from '../connect/per-target.js';

/**
 * The exit code for a run over many targets: 0 when all succeeded, otherwise the most severe
 * failure (cannot connect > failed), so a script can tell "down" from "found problems".
 */
export function worstExitCode(results: readonly TargetResult<unknown>[]): ExitCodeValue {
  let worst: ExitCodeValue = ExitCode.ok;
  for (const r of results) {
    if (r.ok) continue;
    if (r.error.exitCode === ExitCode.cannotConnect) return ExitCode.cannotConnect;
    worst = ExitCode.failed;
  }
  return worst;
}
