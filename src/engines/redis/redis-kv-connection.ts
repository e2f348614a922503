/**
 * The KeyValueConnection contract over one ioredis client. Redis multiplexes every command on
 * one socket, so "the pool" is that one client: it is never checked out, only busy or idle.
 */
import type { Redis } from 'ioredis';
import { DbwardError } from '../../core/errors.js';
import type { KeyValueConnection, PoolStats } from '../contract.js';
import { diagnoseRedisFailure, toRedisCommandError, type RedisEndpoint } from './redis-errors.js';
import { parseRedisInfo } from './redis-info.js';

// QUIT waits for the server's reply; past this, the socket is simply dropped.
const quitTimeoutMs = 1_000;

export class RedisKeyValueConnection implements KeyValueConnection {
  readonly kind = 'keyvalue' as const;
  readonly #client: Redis;
  readonly #endpoint: RedisEndpoint;
  #inFlight = 0;
  #closed = false;

  constructor(client: Redis, endpoint: RedisEndpoint) {
    this.#client = client;
    this.#endpoint = endpoint;
  }

  async command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown> {
    this.#assertOpen();
    this.#inFlight++;
    try {
      return await this.#client.call(name, ...args);
    } catch (err) {
      throw toRedisCommandError(err, name, this.#endpoint);
    } finally {
      this.#inFlight--;
    }
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    try {
      await this.#client.call('PING');
    } catch (err) {
      throw diagnoseRedisFailure(err, this.#endpoint);
    }
  }

  async serverVersion(): Promise<string> {
    const info = parseRedisInfo(String(await this.command('INFO', 'server')));
    return info.get('redis_version') ?? 'unknown';
  }

  poolStats(): PoolStats {
    const total = !this.#closed && this.#client.status === 'ready' ? 1 : 0;
    const inUse = total && this.#inFlight > 0 ? 1 : 0;
    return { max: 1, total, idle: total - inUse, inUse, waiting: 0 };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#client.quit(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('QUIT timed out')), quitTimeoutMs);
        }),
      ]);
    } catch {
      // Not connected, or the server did not answer QUIT: closing the socket is all that is left.
    } finally {
      clearTimeout(timer);
      this.#client.disconnect();
    }
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new DbwardError('E_CLOSED', 'This Redis connection has been closed.', {
        hint: 'Open a new connection; close() ends a handle for good.',
        context: { engine: 'redis', target: this.#endpoint.target },
      });
    }
  }
}
