/**
 * The PostgreSQL migration store: the tracking table, and the lock that lets one migration run
 * at a time per database. The lock is a session-level advisory lock, so a run that dies (process
 * killed, backend terminated, network gone) frees it with its session: nothing to clean up
 * before the next deploy.
 */
import { holdSessionLock } from '../session-held-lock.js';
import { fromTrackingRow, trackingValues, type TrackingRow } from '../migration-tracking-row.js';
import { splitSqlStatements } from '../split-statements.js';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { compareVersions } from '../../migrate/migration-file.js';
import type {
  LockHolder,
  LockOwner,
  MigrationLock,
  MigrationStoreRole,
  SqlConnection,
  SqlSession,
} from '../contract.js';
import { sqlStateOf } from './postgres-errors.js';
import { nonTransactionalStatement } from './postgres-transaction-rules.js';

/**
 * The advisory lock key for "dbward migrations": the ASCII bytes of `dbwardmg` read as one
 * big-endian signed 64-bit integer (0x6462776172646d67). Advisory locks are scoped to the current
 * database already, so one fixed key gives one lock per database. pg_locks shows a bigint key
 * split into classid (high 32 bits) and objid (low 32 bits), with objsubid 1.
 */
export const migrationLockKey = 7233475211925155175n;
const lockClassId = Number(migrationLockKey >> 32n); // 1684174689
const lockObjId = Number(migrationLockKey & 0xffffffffn); // 1919184231

/** What the lock session's application_name says, so lockHolder() can name the holder's pid and host. */
const applicationNamePrefix = 'dbward migrate';
const applicationNamePattern = /^dbward migrate pid=(\d+) host=(.*)$/;

/**
 * What the loser of two concurrent CREATE TABLE IF NOT EXISTS can get: the existence check runs
 * before the insert into the catalogs, so both pass it and the second fails on a unique index
 * (23505 on pg_type), or sees the winner's row type (42710 "type … already exists") or relation
 * (42P07).
 */
const createRaceStates = new Set(['23505', '42710', '42P07']);

