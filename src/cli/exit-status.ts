import { ExitCode, type ExitCodeValue } from '../core/exit-codes.js';
import type { TargetResult } from '../connect/per-target.js';

/**
 * The exit code for a run over many targets: 0 when all succeeded, otherwise the most severe
 * failure — cannot connect (3) over usage/config (2) over failed (1) — so a script can tell
 * "down" from "misconfigured" from "found problems".
 */
export function worstExitCode(results: readonly TargetResult<unknown>[]): ExitCodeValue {
  let worst: ExitCodeValue = ExitCode.ok;
  for (const r of results) {
    if (!r.ok && r.error.exitCode > worst) worst = r.error.exitCode as ExitCodeValue;
  }
  return worst;
}
