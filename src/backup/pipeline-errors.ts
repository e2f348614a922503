/**
 * When one stage of a streaming pipeline fails, every other stage fails too — with "premature
 * close", EPIPE, an aborted upload, a killed dump tool. Only the first real failure tells the user
 * what to do; the rest are echoes of it.
 */
import { isDbwardError } from '../core/errors.js';

const echoCodes = new Set([
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_STREAM_UNABLE_TO_PIPE',
  'EPIPE',
  'ECONNRESET',
  'ABORT_ERR',
]);

/** True for errors that only say another stage went away. */
export function isEcho(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (name === 'AbortError') return true;
  return typeof code === 'string' && echoCodes.has(code);
}

/** The error that caused the others: the first (in the order they happened) that is not an echo. */
export function firstCause(errors: readonly unknown[]): unknown {
  return errors.find((e) => !isEcho(e)) ?? errors.find((e) => isDbwardError(e)) ?? errors[0];
}

/**
 * Wait for every promise to settle. When one fails, call `onFailure` once (to stop the dump, so
 * the rest settle promptly) and throw the failure that caused the others: the first that is not
 * an echo ({@link firstCause}), ignoring failures of the `aborted` keys (the dump we stopped
 * ourselves) that came after `onFailure` — unless nothing else failed.
 */
export async function settleAll<T extends Record<string, Promise<unknown>>>(
  promises: T,
  onFailure: () => void,
  abortedKeys: readonly string[] = ['dump'],
): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
  const failures: { key: string; afterAbort: boolean; error: unknown }[] = [];
  let aborted = false;
  const entries = Object.entries(promises).map(([key, promise]) =>
    promise.then(
      (value) => [key, value] as const,
      (error: unknown) => {
        failures.push({ key, afterAbort: aborted, error });
        if (!aborted) {
          aborted = true;
          onFailure();
        }
        return [key, undefined] as const;
      },
    ),
  );
  const settled = await Promise.all(entries);
  if (failures.length > 0) {
    const primary = failures.filter((f) => !(f.afterAbort && abortedKeys.includes(f.key)));
    throw firstCause((primary.length > 0 ? primary : failures).map((f) => f.error));
  }
  return Object.fromEntries(settled) as { [K in keyof T]: Awaited<T[K]> };
}