export const postgresMigrationStoreRole: MigrationStoreRole = {
  async ensureStore(conn, table) {
    const sql = `CREATE TABLE IF NOT EXISTS ${conn.quoteIdent(table)} (
  version varchar(255) PRIMARY KEY,
  name text NOT NULL,
  checksum char(64) NOT NULL,
  applied_at timestamptz NOT NULL,
  duration_ms bigint NOT NULL,
  applied_by text NOT NULL,
  dbward_version text NOT NULL,
  statements_applied int NOT NULL,
  statements_total int NOT NULL,
  status text NOT NULL CHECK (status IN ('applied', 'partial'))
)`;
    try {
      await conn.query(sql);
    } catch (err) {
      const state = sqlStateOf(err);
      if (state === undefined || !createRaceStates.has(state)) throw err;
      // Lost a race: fine if the winner's table is there now. The same codes also mean "a type
      // of that name is in the way", which must stay an error.
      if (!(await tableExists(conn, table))) throw err;
    }
  },

  async listApplied(conn, table) {
    // Checked first rather than caught: an "undefined table" error would abort a surrounding
    // transaction, and to_regclass resolves the name through search_path like CREATE TABLE did.
    if (!(await tableExists(conn, table))) return [];
    const { rows } = await conn.query<TrackingRow>(
      // applied_at comes as ISO text made by the server: parsing 5,000 timestamps into Dates
      // only to print them again cost `migrate status` ~35 ms.
      `SELECT version, name, checksum,
              to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS applied_at,
              duration_ms, applied_by, dbward_version, statements_applied, statements_total, status
         FROM ${conn.quoteIdent(table)}`,
    );
    // Sorted here, not by ORDER BY: versions are digit strings of different lengths, and
    // discovery orders files with the same compareVersions.
    return rows
      .map((row) => fromTrackingRow(row, (v) => (typeof v === 'string' ? v : new Date(v).toISOString())))
      .sort((a, b) => compareVersions(a.version, b.version));
  },

  async recordApplied(session, table, row) {
    // A `partial` row from an interrupted non-transactional run is completed in place.
    await session.query(
      `INSERT INTO ${quoteIdent(table)} (version, name, checksum, applied_at, duration_ms, applied_by,
         dbward_version, statements_applied, statements_total, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (version) DO UPDATE SET
         name = EXCLUDED.name, checksum = EXCLUDED.checksum, applied_at = EXCLUDED.applied_at,
         duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by,
         dbward_version = EXCLUDED.dbward_version, statements_applied = EXCLUDED.statements_applied,
         statements_total = EXCLUDED.statements_total, status = EXCLUDED.status`,
      trackingValues(row),
    );
  },

  async removeApplied(session, table, version) {
    await session.query(`DELETE FROM ${quoteIdent(table)} WHERE version = $1`, [version]);
  },

  acquireLock,

  async lockHolder(conn) {
    const { holder } = await findHolder(conn);
    if (!holder) return null;
    const { backendPid: _backendPid, ...rest } = holder;
    return rest;
  },

  breakLock,

  /**
   * The migration lock lives on its own idle session, which the server drops the moment a killed
   * client's socket closes; the session running the migration only notices when it next talks to
   * the client. Checking the connection every second (PostgreSQL 14+) cancels such an orphaned
   * statement within a second instead of letting it run on beside the next deploy.
   */
  async prepareSession(session) {
    await session.query(
      "SELECT set_config('client_connection_check_interval', '1000', false) WHERE current_setting('server_version_num')::int >= 140000",
    );
  },

  splitStatements: (sql) => splitSqlStatements(sql, 'postgres'),

  // PostgreSQL's own parser (libpg-query, loaded on first use) finds CREATE INDEX CONCURRENTLY,
  // VACUUM, ALTER TYPE … ADD VALUE and the like; such a section then runs statement by statement.
  nonTransactionalStatement,

  async executeScript(session, sql) {
    // No parameters, so pg sends it as one simple Query: every statement in one round trip, as
    // psql -c would. Outside a transaction the server runs such a string as one implicit
    // transaction, so statements that refuse transaction blocks (CREATE INDEX CONCURRENTLY)
    // must come one per call.
    await session.query(sql);
  },
};

/**
 * Take the lock on a session of its own that stays checked out until release(): the
 * withSession callback simply does not return until then. withSession ends with DISCARD ALL,
 * which drops the advisory lock; if the session died meanwhile, the server already dropped it
 * and the pool destroys the client.
 */
function acquireLock(
  conn: SqlConnection,
  { timeoutMs, owner }: { timeoutMs: number; owner: LockOwner },
): Promise<MigrationLock> {
  return holdSessionLock(conn, async (session) => {
    await takeLock(session, timeoutMs);
    // Only the application_name reaches pg_stat_activity, so the owner goes there. It is cut
    // at 63 bytes by the server: a very long host name comes back shortened.
    await session.query("SELECT set_config('application_name', $1, false)", [
      `${applicationNamePrefix} pid=${owner.pid} host=${owner.host}`,
    ]);
  });
}

/**
 * Wait for the lock with one blocking statement bounded by lock_timeout (one round trip however
 * long it waits, and the server wakes us the moment it is free). In one simple Query the SET and
 * the SELECT form one implicit transaction, so a timeout rolls the SET back as well; the RESET
 * below is for the success path. lock_timeout 0 would mean "wait forever", so a zero timeout
 * only tries.
 */
