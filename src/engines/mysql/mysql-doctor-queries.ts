/**
 * The catalog queries behind MySQL/MariaDB `doctor`, and the raw rows they return. All run in one
 * session made read-only and given a statement timeout ({@link withDoctorSession}); each reads a
 * whole catalog for the URL's database (or the server) at once, so the number of round trips does
 * not grow with the number of tables: about 15 in all. What differs between MariaDB and MySQL 8 is
 * feature-detected, never assumed from the version string.
 */
import type { SqlConnection, SqlSession } from '../contract.js';
import { mysqlErrno } from './mysql-errors.js';

/** Who and where we are, and which optional catalogs the server has. */
export interface AboutRow {
  version: string;
  db: string | null;
  account: string | null;
  /** information_schema.STATISTICS.EXPRESSION (functional key parts, MySQL 8.0.13+). */
  hasIndexExpressions: number | string;
  /** information_schema.INNODB_LOCK_WAITS (MariaDB, MySQL 5.7); MySQL 8 has performance_schema.data_lock_waits. */
  hasInnodbLockWaits: number | string;
  dbCharset: string | null;
  dbCollation: string | null;
}

/** SHOW GLOBAL STATUS / SHOW GLOBAL VARIABLES rows. */
export interface NameValueRow {
  Variable_name: string;
  Value: string | null;
}

export interface ProcessRow {
  id: number | string;
  user: string | null;
  host: string | null;
  db: string | null;
  command: string;
  seconds: number | string | null;
  state: string | null;
  info: string | null;
  /** Set when the session has an open InnoDB transaction. */
  trxId: string | number | null;
  trxSeconds: number | string | null;
}

export interface LockWaitRow {
  id: number | string;
  blocker: number | string;
  seconds: number | string | null;
  query: string | null;
}

export interface LastStatementRow {
  id: number | string;
  statement: string | null;
}

export interface TableRow {
  name: string;
  /** BASE TABLE, VIEW, SYSTEM VERSIONED, SEQUENCE (MariaDB), TEMPORARY. */
  type: string;
  engine: string | null;
  rowEstimate: number | string | null;
  dataBytes: number | string | null;
  indexBytes: number | string | null;
  collation: string | null;
  autoIncrement: number | string | null;
}

export interface IndexPartRow {
  tableName: string;
  name: string;
  nonUnique: number | string;
  columnName: string | null;
  subPart: number | string | null;
  method: string;
  expression: string | null;
}

export interface ForeignKeyRow {
  tableName: string;
  name: string;
  columnName: string;
  referencedSchema: string | null;
  referencedTable: string;
  referencedColumn: string | null;
}

export interface ColumnRow {
  tableName: string;
  name: string;
  dataType: string;
  columnType: string;
  nullable: string;
  charset: string | null;
  extra: string;
}

export interface IndexSizeRow {
  tableName: string;
  indexName: string;
  pages: number | string;
}

export interface IndexUsageRow {
  tableName: string;
  indexName: string;
  scans: number | string;
}

export interface PerfSchemaSetupRow {
  tableIo: string | null;
  globalInstrumentation: string | null;
  statementsDigest: string | null;
}

export interface DigestRow {
  statement: string;
  calls: number | string;
  noIndexUsed: number | string;
  noGoodIndexUsed: number | string;
  rowsExamined: number | string;
  rowsSent: number | string;
}

/** SHOW REPLICA STATUS (MySQL 8.0.22+, MariaDB 10.5+) or SHOW SLAVE STATUS: old or new column names. */
export type ReplicaStatusRow = Record<string, unknown>;

export const aboutSql = `SELECT VERSION() AS version, DATABASE() AS db, CURRENT_USER() AS account,
  (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema'
     AND TABLE_NAME = 'STATISTICS' AND COLUMN_NAME = 'EXPRESSION') AS hasIndexExpressions,
  (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'information_schema'
     AND TABLE_NAME = 'INNODB_LOCK_WAITS') AS hasInnodbLockWaits,
  (SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()) AS dbCharset,
  (SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()) AS dbCollation`;

