import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff; doubles each retry, with full jitter, capped at 2 s. */
  baseDelayMs: number;
}

/**
 * Run `attempt` again when it fails with an error `isRetryable` accepts (serialization failure,
 * deadlock, busy). The database rolled the transaction back before we retry, so only the
 * transaction's own work is repeated. Full jitter keeps competing retries from colliding again.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  isRetryable: (err: unknown) => boolean,
  policy: RetryPolicy,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= policy.retries || !isRetryable(err)) throw err;
      const cap = Math.min(2000, policy.baseDelayMs * 2 ** n);
      await sleep(Math.random() * cap);
    }
  }
}