async function takeLock(session: SqlSession, timeoutMs: number): Promise<void> {
  const ms = Math.ceil(timeoutMs);
  if (!(ms >= 1)) {
    const { rows } = await session.query<{ ok: boolean }>(
      `SELECT pg_try_advisory_lock(${migrationLockKey}) AS ok`,
    );
    if (!rows[0]?.ok) await throwLocked(session);
    return;
  }
  try {
    // lock_timeout is an int of milliseconds; beyond that (or Infinity) wait as long as it takes.
    const limit = ms <= 2_147_483_647 ? `${ms}ms` : '0';
    await session.query(`SET lock_timeout = '${limit}'; SELECT pg_advisory_lock(${migrationLockKey})`);
  } catch (err) {
    if (sqlStateOf(err) !== '55P03') throw err;
    await session.query('RESET lock_timeout');
    await throwLocked(session);
  }
  await session.query('RESET lock_timeout');
}

/**
 * The E_MIGRATION_LOCKED error naming the holder, looked up on the waiting session itself: the
 * pool may have a single connection, and it is this one.
 */
async function throwLocked(session: SqlSession): Promise<never> {
  const { holder, database } = await findHolder(session);
  const who = holder?.description ?? 'a run that has just released it (try again)';
  const backend =
    holder?.backendPid === undefined ? '' : ` (its PostgreSQL backend pid is ${holder.backendPid})`;
  throw new DbwardError('E_MIGRATION_LOCKED', `Another migration run holds the lock on ${database}: ${who}`, {
    hint:
      'Wait for it to finish, or if that process is gone run `dbward migrate unlock`' +
      `${backend}. PostgreSQL frees the lock by itself when the holder's session ends.`,
    exitCode: ExitCode.failed,
    context: { engine: 'postgres', operation: 'migrate' },
  });
}

interface HolderRow {
  database: string;
  backend_pid: number | null;
  application_name: string | null;
  client_addr: string | null;
  since: Date | string | null;
}

/**
 * The session holding the lock in the current database, from pg_locks joined to
 * pg_stat_activity. Without pg_read_all_stats, another role's application_name and client_addr
 * read as NULL; then only the backend pid is known.
 */
async function findHolder(
  session: SqlSession,
): Promise<{ holder: (LockHolder & { backendPid: number }) | null; database: string }> {
  const { rows } = await session.query<HolderRow>(
    `SELECT current_database() AS database, l.pid AS backend_pid, a.application_name,
            host(a.client_addr) AS client_addr, coalesce(a.state_change, a.backend_start) AS since
       FROM (SELECT 1) AS one
       LEFT JOIN pg_locks l
              ON l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = $2::oid
             AND l.objsubid = 1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       LEFT JOIN pg_stat_activity a ON a.pid = l.pid`,
    [lockClassId, lockObjId],
  );
  const row = rows[0];
  const database = row?.database ?? 'this database';
  if (!row || row.backend_pid === null) return { holder: null, database };
  return { holder: describeHolder(row, row.backend_pid), database };
}

function describeHolder(row: HolderRow, backendPid: number): LockHolder & { backendPid: number } {
  const since = row.since === null ? null : new Date(row.since).toISOString();
  const parsed = applicationNamePattern.exec(row.application_name ?? '');
  const pid = parsed ? Number(parsed[1]) : backendPid;
  const host = parsed ? parsed[2] || null : row.client_addr;
  const who = parsed ? `pid ${pid}` : `PostgreSQL backend pid ${backendPid}`;
  const where = host === null ? '' : parsed ? ` on ${host}` : ` from ${host}`;
  const when = since === null ? '' : ` since ${since}`;
  return { pid, host, since, description: `${who}${where}${when}`, backendPid };
}

/** How long breakLock waits for a terminated backend to let go of the lock, and how often it looks. */
const breakWaitMs = 5_000;
const breakPollMs = 50;

/**
 * End the session holding the lock with pg_terminate_backend: the server drops its advisory lock
 * with it and rolls back whatever transaction that session had open. The backend exits shortly
 * after the signal, so this then waits (up to 5 s) until that backend no longer holds the lock.
 * It waits for that backend to let go, not for the lock to be free: a run that was waiting may
 * take it the moment it is released.
 */