export const statusNames = [
  'Uptime',
  'Threads_connected',
  'Connections',
  'Aborted_connects',
  'Questions',
  'Slow_queries',
  'Innodb_buffer_pool_reads',
  'Innodb_buffer_pool_read_requests',
  'Created_tmp_tables',
  'Created_tmp_disk_tables',
] as const;

export const variableNames = [
  'max_connections',
  'performance_schema',
  'innodb_page_size',
  'innodb_buffer_pool_size',
  'slow_query_log',
  'long_query_time',
  'log_bin',
] as const;

// SHOW … WHERE takes no placeholders; the names are our own constants.
const inList = (names: readonly string[]): string => names.map((n) => `'${n}'`).join(', ');
export const statusSql = `SHOW GLOBAL STATUS WHERE Variable_name IN (${inList(statusNames)})`;
export const variablesSql = `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${inList(variableNames)})`;

/**
 * Sessions that matter to doctor, in one pass over the processlist (server-wide): statements
 * running for a second or more, sessions sleeping inside an open InnoDB transaction, and the
 * binlog dump threads that feed replicas. Server threads (`system user`, the event scheduler) and
 * doctor's own session are left out. Needs PROCESS to see other users' sessions and INNODB_TRX.
 */
export const processSql = `SELECT p.ID AS id, p.USER AS user, p.HOST AS host, p.DB AS db, p.COMMAND AS command,
  p.TIME AS seconds, p.STATE AS state, LEFT(p.INFO, 200) AS info, t.trx_id AS trxId,
  TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS trxSeconds
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.ID <> CONNECTION_ID()
  AND COALESCE(p.USER, '') NOT IN ('system user', 'event_scheduler')
  AND ((p.COMMAND IN ('Query', 'Execute') AND p.TIME > 0)
    OR (p.COMMAND = 'Sleep' AND t.trx_id IS NOT NULL)
    OR p.COMMAND LIKE 'Binlog Dump%')
ORDER BY p.TIME DESC
LIMIT 500`;

/** InnoDB row-lock waits with the blocking session: MariaDB and MySQL 5.7 keep them in information_schema… */
export const lockWaitsInfoSchemaSql = `SELECT r.trx_mysql_thread_id AS id, b.trx_mysql_thread_id AS blocker,
  TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) AS seconds, LEFT(r.trx_query, 200) AS query
FROM information_schema.INNODB_LOCK_WAITS w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id
LIMIT 500`;

/** …MySQL 8 in performance_schema (needs SELECT on performance_schema). */
export const lockWaitsPerfSchemaSql = `SELECT r.trx_mysql_thread_id AS id, b.trx_mysql_thread_id AS blocker,
  TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) AS seconds, LEFT(r.trx_query, 200) AS query
FROM performance_schema.data_lock_waits w
JOIN information_schema.INNODB_TRX r ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID
JOIN information_schema.INNODB_TRX b ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID
LIMIT 500`;

/**
 * The last statement of sessions idle in a transaction (the processlist shows none for a sleeping
 * session). Only where performance_schema records current statements (MySQL 8 by default).
 */
export const lastStatementsSql = (
  count: number,
): string => `SELECT th.PROCESSLIST_ID AS id, LEFT(e.SQL_TEXT, 200) AS statement
FROM performance_schema.threads th
JOIN performance_schema.events_statements_current e ON e.THREAD_ID = th.THREAD_ID
WHERE th.PROCESSLIST_ID IN (${Array.from({ length: count }, () => '?').join(', ')})`;

export const tablesSql = `SELECT TABLE_NAME AS name, TABLE_TYPE AS type, ENGINE AS engine, TABLE_ROWS AS rowEstimate,
  DATA_LENGTH AS dataBytes, INDEX_LENGTH AS indexBytes, TABLE_COLLATION AS collation, AUTO_INCREMENT AS autoIncrement
FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`;

