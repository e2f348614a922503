/**
 * Redis connection role: one ioredis client (the only module that loads the driver), verified
 * with PING before it is handed out, with every failure diagnosed. ioredis reports a failed
 * AUTH or SELECT during connect as an 'error' event, not as a rejection, and a failed SELECT
 * even leaves a working client on db 0; so errors seen while connecting are collected and
 * checked after the PING.
 */
import { Redis } from 'ioredis';
import { redact } from '../../core/redact.js';
import type { ConnectContext, ConnectionRole, KeyValueConnection } from '../contract.js';
import { diagnoseRedisFailure, RedisConnectTimeout, type RedisEndpoint } from './redis-errors.js';
import { RedisKeyValueConnection } from './redis-kv-connection.js';
import { redisClientOptions, redisDbIndex } from './redis-options.js';

/** Opens `redis://` and `rediss://` (TLS) targets. */
export const redisConnectionRole: ConnectionRole = {
  connect: (ctx) => connectRedis(ctx),
};

async function connectRedis({ target, spec, logger }: ConnectContext): Promise<KeyValueConnection> {
  const endpoint: RedisEndpoint = {
    target: target.name,
    host: spec.host ?? '127.0.0.1',
    port: spec.port ?? 6379,
    ...(spec.user ? { user: spec.user } : {}),
    db: redisDbIndex(spec),
    timeoutMs: target.options.connectTimeoutMs,
  };
  let verified = false;
  const client = new Redis(redisClientOptions(target, spec, () => verified));
  const connectErrors: Error[] = [];
  // A listener must exist, or ioredis prints "[ioredis] Unhandled error event" to the console.
  client.on('error', (err: Error) => {
    if (!verified) connectErrors.push(err);
    logger.debug('redis client error', { target: target.name, error: redact(err.message) });
  });

  try {
    await withTimeout(
      client.connect().then(() => client.call('PING')),
      target.options.connectTimeoutMs,
    );
    const [replyError] = connectErrors.filter((e) => e.name === 'ReplyError');
    if (replyError) throw replyError;
  } catch (err) {
    client.disconnect();
    // "Connection is closed." is ioredis's summary; the error event said why.
    throw diagnoseRedisFailure(
      err instanceof RedisConnectTimeout ? err : (connectErrors[0] ?? err),
      endpoint,
    );
  }
  verified = true;
  logger.debug('redis connected', { target: target.name, db: endpoint.db });
  return new RedisKeyValueConnection(client, endpoint);
}

/** Reject with {@link RedisConnectTimeout} when `promise` takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  // The loser of the race may still reject later; that must not become an unhandled rejection.
  promise.catch(() => undefined);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisConnectTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