async function breakLock(conn: SqlConnection): Promise<boolean> {
  const { holder, database } = await findHolder(conn);
  if (!holder) return false;
  let terminated: boolean;
  try {
    const { rows } = await conn.query<{ terminated: boolean }>(
      'SELECT pg_terminate_backend($1) AS terminated',
      [holder.backendPid],
    );
    terminated = rows[0]?.terminated === true;
  } catch (err) {
    if (sqlStateOf(err) === '42501') throw await terminateDenied(conn, holder, database, err);
    throw err;
  }
  // false (with a WARNING) when the pid is no backend any more: it ended by itself meanwhile.
  if (!terminated) return false;
  const deadline = Date.now() + breakWaitMs;
  while (await holdsLock(conn, holder.backendPid)) {
    if (Date.now() >= deadline) {
      throw new DbwardError(
        'E_MIGRATION_UNLOCK_FAILED',
        `PostgreSQL backend ${holder.backendPid} was told to terminate but still holds the migration lock on ${database} after ${breakWaitMs / 1000} s.`,
        {
          hint: 'It may be stuck in a system call; check pg_stat_activity, and run `dbward migrate lock` to see whether it is gone yet.',
          exitCode: ExitCode.failed,
          context: { engine: 'postgres', operation: 'migrate unlock' },
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, breakPollMs));
  }
  return true;
}

/** Whether backend `pid` still holds the migration lock in the current database. */
async function holdsLock(conn: SqlConnection, pid: number): Promise<boolean> {
  const { rows } = await conn.query(
    `SELECT 1 FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND pid = $3`,
    [lockClassId, lockObjId, pid],
  );
  return rows.length > 0;
}

/**
 * pg_terminate_backend refused (42501): only a superuser, a member of the holder's role, or a
 * member of pg_signal_backend may end another session, and only a superuser may end a
 * superuser's. The hint names our role and the holder's, so the fix can be copied.
 */
async function terminateDenied(
  conn: SqlConnection,
  holder: LockHolder & { backendPid: number },
  database: string,
  cause: unknown,
): Promise<DbwardError> {
  const { rows } = await conn
    .query<{ me: string; owner: string | null; owner_super: boolean | null }>(
      `SELECT current_user AS me, a.usename AS owner, r.rolsuper AS owner_super
         FROM (SELECT 1) AS one
         LEFT JOIN pg_stat_activity a ON a.pid = $1
         LEFT JOIN pg_roles r ON r.rolname = a.usename`,
      [holder.backendPid],
    )
    .catch(() => ({ rows: [] as { me: string; owner: string | null; owner_super: boolean | null }[] }));
  const me = rows[0]?.me ?? 'this role';
  const owner = rows[0]?.owner ?? null;
  const asOwner = owner === null ? 'the role that holds the lock' : `role ${owner} (which holds the lock)`;
  const hint =
    rows[0]?.owner_super === true
      ? `The holder's session belongs to superuser ${owner}; only a superuser may end it. Run \`dbward migrate unlock\` as a superuser.`
      : `Let ${me} end other sessions with \`GRANT pg_signal_backend TO ${conn.quoteIdent(me)}\` (as a superuser), or run \`dbward migrate unlock\` as ${asOwner} or as a superuser.`;
  return new DbwardError(
    'E_MIGRATION_UNLOCK_DENIED',
    `Role ${me} may not end the session that holds the migration lock on ${database} (PostgreSQL backend ${holder.backendPid}, ${holder.description}).`,
    { hint, cause, exitCode: ExitCode.failed, context: { engine: 'postgres', operation: 'migrate unlock' } },
  );
}

/** Whether `table` resolves through search_path, as the unqualified CREATE TABLE and queries do. */
async function tableExists(conn: SqlConnection, table: string): Promise<boolean> {
  const { rows } = await conn.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    conn.quoteIdent(table),
  ]);
  return rows[0]?.present === true;
}

/** recordApplied/removeApplied get a bare session, which has no quoteIdent; PostgreSQL's rule is this one. */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
