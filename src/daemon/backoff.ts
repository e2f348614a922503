/** Waiting between retries: exponential backoff with a cap, and a sleep that a stop cuts short. */
import { setTimeout as sleep } from 'node:timers/promises';

/** The wait before retry `retry` (1 = the first): `baseMs × 2^(retry-1)`, at most `maxMs`. */
export function backoffDelay(retry: number, baseMs: number, maxMs: number): number {
  return Math.min(baseMs * 2 ** (retry - 1), maxMs);
}

/** Resolves after `ms`, or as soon as `signal` aborts (true when the whole wait passed). */
export async function waitUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false; // aborted: the only way this sleep rejects
  }
}
