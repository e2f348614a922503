/**
 * The MySQL/MariaDB migration lock: a named user lock (GET_LOCK) held by one dedicated session
 * for the whole run. User locks belong to their connection, so a run that dies (process killed,
 * connection KILLed, network gone) frees the lock with its connection: nothing to clean up
 * before the next deploy. Lock names are server-wide, so the name carries the database.
 *
 * GET_LOCK only knows the holder's connection id. To name the process behind it, the holder
 * writes its pid, host and start time into `dbward_migration_lock` (one row per holding
 * connection, deleted on release); rows of connections that no longer hold the lock are stale
 * and ignored (and cleared by the next holder).
 */
import { holdSessionLock } from '../session-held-lock.js';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { LockHolder, LockOwner, MigrationLock, SqlConnection, SqlSession } from '../contract.js';
import { mysqlErrno } from './mysql-errors.js';

/** The owner table: in the URL's database, whatever the tracking table is called. */
export const mysqlLockTable = 'dbward_migration_lock';
const lockTable = `\`${mysqlLockTable}\``;

/**
 * The lock name as SQL: `dbward_migrations:<database>`. MySQL refuses names over 64 characters,
 * so a database name longer than the 46 that fit is replaced by (the start of) its SHA-256.
 */
export const lockNameSql =
  "CONCAT('dbward_migrations:', IF(CHAR_LENGTH(DATABASE()) <= 46, DATABASE(), LEFT(SHA2(DATABASE(), 256), 46)))";

/**
 * The lock session sits idle while the migrations run on other sessions; a server with a short
 * wait_timeout would drop it (and with it the lock) mid-run. One year is the maximum the server
 * accepts; the pooled connection gets the global value back on release.
 */
const lockSessionWaitTimeout = 31_536_000;

/** Create the owner table when missing (CREATE TABLE IF NOT EXISTS is safe to race on MySQL). */
export async function ensureLockTable(queryable: SqlSession): Promise<void> {
  await queryable.query(`CREATE TABLE IF NOT EXISTS ${lockTable} (
  connection_id BIGINT UNSIGNED PRIMARY KEY,
  pid INT NOT NULL,
  host VARCHAR(255) NOT NULL,
  since DATETIME(3) NOT NULL
) ENGINE=InnoDB`);
}

/**
 * Take the lock on a session of its own that stays checked out until release(): the
 * withSession callback does not return until then. Unlike PostgreSQL's DISCARD ALL, handing a
 * mysql2 connection back to the pool does not reset it, so release() frees the lock explicitly;
 * if the session died meanwhile, the server already freed it and the pool drops the connection.
 */
export function acquireMysqlLock(
  conn: SqlConnection,
  { timeoutMs, owner }: { timeoutMs: number; owner: LockOwner },
): Promise<MigrationLock> {
  return holdSessionLock(
    conn,
    async (session) => {
      await takeLock(session, timeoutMs);
      try {
        await session.query(`SET SESSION wait_timeout = ${lockSessionWaitTimeout}`);
        await recordOwner(session, owner);
      } catch (err) {
        await freeLock(session);
        throw err;
      }
    },
    freeLock,
  );
}

/**
 * Wait for the lock with one blocking GET_LOCK (one round trip however long it waits; the
 * server wakes us the moment it is free). MariaDB takes fractional seconds; MySQL truncates
 * them, so there a timeout is rounded up to whole seconds. 0 only tries; a negative timeout
 * means "wait forever" to the server, which is what Infinity asks for.
 */
async function takeLock(session: SqlSession, timeoutMs: number): Promise<void> {
  const { rows } = await session.query<{ version: string }>('SELECT VERSION() AS version');
  const fractional = /mariadb/i.test(String(rows[0]?.version ?? ''));
  const ms = Math.max(0, Number.isNaN(timeoutMs) ? 0 : timeoutMs);
  const seconds = !Number.isFinite(ms) ? -1 : fractional ? Math.ceil(ms) / 1000 : Math.ceil(ms / 1000);
  const got = await session.query<{ got: number | string | null }>(
    `SELECT GET_LOCK(${lockNameSql}, ${seconds}) AS got`,
  );
  const result = got.rows[0]?.got;
  if (result === null || result === undefined) {
    throw new DbwardError(
      'E_MIGRATION_LOCK_FAILED',
      'MySQL could not take the migration lock (GET_LOCK returned NULL).',
      {
        hint: 'The lock session was killed or the server ran out of memory; run the command again.',
        exitCode: ExitCode.failed,
        context: { engine: 'mysql', operation: 'migrate' },
      },
    );
  }
  if (Number(result) !== 1) await throwLocked(session);
}

