import type { Logger } from '../core/logger.js';

/**
 * Time how long a connection is held by one transaction or session. When it passes the target's
 * `leakWarning` threshold, log once where it was acquired, so a forgotten connection (a leak
 * that will later exhaust the pool) is found by its stack rather than by an outage.
 */
export async function watchHeld<T>(
  what: string,
  thresholdMs: number,
  logger: Logger,
  fields: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  if (!(thresholdMs > 0)) return fn();
  const acquiredAt = new Error('acquired here').stack?.split('\n').slice(2, 6).join('\n');
  const started = Date.now();
  const timer = setTimeout(() => {
    logger.warn(
      `${what} has held a connection for more than ${Math.round(thresholdMs / 1000)} s (possible leak)`,
      {
        ...fields,
        heldMs: Date.now() - started,
        acquiredAt,
      },
    );
  }, thresholdMs);
  timer.unref();
  try {
    return await fn();
  } finally {
    clearTimeout(timer);
  }
}
