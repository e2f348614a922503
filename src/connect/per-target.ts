import { DbwardError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import type { Target } from '../core/target.js';

/** The outcome of one operation on one target: a value, or the error, never both. */
export type TargetResult<T> =
  | { target: string; ok: true; value: T }
  | { target: string; ok: false; error: { code: string; message: string; hint?: string; exitCode: number } };

/**
 * Run `op` on every target, a few at a time, and return one result per target in the targets'
 * order. A failure on one target is recorded and the others carry on: one bad database must not
 * hide the state of the rest. `onError` sees each original error (e.g. to log its stack).
 */
export async function forEachTarget<T>(
  targets: readonly Target[],
  op: (target: Target) => Promise<T>,
  options: { concurrency?: number; onError?: (target: Target, err: unknown) => void } = {},
): Promise<TargetResult<T>[]> {
  const concurrency = options.concurrency ?? 4;
  const results: TargetResult<T>[] = new Array<TargetResult<T>>(targets.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const i = next++;
      const target = targets[i]!;
      try {
        results[i] = { target: target.name, ok: true, value: await op(target) };
      } catch (err) {
        options.onError?.(target, err);
        results[i] = { target: target.name, ok: false, error: serializeError(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
  return results;
}

/** A plain, redacted form of any error, for results and `--json`. */
export function serializeError(err: unknown): {
  code: string;
  message: string;
  hint?: string;
  exitCode: number;
} {
  if (err instanceof DbwardError) {
    const { code, message, hint, exitCode } = err.toJSON();
    return { code, message, ...(hint ? { hint } : {}), exitCode };
  }
  return {
    code: 'E_UNEXPECTED',
    message: redact(err instanceof Error ? err.message : String(err)),
    exitCode: 1,
  };
}