/**
 * Name this process as the holder. Rows of other connections are stale (only the holder of the
 * lock writes here, and it holds the lock now), so they go. The table is created here because
 * the lock is taken before the tracking table exists.
 */
async function recordOwner(session: SqlSession, owner: LockOwner): Promise<void> {
  await ensureLockTable(session);
  await session.query(`DELETE FROM ${lockTable} WHERE connection_id <> CONNECTION_ID()`);
  await session.query(
    `REPLACE INTO ${lockTable} (connection_id, pid, host, since) VALUES (CONNECTION_ID(), ?, ?, UTC_TIMESTAMP(3))`,
    [owner.pid, owner.host],
  );
}

/** Forget the owner row and free the lock; errors (a dead session) are ignored: the server freed it then. */
async function freeLock(session: SqlSession): Promise<void> {
  try {
    await session.query(`DELETE FROM ${lockTable} WHERE connection_id = CONNECTION_ID()`);
  } catch {
    // The table may be gone or the session dead; the lock itself is what matters.
  }
  try {
    await session.query(`SELECT RELEASE_LOCK(${lockNameSql}) AS released`);
    await session.query('SET SESSION wait_timeout = @@GLOBAL.wait_timeout');
  } catch {
    // A dead session: the server released its locks when the connection ended.
  }
}

/**
 * The E_MIGRATION_LOCKED error naming the holder, looked up on the waiting session itself: the
 * pool may have a single connection, and it is this one.
 */
async function throwLocked(session: SqlSession): Promise<never> {
  const { holder, database } = await findHolder(session);
  const who = holder?.description ?? 'a run that has just released it (try again)';
  const connection =
    holder === null
      ? ''
      : ` (its MySQL connection id is ${holder.connectionId}: \`KILL ${holder.connectionId}\` frees it)`;
  throw new DbwardError('E_MIGRATION_LOCKED', `Another migration run holds the lock on ${database}: ${who}`, {
    hint:
      'Wait for it to finish, or if that process is gone run `dbward migrate unlock`' +
      `${connection}. MySQL frees the lock by itself when the holder's connection ends.`,
    exitCode: ExitCode.failed,
    context: { engine: 'mysql', operation: 'migrate' },
  });
}

/** The current holder, or null when the lock is free. */
export async function mysqlLockHolder(conn: SqlConnection): Promise<LockHolder | null> {
  const { holder } = await findHolder(conn);
  if (!holder) return null;
  const { connectionId: _connectionId, ...rest } = holder;
  return rest;
}

/** How long breakMysqlLock waits for a killed connection to let go of the lock, and how often it looks. */
const breakWaitMs = 5_000;
const breakPollMs = 50;

/**
 * Free the lock whoever holds it: KILL CONNECTION the holder (IS_USED_LOCK names its connection
 * id). The server frees a connection's user locks when it ends, and rolls back its open
 * transaction (DDL already committed stays). The thread ends asynchronously, so this then waits
 * (up to 5 s) until that connection no longer holds the lock; a run that was waiting may take it
 * at once, so it waits for that connection to let go, not for the lock to be free.
 */
