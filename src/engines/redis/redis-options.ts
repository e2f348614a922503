/**
 * From a parsed `redis://` / `rediss://` URL and a target to ioredis options. Kept apart from
 * the connection so inspect can learn the db index without loading the driver.
 */
import type { RedisOptions } from 'ioredis';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { ConfigError } from '../../core/errors.js';
import type { Target } from '../../core/target.js';

/** The logical database a URL selects (`redis://host/3` → 3; none → 0). */
export function redisDbIndex(spec: ConnectionSpec): number {
  if (spec.database === undefined || spec.database === '') return 0;
  if (!/^\d+$/.test(spec.database)) {
    throw new ConfigError(`The Redis database in the URL must be a number, not "${spec.database}".`, {
      hint: 'Redis databases are numbered: use redis://host:6379/0 (or leave the path empty for db 0).',
    });
  }
  return Number(spec.database);
}

/**
 * ioredis options for one verified client. `retryStrategy` receives `isVerified`: before the
 * first successful PING it returns null (no retry), so an unreachable server fails the connect
 * at once instead of ioredis reconnecting forever; afterwards dropped connections are retried
 * with a capped backoff, which is what a long-running watcher wants.
 */
export function redisClientOptions(
  target: Target,
  spec: ConnectionSpec,
  isVerified: () => boolean,
): RedisOptions {
  const { create: _create, ...driver } = target.options.driver;
  return {
    host: spec.host ?? '127.0.0.1',
    port: spec.port ?? 6379,
    ...(spec.user ? { username: spec.user } : {}),
    ...(spec.password ? { password: spec.password } : {}),
    db: redisDbIndex(spec),
    ...(spec.scheme === 'rediss' ? { tls: {} } : {}),
    connectTimeout: target.options.connectTimeoutMs,
    // A command fails after one reconnect attempt rather than hanging a check.
    maxRetriesPerRequest: 1,
    // Commands issued while disconnected fail at once instead of piling up in memory.
    enableOfflineQueue: false,
    // Commands issued in the same tick go out in one write: inspect's TYPE/PTTL/MEMORY USAGE
    // batches cost one round trip each, not one per key.
    enableAutoPipelining: true,
    // connect() verifies with PING itself. ioredis's INFO-based ready check would print a
    // console warning for ACL users without INFO, and only adds a wait while the server loads
    // its dataset (PING then fails with LOADING, which says so).
    enableReadyCheck: false,
    ...(driver as Partial<RedisOptions>),
    lazyConnect: true,
    retryStrategy: (times) => (isVerified() ? Math.min(times * 200, 2_000) : null),
  };
}
