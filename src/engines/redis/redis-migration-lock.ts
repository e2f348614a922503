/**
 * The Redis migration lock: one string key per logical database, `dbward:migrate:lock`, shared by
 * migrations and seeds whatever their tracking key. It is taken with `SET NX PX <ttl>` and its
 * value names the holder (token, pid, host, since). The holder renews the expiry on a timer; a
 * process that dies stops renewing, so its lock disappears by itself at most one TTL later and
 * never blocks the next deploy. Renewal and release compare the value first (in a Lua script, so
 * the compare and the write are one atomic step): a run never extends or frees someone else's lock.
 */
import { DbwardError, isDbwardError, QueryError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { formatDuration } from '../../core/duration.js';
import type { KeyValueConnection, LockHolder, LockOwner, MigrationLock } from '../contract.js';

/** The lock's key: one per logical database, whatever the tracking key is called. */
export const redisLockKey = 'dbward:migrate:lock';

export interface RedisLockSettings {
  /** The key's expiry; a holder that stops renewing loses the lock this long after its last renewal. */
  lockTtlMs: number;
  /** How often a holder pushes the expiry back to `lockTtlMs`. */
  renewEveryMs: number;
  /** How long a waiting run sleeps between attempts. */
  retryDelayMs: number;
}

// Compare-and-act: the value holds the random token, so equal values mean the lock is still ours.
const renewScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;
const releaseScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

interface LockValue {
  token: string;
  pid: number;
  host: string;
  since: string;
}

/**
 * Take the lock for `owner`, retrying every `retryDelayMs` until `timeoutMs` has passed (0: try
 * once); then throw E_MIGRATION_LOCKED naming the holder.
 */
export async function acquireRedisLock(
  conn: KeyValueConnection,
  options: { timeoutMs: number; owner: LockOwner },
  settings: RedisLockSettings,
): Promise<RedisMigrationLock> {
  const { token, pid, host } = options.owner;
  const deadline = Date.now() + Math.max(0, options.timeoutMs);
  for (;;) {
    const value: LockValue = { token, pid, host, since: new Date().toISOString() };
    const serialized = JSON.stringify(value);
    const reply = await conn.command('SET', redisLockKey, serialized, 'NX', 'PX', settings.lockTtlMs);
    if (reply === 'OK') return new RedisMigrationLock(conn, serialized, settings);
    const left = deadline - Date.now();
    if (left <= 0) throw await lockedError(conn, settings);
    await new Promise((resolve) => setTimeout(resolve, Math.min(settings.retryDelayMs, left)));
  }
}

/** The current holder, or null when the key does not exist. */
export async function redisLockHolder(conn: KeyValueConnection): Promise<LockHolder | null> {
  return (await readHolder(conn))?.holder ?? null;
}

/** Delete the lock key whoever holds it; true when there was one. */
export async function breakRedisLock(conn: KeyValueConnection): Promise<boolean> {
  return Number(await conn.command('DEL', redisLockKey)) > 0;
}

/** The holder plus the key's remaining life in ms (-1: the key has no expiry). */
async function readHolder(conn: KeyValueConnection): Promise<{ holder: LockHolder; pttl: number } | null> {
  let raw: unknown;
  try {
    raw = await conn.command('GET', redisLockKey);
  } catch (err) {
    if (!(err instanceof QueryError && err.sqlState === 'WRONGTYPE')) throw err;
    const type = String(await conn.command('TYPE', redisLockKey));
    const pttl = Number(await conn.command('PTTL', redisLockKey));
    return { holder: unknownHolder(`a ${type} that is not dbward's lock`), pttl };
  }
  if (raw === null || raw === undefined) return null;
  const pttl = Number(await conn.command('PTTL', redisLockKey));
  const value = parseLockValue(String(raw));
  if (!value) return { holder: unknownHolder("a value that is not dbward's lock"), pttl };
  return {
    holder: {
      pid: value.pid,
      host: value.host,
      since: value.since,
      description: `pid ${value.pid} on ${value.host} since ${value.since}`,
    },
    pttl,
  };
}

function unknownHolder(what: string): LockHolder {
  return { pid: null, host: null, since: null, description: `the key ${redisLockKey} holds ${what}` };
}

function parseLockValue(raw: string): LockValue | null {
  try {
    const v = JSON.parse(raw) as Partial<LockValue> | null;
    if (
      v !== null &&
      typeof v === 'object' &&
      typeof v.token === 'string' &&
      typeof v.pid === 'number' &&
      typeof v.host === 'string' &&
      typeof v.since === 'string'
    ) {
      return { token: v.token, pid: v.pid, host: v.host, since: v.since };
    }
  } catch {
    // Not JSON: someone else's key with our name.
  }
  return null;
}

async function lockedError(conn: KeyValueConnection, settings: RedisLockSettings): Promise<DbwardError> {
  const where = await databaseName(conn);
  // The holder may have released it between our SET and this read.
  const found = await readHolder(conn).catch(() => null);
  const who = found?.holder.description ?? 'a run that has just released it (try again)';
  const expiry =
    found?.pttl === -1
      ? 'This key has no expiry, so it will not go away by itself.'
      : `The lock also expires by itself ${formatDuration(settings.lockTtlMs)} after its holder stops renewing it.`;
  return new DbwardError('E_MIGRATION_LOCKED', `Another migration run holds the lock on ${where}: ${who}`, {
    hint: `Wait for it to finish, or if that process is gone run \`dbward migrate unlock\`. ${expiry}`,
    exitCode: ExitCode.failed,
    context: { engine: 'redis', operation: 'migrate' },
  });
}

/** `Redis database <n>` from CLIENT INFO (Redis ≥ 6.2); a generic name when it cannot be read. */
async function databaseName(conn: KeyValueConnection): Promise<string> {
  try {
    const db = /\bdb=(\d+)/.exec(String(await conn.command('CLIENT', 'INFO')))?.[1];
    if (db !== undefined) return `Redis database ${db}`;
  } catch {
    // Older server, or CLIENT not allowed for this user.
  }
  return 'this Redis database';
}

/** A held lock: pushes its expiry back every `renewEveryMs` until released or lost. */
export class RedisMigrationLock implements MigrationLock {
  readonly #conn: KeyValueConnection;
  readonly #value: string;
  readonly #ttlMs: number;
  readonly #timer: NodeJS.Timeout;
  #stopped = false;
  #renewing = false;
  #lost = false;
  #released = false;

  constructor(conn: KeyValueConnection, value: string, settings: RedisLockSettings) {
    this.#conn = conn;
    this.#value = value;
    this.#ttlMs = settings.lockTtlMs;
    // unref: a forgotten release must not keep the process alive; the key then simply expires.
    this.#timer = setInterval(() => void this.#renew(), settings.renewEveryMs).unref();
  }

  /**
   * True once a renewal found the key gone or someone else's: the lock was broken
   * (`dbward migrate unlock`) or expired because renewals did not reach the server in time.
   */
  get lost(): boolean {
    return this.#lost;
  }

  async release(): Promise<void> {
    this.#stop();
    if (this.#released) return;
    try {
      // Compare-and-delete: if the lock was broken and taken by another run, theirs stays.
      await this.#conn.command('EVAL', releaseScript, 1, redisLockKey, this.#value);
    } catch (err) {
      // A closed or unreachable connection cannot renew either: the key expires by itself.
      if (!isGoneError(err)) throw err;
    }
    this.#released = true;
  }

  async #renew(): Promise<void> {
    // A slow server must not pile renewals up; the next tick tries again.
    if (this.#stopped || this.#renewing) return;
    this.#renewing = true;
    try {
      const renewed = await this.#conn.command(
        'EVAL',
        renewScript,
        1,
        redisLockKey,
        this.#value,
        this.#ttlMs,
      );
      if (Number(renewed) !== 1 && !this.#stopped) {
        this.#lost = true;
        this.#stop();
      }
    } catch (err) {
      // Unreachable for a moment: retried at the next tick (the TTL outlasts a few missed ones).
      if (isClosedError(err)) this.#stop();
    } finally {
      this.#renewing = false;
    }
  }

  #stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }
}

function isClosedError(err: unknown): boolean {
  return isDbwardError(err) && err.code === 'E_CLOSED';
}

function isGoneError(err: unknown): boolean {
  return isClosedError(err) || (isDbwardError(err) && err.exitCode === ExitCode.cannotConnect);
}
