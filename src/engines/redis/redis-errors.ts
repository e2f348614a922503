/**
 * Redis and ioredis errors to dbward errors. Redis replies carry their class as the first word
 * (`WRONGPASS …`, `NOPERM …`, `ERR DB index is out of range`); socket errors carry a Node code.
 */
import { diagnoseConnectionFailure } from '../../core/connection-diagnosis.js';
import {
  DbwardError,
  QueryError,
  type ConnectionError,
  type ConnectionFailureKind,
} from '../../core/errors.js';

export interface RedisEndpoint {
  target: string;
  host: string;
  port: number;
  user?: string;
  db: number;
  timeoutMs: number;
}

/** Thrown by our own connect timer (the server accepted TCP but never answered). */
export class RedisConnectTimeout extends Error {
  constructor() {
    super('no reply before the connect timeout');
  }
}

/** Why a connection failed, from the error ioredis gave us. */
export function redisFailureKind(err: unknown): ConnectionFailureKind {
  if (err instanceof RedisConnectTimeout) return 'timeout';
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'unknown-host';
  if (code === 'ETIMEDOUT' || /ETIMEDOUT/.test(message)) return 'timeout';
  if (/^(WRONGPASS|NOAUTH)|invalid password|invalid username-password/i.test(message)) return 'auth-failed';
  if (/DB index is out of range|invalid DB index/i.test(message)) return 'unknown-database';
  if (/max number of clients reached/i.test(message)) return 'too-many-connections';
  if (/^NOPERM/.test(message)) return 'permission-denied';
  if (
    /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code) ||
    /\b(SSL|TLS)\b/.test(message)
  ) {
    return 'tls';
  }
  return 'unknown';
}

/** A diagnosed ConnectionError for a failed connect or ping. */
export function diagnoseRedisFailure(err: unknown, endpoint: RedisEndpoint): ConnectionError {
  return diagnoseConnectionFailure({
    kind: redisFailureKind(err),
    engine: 'redis',
    target: endpoint.target,
    host: endpoint.host,
    port: endpoint.port,
    ...(endpoint.user ? { user: endpoint.user } : {}),
    database: String(endpoint.db),
    serverMessage: err instanceof Error ? err.message : String(err),
    timeoutMs: endpoint.timeoutMs,
    cause: err,
  });
}

/**
 * A failed command: an error reply becomes a QueryError whose sqlState is the reply's class
 * (`ERR`, `WRONGTYPE`, `NOPERM`); anything else means the connection failed and is diagnosed.
 */
export function toRedisCommandError(err: unknown, command: string, endpoint: RedisEndpoint): Error {
  if (err instanceof DbwardError) return err;
  if (err instanceof Error && err.name === 'ReplyError') {
    return new QueryError(`Redis ${command.toUpperCase()}: ${err.message}`, {
      sqlState: /^[A-Z]+/.exec(err.message)?.[0],
      cause: err,
      context: { engine: 'redis', target: endpoint.target, operation: command.toLowerCase() },
    });
  }
  return diagnoseRedisFailure(err, endpoint);
}