export const indexPartsSql = (hasExpressions: boolean): string => `SELECT TABLE_NAME AS tableName,
  INDEX_NAME AS name, NON_UNIQUE AS nonUnique, COLUMN_NAME AS columnName, SUB_PART AS subPart,
  INDEX_TYPE AS method, ${hasExpressions ? 'EXPRESSION' : 'NULL'} AS expression
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`;

export const foreignKeysSql = `SELECT TABLE_NAME AS tableName, CONSTRAINT_NAME AS name, COLUMN_NAME AS columnName,
  REFERENCED_TABLE_SCHEMA AS referencedSchema, REFERENCED_TABLE_NAME AS referencedTable,
  REFERENCED_COLUMN_NAME AS referencedColumn
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`;

/** Text columns (for their character set) and AUTO_INCREMENT columns, nothing else. */
export const columnsSql = `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, DATA_TYPE AS dataType,
  COLUMN_TYPE AS columnType, IS_NULLABLE AS nullable, CHARACTER_SET_NAME AS charset, EXTRA AS extra
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = ? AND (CHARACTER_SET_NAME IS NOT NULL OR EXTRA LIKE '%auto_increment%')
ORDER BY TABLE_NAME, ORDINAL_POSITION`;

/** InnoDB's persistent statistics: pages per index (ANALYZE TABLE and auto-recalc refresh them). */
export const indexSizesSql = `SELECT table_name AS tableName, index_name AS indexName, stat_value AS pages
FROM mysql.innodb_index_stats WHERE database_name = ? AND stat_name = 'size'`;

export const perfSchemaSetupSql = `SELECT
  (SELECT ENABLED FROM performance_schema.setup_instruments WHERE NAME = 'wait/io/table/sql/handler') AS tableIo,
  (SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'global_instrumentation') AS globalInstrumentation,
  (SELECT ENABLED FROM performance_schema.setup_consumers WHERE NAME = 'statements_digest') AS statementsDigest`;

/** Reads through each index since the server started (or the table was first opened). */
export const indexUsageSql = `SELECT OBJECT_NAME AS tableName, INDEX_NAME AS indexName, COUNT_STAR AS scans
FROM performance_schema.table_io_waits_summary_by_index_usage
WHERE OBJECT_SCHEMA = ? AND INDEX_NAME IS NOT NULL`;

/**
 * Statements run with this database as the default that used no (good) index, like
 * sys.statements_with_full_table_scans: SHOW, EXPLAIN and statements on the system schemas (which
 * include doctor's own catalog queries) are left out.
 */
export const fullScanDigestsSql = `SELECT LEFT(DIGEST_TEXT, 200) AS statement, COUNT_STAR AS calls,
  SUM_NO_INDEX_USED AS noIndexUsed, SUM_NO_GOOD_INDEX_USED AS noGoodIndexUsed,
  SUM_ROWS_EXAMINED AS rowsExamined, SUM_ROWS_SENT AS rowsSent
FROM performance_schema.events_statements_summary_by_digest
WHERE SCHEMA_NAME = ? AND (SUM_NO_INDEX_USED > 0 OR SUM_NO_GOOD_INDEX_USED > 0)
  AND DIGEST_TEXT IS NOT NULL
  AND DIGEST_TEXT NOT LIKE 'SHOW%' AND DIGEST_TEXT NOT LIKE 'EXPLAIN%'
  AND DIGEST_TEXT NOT LIKE 'DESC%' AND DIGEST_TEXT NOT LIKE 'SET %'
  AND DIGEST_TEXT NOT LIKE '%information_schema%' AND DIGEST_TEXT NOT LIKE '%performance_schema%'
  AND DIGEST_TEXT NOT LIKE '%\`mysql\` .%' AND DIGEST_TEXT NOT LIKE '%\`sys\` .%'
ORDER BY SUM_NO_INDEX_USED + SUM_NO_GOOD_INDEX_USED DESC
LIMIT 50`;