export async function breakMysqlLock(conn: SqlConnection): Promise<boolean> {
  const { holder, database } = await findHolder(conn);
  if (!holder) return false;
  const id = holder.connectionId; // digits only: findHolder checked
  try {
    await conn.query(`KILL CONNECTION ${id}`);
  } catch (err) {
    const errno = mysqlErrno(err);
    if (errno === 1094) return false; // ER_NO_SUCH_THREAD: it ended by itself meanwhile
    if (errno === 1095) throw await killDenied(conn, holder, database, err); // ER_KILL_DENIED_ERROR
    throw err;
  }
  const deadline = Date.now() + breakWaitMs;
  for (;;) {
    const { rows } = await conn.query<{ connection_id: number | string | null }>(
      `SELECT IS_USED_LOCK(${lockNameSql}) AS connection_id`,
    );
    const now = rows[0]?.connection_id;
    if (now === null || now === undefined || String(now) !== id) break;
    if (Date.now() >= deadline) {
      throw new DbwardError(
        'E_MIGRATION_UNLOCK_FAILED',
        `MySQL connection ${id} was killed but still holds the migration lock on ${database} after ${breakWaitMs / 1000} s.`,
        {
          hint: 'Its thread may still be rolling back a large transaction; run `dbward migrate lock` to see whether it is gone yet.',
          exitCode: ExitCode.failed,
          context: { engine: 'mysql', operation: 'migrate unlock' },
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, breakPollMs));
  }
  // Tidy up its owner row (the next holder would clear it anyway).
  await conn.query(`DELETE FROM ${lockTable} WHERE connection_id = ?`, [id]).catch(() => undefined);
  return true;
}

/**
 * KILL refused: ending another user's connection takes CONNECTION ADMIN (MariaDB 10.5.2+;
 * CONNECTION_ADMIN on MySQL 8) or SUPER. PROCESS only lets one see other threads, not kill them.
 */
async function killDenied(
  conn: SqlConnection,
  holder: LockHolder & { connectionId: string },
  database: string,
  cause: unknown,
): Promise<DbwardError> {
  // CURRENT_USER() is the account the privileges belong to, as `name@host`.
  const { rows } = await conn
    .query<{ account: string }>('SELECT CURRENT_USER() AS account')
    .catch(() => ({ rows: [] as { account: string }[] }));
  const account = /^(.*)@([^@]*)$/.exec(rows[0]?.account ?? '');
  const grantee = account ? `'${account[1]}'@'${account[2]}'` : "'user'@'host'";
  const who = account ? `User ${grantee}` : 'This user';
  return new DbwardError(
    'E_MIGRATION_UNLOCK_DENIED',
    `${who} may not end the connection that holds the migration lock on ${database} (MySQL connection ${holder.connectionId}, ${holder.description}).`,
    {
      hint:
        "Ending another user's connection takes the CONNECTION ADMIN privilege or SUPER (PROCESS only " +
        `shows other connections): \`GRANT CONNECTION ADMIN ON *.* TO ${grantee}\` on MariaDB 10.5.2+, ` +
        `\`GRANT CONNECTION_ADMIN ON *.* TO ${grantee}\` on MySQL 8. Or run \`dbward migrate unlock\` as the user that holds the lock.`,
      cause,
      exitCode: ExitCode.failed,
      context: { engine: 'mysql', operation: 'migrate unlock' },
    },
  );
}

interface UsedRow {
  database: string | null;
  connection_id: number | string | null;
  has_table: number | string;
}

interface HolderRow {
  pid: number | null;
  host: string | null;
  since: string | null;
  client_host: string | null;
}

/**
 * Who holds the lock: IS_USED_LOCK gives the connection id; the owner row for that connection
 * names the process. Without one (the holder is between GET_LOCK and writing its row, or is not
 * dbward), PROCESSLIST gives the client host of that connection, when this user may see it.
 */
async function findHolder(
  session: SqlSession,
): Promise<{ holder: (LockHolder & { connectionId: string }) | null; database: string }> {
  const used = await session.query<UsedRow>(
    `SELECT DATABASE() AS \`database\`, IS_USED_LOCK(${lockNameSql}) AS connection_id,
            (SELECT COUNT(*) FROM information_schema.TABLES
              WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '${mysqlLockTable}') AS has_table`,
  );
  const first = used.rows[0];
  const database = first?.database ?? 'this server';
  if (!first || first.connection_id === null) return { holder: null, database };
  const connectionId = String(first.connection_id);
  if (!/^\d+$/.test(connectionId)) return { holder: null, database };
  // The owner table is joined only when it exists: the holder creates it right after GET_LOCK.
  const owner =
    Number(first.has_table) > 0
      ? `l.pid, l.host, CAST(l.since AS CHAR) AS since`
      : 'NULL AS pid, NULL AS host, NULL AS since';
  const ownerJoin = Number(first.has_table) > 0 ? `LEFT JOIN ${lockTable} l ON l.connection_id = one.id` : '';
  const { rows } = await session.query<HolderRow>(
    `SELECT ${owner}, p.HOST AS client_host
       FROM (SELECT ${connectionId} AS id) one
       ${ownerJoin}
       LEFT JOIN information_schema.PROCESSLIST p ON p.ID = one.id`,
  );
  return { holder: describeHolder(rows[0], connectionId), database };
}

function describeHolder(
  row: HolderRow | undefined,
  connectionId: string,
): LockHolder & { connectionId: string } {
  if (row && row.pid !== null) {
    const since = row.since === null ? null : toIso(row.since);
    const host = row.host || null;
    const where = host === null ? '' : ` on ${host}`;
    const when = since === null ? '' : ` since ${since}`;
    return { pid: Number(row.pid), host, since, description: `pid ${row.pid}${where}${when}`, connectionId };
  }
  // PROCESSLIST shows `host:port` for TCP clients (`localhost` for sockets).
  const host = row?.client_host ? row.client_host.replace(/^(.+):\d+$/, '$1') : null;
  const where = host === null ? '' : ` from ${host}`;
  return { pid: null, host, since: null, description: `connection ${connectionId}${where}`, connectionId };
}

/** A UTC DATETIME as the server prints it (`2026-11-22 04:00:00.123`) to an ISO string. */
export function toIso(datetime: string): string {
  return new Date(`${datetime.replace(' ', 'T')}Z`).toISOString();
}
