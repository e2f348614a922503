/**
 * Redis migration store role. Applied migrations are one hash per tracking "table" (the
 * `--migrations-table` name is the key: `dbward_migrations`, `dbward_seeds`), field = version,
 * value = the AppliedMigration row as JSON. The lock is a separate key with an expiry, see
 * redis-migration-lock.ts. Redis has no transactions a migration script could run in, so rows
 * are written on the connection itself, after the script.
 */
import { DbwardError, QueryError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { compareVersions } from '../../migrate/migration-file.js';
import type { AppliedMigration, KeyValueConnection, KeyValueMigrationStoreRole } from '../contract.js';
import {
  acquireRedisLock,
  breakRedisLock,
  redisLockHolder,
  type RedisLockSettings,
} from './redis-migration-lock.js';

export type RedisMigrationStoreOptions = Partial<RedisLockSettings>;

const defaults: RedisLockSettings = { lockTtlMs: 30_000, renewEveryMs: 10_000, retryDelayMs: 100 };

/**
 * A Redis migration store with its own lock timings (tests use short ones). The renewal interval
 * must be shorter than the TTL, or the lock would expire between renewals.
 */
export function createRedisMigrationStore(
  options: RedisMigrationStoreOptions = {},
): KeyValueMigrationStoreRole {
  const settings: RedisLockSettings = { ...defaults, ...options };
  const { lockTtlMs, renewEveryMs, retryDelayMs } = settings;
  if (!(lockTtlMs >= 1 && renewEveryMs >= 1 && retryDelayMs >= 0 && renewEveryMs < lockTtlMs)) {
    throw new RangeError(
      `Invalid Redis lock timings (ttl ${lockTtlMs} ms, renew every ${renewEveryMs} ms, retry ${retryDelayMs} ms): ` +
        'the renewal interval must be positive and shorter than the TTL.',
    );
  }
  return {
    async ensureStore(conn, table) {
      // A hash appears with its first HSET; only a key of another type is in the way.
      await assertHashOrMissing(conn, table);
    },

    async listApplied(conn, table) {
      let reply: unknown;
      try {
        reply = await conn.command('HGETALL', table);
      } catch (err) {
        if (err instanceof QueryError && err.sqlState === 'WRONGTYPE') await assertHashOrMissing(conn, table);
        throw err;
      }
      // A missing key reads as an empty hash: `migrate status` on a fresh database creates nothing.
      const flat = Array.isArray(reply) ? reply.map(String) : [];
      const rows: AppliedMigration[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) rows.push(parseRow(table, flat[i]!, flat[i + 1]!));
      return rows.sort((a, b) => compareVersions(a.version, b.version));
    },

    async recordApplied(session, table, row) {
      // HSET replaces the field, so a resumed `partial` migration overwrites its earlier row.
      await session.command('HSET', table, row.version, JSON.stringify(toStored(row)));
    },

    async removeApplied(session, table, version) {
      await session.command('HDEL', table, version);
    },

    acquireLock: (conn, options) => acquireRedisLock(conn, options, settings),
    lockHolder: redisLockHolder,
    breakLock: breakRedisLock,
  };
}

/** The store `dbward migrate` uses: 30 s lock TTL, renewed every 10 s. */
export const redisMigrationStoreRole: KeyValueMigrationStoreRole = createRedisMigrationStore();

async function assertHashOrMissing(conn: KeyValueConnection, key: string): Promise<void> {
  const type = String(await conn.command('TYPE', key));
  if (type === 'none' || type === 'hash') return;
  throw new DbwardError(
    'E_MIGRATION_STORE',
    `The Redis key "${key}" is taken by a ${type}, so dbward cannot record migrations in it.`,
    {
      hint: 'Choose another name for the tracking key with --migrations-table.',
      exitCode: ExitCode.failed,
      context: { engine: 'redis', operation: 'migrate' },
    },
  );
}

// Explicit field order, so the stored JSON is the same whatever order the caller built the row in.
function toStored(row: AppliedMigration): AppliedMigration {
  return {
    version: row.version,
    name: row.name,
    checksum: row.checksum,
    appliedAt: row.appliedAt,
    durationMs: row.durationMs,
    appliedBy: row.appliedBy,
    dbwardVersion: row.dbwardVersion,
    statementsApplied: row.statementsApplied,
    statementsTotal: row.statementsTotal,
    status: row.status,
  };
}

const stringFields = ['name', 'checksum', 'appliedAt', 'appliedBy', 'dbwardVersion'] as const;
const numberFields = ['durationMs', 'statementsApplied', 'statementsTotal'] as const;

/** One hash field's JSON as an AppliedMigration; a DbwardError naming key and field when it is not one. */
function parseRow(key: string, field: string, raw: string): AppliedMigration {
  let value: unknown;
  let problem: string | null = null;
  try {
    value = JSON.parse(raw);
  } catch {
    problem = 'is not JSON';
  }
  if (problem === null) problem = rowProblem(value, field);
  if (problem !== null) {
    throw new DbwardError(
      'E_MIGRATION_STORE',
      `The tracking key "${key}" has a malformed entry: field "${field}" ${problem}.`,
      {
        hint:
          `Fix or delete that field (HDEL ${key} ${field}) if something other than dbward wrote it; ` +
          'each value is the JSON of one applied migration.',
        exitCode: ExitCode.failed,
        context: { engine: 'redis', operation: 'migrate' },
      },
    );
  }
  return toStored(value as AppliedMigration);
}

function rowProblem(value: unknown, field: string): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'is not a JSON object';
  const row = value as Record<string, unknown>;
  if (row.version !== field) return `has version ${JSON.stringify(row.version)}, not "${field}"`;
  for (const name of stringFields) {
    if (typeof row[name] !== 'string') return `has no string "${name}"`;
  }
  for (const name of numberFields) {
    if (typeof row[name] !== 'number' || !Number.isFinite(row[name])) return `has no number "${name}"`;
  }
  if (row.status !== 'applied' && row.status !== 'partial')
    return 'has a status other than applied or partial';
  return null;
}
