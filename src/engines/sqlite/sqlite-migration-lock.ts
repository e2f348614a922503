/**
 * The SQLite migration lock. SQLite has no advisory locks and no server that notices a dead
 * client, so the lock is a row (id = 1) in `dbward_migration_lock`, read and written inside
 * BEGIN IMMEDIATE: the write lock makes "is it free? then take it" atomic across processes.
 * The row names its holder (token, pid, host, since) and carries a heartbeat, so a lock left by a
 * process that died is taken over instead of blocking the next deploy forever.
 */
import { hostname } from 'node:os';
import { DbwardError, isDbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { processStartTimeMs } from '../../core/process-start-time.js';
import type { LockHolder, LockOwner, MigrationLock, SqlConnection, SqlSession } from '../contract.js';
import { isSqliteBusy } from './sqlite-errors.js';

/** The lock table's name: one per database file, whatever the tracking table is called. */
export const sqliteLockTable = 'dbward_migration_lock';
/** How often a holder renews its heartbeat. */
export const heartbeatIntervalMs = 30_000;
/** A heartbeat older than this marks the holder as gone (several missed beats, not one slow one). */
export const staleAfterMs = 120_000;
// Short enough that a waiting run starts soon after the holder releases; each try is one tiny transaction.
const retryDelayMs = 100;

interface LockRow {
  token: string;
  pid: number;
  host: string;
  since: string;
  heartbeat: string;
}

const table = `"${sqliteLockTable}"`;

/** Create the lock table when missing (idempotent; CREATE … IF NOT EXISTS is safe to race). */
export async function ensureLockTable(conn: SqlConnection): Promise<void> {
  await conn.query(`CREATE TABLE IF NOT EXISTS ${table} (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    since TEXT NOT NULL,
    heartbeat TEXT NOT NULL
  )`);
}

/**
 * Take the lock for `owner`, retrying every ~100 ms until `timeoutMs` has passed; then throw
 * E_MIGRATION_LOCKED naming the holder. A stale holder (see {@link isStaleHolder}) is replaced.
 */
export async function acquireSqliteLock(
  conn: SqlConnection,
  options: { timeoutMs: number; owner: LockOwner },
): Promise<MigrationLock> {
  const { owner } = options;
  await ensureLockTable(conn);
  const deadline = Date.now() + Math.max(0, options.timeoutMs);
  let holder: LockRow | null = null;
  for (;;) {
    try {
      holder = await conn.withTransaction((session) => takeUnlessHeld(session, owner));
      if (holder === null) return new SqliteMigrationLock(conn, owner.token);
    } catch (err) {
      // Another connection kept the write lock past busy_timeout: just another reason to wait.
      if (!isSqliteBusy(err)) throw err;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw await lockedError(conn, holder);
    await new Promise((resolve) => setTimeout(resolve, Math.min(retryDelayMs, left)));
  }
}

/** The current lock row as a LockHolder, or null when nobody holds it (or the table is missing). */
export async function sqliteLockHolder(conn: SqlConnection): Promise<LockHolder | null> {
  if (!(await lockTableExists(conn))) return null;
  const row = await readLockRow(conn);
  // `stale` is what the next acquireLock would judge: it takes such a lock over by itself.
  return row ? { ...toLockHolder(row), stale: isStaleHolder(row) } : null;
}

/**
 * Delete the lock row, inside BEGIN IMMEDIATE like every other change to it, whoever holds it.
 * A holder still running is not stopped: its heartbeat and release() only touch a row with its
 * own token, so they leave a later holder's row alone. False when there was no row.
 */
export async function breakSqliteLock(conn: SqlConnection): Promise<boolean> {
  if (!(await lockTableExists(conn))) return false;
  return conn.withTransaction(async (session) => {
    const { rows } = await session.query<{ found: number }>(`SELECT 1 AS found FROM ${table} WHERE id = 1`);
    if (rows.length === 0) return false;
    await session.query(`DELETE FROM ${table} WHERE id = 1`);
    return true;
  });
}

async function lockTableExists(conn: SqlConnection): Promise<boolean> {
  const { rows } = await conn.query<{ found: number }>(
    "SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = ?",
    [sqliteLockTable],
  );
  return rows.length > 0;
}

/**
 * True when the row's holder is certainly gone.
 *
 * - On this host the process table decides: a pid that no longer exists is gone; a pid that
 *   exists but started after the lock was taken belongs to another process (the pid was reused),
 *   so the holder is gone too; a pid that started before is the holder itself, alive however
 *   long its migration runs. (The heartbeat cannot be renewed during one long migration: the
 *   migration's transaction has SQLite's only write lock. Trusting it here would let a second
 *   run take the lock from a live one after two minutes.)
 * - On other hosts, or where start times cannot be read, a heartbeat older than
 *   {@link staleAfterMs} marks the holder as gone.
 */
export function isStaleHolder(
  row: { pid: number; host: string; since?: string; heartbeat: string },
  now = Date.now(),
): boolean {
  if (row.host === hostname()) {
    if (!isProcessAlive(row.pid)) return true;
    const started = processStartTimeMs(row.pid);
    const since = row.since === undefined ? NaN : Date.parse(row.since);
    // One second of slack: tick rounding, and clocks adjusted while the holder runs.
    if (started !== null && !Number.isNaN(since)) return started > since + 1_000;
  }
  const beat = Date.parse(row.heartbeat);
  return Number.isNaN(beat) || now - beat > staleAfterMs;
}

/** Inside BEGIN IMMEDIATE: write our row unless a live holder has it; return that holder, or null. */
async function takeUnlessHeld(session: SqlSession, owner: LockOwner): Promise<LockRow | null> {
  const current = await readLockRow(session);
  if (current && current.token !== owner.token && !isStaleHolder(current)) return current;
  const now = new Date().toISOString();
  await session.query(
    `INSERT INTO ${table} (id, token, pid, host, since, heartbeat) VALUES (1, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET token = excluded.token, pid = excluded.pid, host = excluded.host,
       since = excluded.since, heartbeat = excluded.heartbeat`,
    [owner.token, owner.pid, owner.host, now, now],
  );
  return null;
}

async function readLockRow(session: SqlSession): Promise<LockRow | null> {
  const { rows } = await session.query<LockRow>(
    `SELECT token, pid, host, since, heartbeat FROM ${table} WHERE id = 1`,
  );
  return rows[0] ?? null;
}

function toLockHolder(row: LockRow): LockHolder {
  return {
    pid: row.pid,
    host: row.host,
    since: row.since,
    description: `pid ${row.pid} on ${row.host} since ${row.since}`,
  };
}

// Signal 0 checks existence without touching the process; EPERM means it exists as another user.
function isProcessAlive(pid: number): boolean {
  // 0 and negative pids address process groups, not a holder; such a row is corrupt.
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function lockedError(conn: SqlConnection, seen: LockRow | null): Promise<DbwardError> {
  const file = await databaseFile(conn).catch(() => 'the database');
  // If the database stayed busy we never saw the row; one plain read may still show it.
  const holder = seen ? toLockHolder(seen) : await sqliteLockHolder(conn).catch(() => null);
  const who = holder?.description ?? 'a holder dbward could not read (the database stayed busy)';
  return new DbwardError('E_MIGRATION_LOCKED', `Another migration run holds the lock on ${file}: ${who}`, {
    hint:
      'Wait for it to finish; if that process is gone, the lock is taken over automatically once ' +
      'dbward sees it is dead (same host) or its heartbeat is 2 minutes old, or run `dbward migrate unlock`.',
    exitCode: ExitCode.failed,
    context: { engine: 'sqlite', operation: 'migrate' },
  });
}

async function databaseFile(conn: SqlConnection): Promise<string> {
  const { rows } = await conn.query<{ file: string }>(
    "SELECT file FROM pragma_database_list WHERE name = 'main'",
  );
  // An in-memory database has no file name.
  return rows[0]?.file || ':memory:';
}

/** A held lock: renews its heartbeat until released. */
class SqliteMigrationLock implements MigrationLock {
  readonly #conn: SqlConnection;
  readonly #token: string;
  readonly #timer: NodeJS.Timeout;
  #released = false;

  constructor(conn: SqlConnection, token: string) {
    this.#conn = conn;
    this.#token = token;
    // unref: a forgotten release must not keep the process alive; the heartbeat then goes stale.
    this.#timer = setInterval(() => void this.#beat(), heartbeatIntervalMs).unref();
  }

  async release(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#released) return;
    try {
      // By token: if a stale-lock takeover already replaced our row, we must not free theirs.
      await this.#conn.query(`DELETE FROM ${table} WHERE token = ?`, [this.#token]);
    } catch (err) {
      // A closed connection cannot hold anything: our pid or heartbeat will mark the row stale.
      if (!isClosedError(err)) throw err;
    }
    this.#released = true;
  }

  async #beat(): Promise<void> {
    try {
      await this.#conn.query(`UPDATE ${table} SET heartbeat = ? WHERE token = ?`, [
        new Date().toISOString(),
        this.#token,
      ]);
    } catch (err) {
      // A busy database is retried at the next beat; a closed connection will never beat again.
      if (isClosedError(err)) clearInterval(this.#timer);
    }
  }
}

function isClosedError(err: unknown): boolean {
  return isDbwardError(err) && err.code === 'E_CLOSED';
}