/** Replica status, new syntax first; an empty list means this server is not a replica. */
export async function readReplicaStatus(session: SqlSession): Promise<ReplicaStatusRow[]> {
  try {
    return (await session.query<ReplicaStatusRow>('SHOW REPLICA STATUS')).rows;
  } catch (err) {
    // 1064: a server older than MySQL 8.0.22 / MariaDB 10.5 only knows SHOW SLAVE STATUS.
    if (mysqlErrno(err) !== 1064) throw err;
    return (await session.query<ReplicaStatusRow>('SHOW SLAVE STATUS')).rows;
  }
}

/** MariaDB's max_statement_time (seconds) or MySQL's max_execution_time (milliseconds, SELECT only). */
interface SessionSettings {
  /** null on servers with neither (MySQL before 5.7.8): queries then run unbounded. */
  timeout: { variable: 'max_statement_time' | 'max_execution_time'; previous: string } | null;
  previousReadOnly: boolean;
}

async function firstValue(session: SqlSession, sql: string): Promise<unknown> {
  const { rows } = await session.query<{ v: unknown }>(sql);
  return rows[0]?.v;
}

/**
 * Run `fn` on one pooled connection made read-only (SET SESSION TRANSACTION READ ONLY) with a
 * statement timeout, then put the connection's previous settings back before it returns to the
 * pool. The timeout variable is feature-detected: MariaDB has max_statement_time (every
 * statement), MySQL 5.7.8+ max_execution_time (read-only SELECTs; SHOW is not bounded there).
 */
export async function withDoctorSession<T>(
  conn: SqlConnection,
  timeoutMs: number,
  fn: (session: SqlSession) => Promise<T>,
): Promise<T> {
  return conn.withSession(async (session) => {
    const settings = await applySessionSettings(session, timeoutMs);
    try {
      return await fn(session);
    } finally {
      await restoreSessionSettings(session, settings).catch(() => undefined);
    }
  });
}

async function applySessionSettings(session: SqlSession, timeoutMs: number): Promise<SessionSettings> {
  const ms = Math.max(1, Math.ceil(timeoutMs));
  // MariaDB: seconds, every statement. MySQL: milliseconds, read-only SELECTs.
  const candidates = [
    { variable: 'max_statement_time', value: ms / 1000 },
    { variable: 'max_execution_time', value: ms },
  ] as const;
  let timeout: SessionSettings['timeout'] = null;
  for (const { variable, value } of candidates) {
    try {
      const previous = String(await firstValue(session, `SELECT @@SESSION.${variable} AS v`));
      await session.query(`SET SESSION ${variable} = ${value}`);
      timeout = { variable, previous };
      break;
    } catch (err) {
      // 1193 unknown system variable: try the other name.
      if (mysqlErrno(err) !== 1193) throw err;
    }
  }
  let previousReadOnly: unknown;
  try {
    // MySQL 8 and MariaDB 11.1+; older servers only know tx_read_only.
    previousReadOnly = await firstValue(session, 'SELECT @@SESSION.transaction_read_only AS v');
  } catch (err) {
    if (mysqlErrno(err) !== 1193) throw err;
    previousReadOnly = await firstValue(session, 'SELECT @@SESSION.tx_read_only AS v');
  }
  await session.query('SET SESSION TRANSACTION READ ONLY');
  return { timeout, previousReadOnly: Number(previousReadOnly) === 1 };
}

async function restoreSessionSettings(session: SqlSession, settings: SessionSettings): Promise<void> {
  if (!settings.previousReadOnly) await session.query('SET SESSION TRANSACTION READ WRITE');
  if (!settings.timeout) return;
  const value = Number(settings.timeout.previous);
  await session.query(
    `SET SESSION ${settings.timeout.variable} = ${Number.isFinite(value) ? value : 'DEFAULT'}`,
  );
}
