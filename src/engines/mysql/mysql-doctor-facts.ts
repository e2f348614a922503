/**
 * The MySQL/MariaDB doctor collector: the facts src/doctor/ judges, read in one read-only session
 * with a statement timeout (mysql-doctor-queries.ts). Server-wide: version, uptime, status
 * counters, connections, sessions (long-running, idle in a transaction, waiting for a lock) and
 * replication. The URL's database only: tables, indexes, foreign keys and the MySQL-specific
 * schema checks. What the login may not read (PROCESS, performance_schema, mysql.innodb_index_stats,
 * replica status) or what the server does not record (performance_schema off) is reported in
 * `skipped` with the grant or setting that would enable it, never as an error.
 */
import { ConnectionError } from '../../core/errors.js';
import type {
  ActivityFacts,
  BlockedFact,
  DoctorFacts,
  ForeignKeyFact,
  IndexFact,
  ReplicationFacts,
  SessionFact,
  TableFact,
} from '../../doctor/facts.js';
import type {
  MysqlAutoIncrementFact,
  MysqlCharsetFacts,
  MysqlFacts,
  MysqlFullScanFact,
  MysqlStatusFacts,
} from '../../doctor/facts/mysql-facts.js';
import type { SkippedCheck } from '../../doctor/finding.js';
import type { DoctorFixes } from '../../doctor/rule.js';
import type { DoctorCollectContext, DoctorFactsRole, EngineConnection, SqlSession } from '../contract.js';
import {
  aboutSql,
  columnsSql,
  foreignKeysSql,
  fullScanDigestsSql,
  indexPartsSql,
  indexSizesSql,
  indexUsageSql,
  lastStatementsSql,
  lockWaitsInfoSchemaSql,
  lockWaitsPerfSchemaSql,
  perfSchemaSetupSql,
  processSql,
  readReplicaStatus,
  statusSql,
  tablesSql,
  variablesSql,
  withDoctorSession,
  type AboutRow,
  type ColumnRow,
  type DigestRow,
  type ForeignKeyRow,
  type IndexPartRow,
  type IndexSizeRow,
  type IndexUsageRow,
  type LastStatementRow,
  type LockWaitRow,
  type NameValueRow,
  type PerfSchemaSetupRow,
  type ProcessRow,
  type TableRow,
} from './mysql-doctor-queries.js';
import { mysqlErrno } from './mysql-errors.js';

export const mysqlDoctorFactsRole: DoctorFactsRole = {
  async collect(conn: EngineConnection, ctx: DoctorCollectContext): Promise<DoctorFacts> {
    if (conn.kind !== 'sql') throw new TypeError('The MySQL doctor collector needs a SQL connection.');
    return withDoctorSession(conn, ctx.statementTimeoutMs, (session) => collect(session, ctx));
  },
  fixes: {
    dropIndex: (index) =>
      `ALTER TABLE ${quoteTable(index.table)} DROP INDEX ${quote(index.name)}, ALGORITHM=INPLACE, LOCK=NONE;`,
    createIndexFor: (fk) =>
      `ALTER TABLE ${quoteTable(fk.table)} ADD INDEX (${fk.columns.map(quote).join(', ')}), ALGORITHM=INPLACE, LOCK=NONE;`,
    cancel: (session) => `KILL QUERY ${session.id};`,
    terminate: (session) => `KILL ${session.id};`,
  } satisfies DoctorFixes,
};

/** `name` in backticks, inner backticks doubled. */
export function quote(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** Table names in facts are bare, or `schema.table` for a table of another database. */
function quoteTable(name: string): string {
  const dot = name.indexOf('.');
  return dot > 0 ? `${quote(name.slice(0, dot))}.${quote(name.slice(dot + 1))}` : quote(name);
}

/**
 * End of upstream support by major.minor (MariaDB: mariadb.org release policy; MySQL: Oracle's
 * lifetime support for LTS releases). MySQL innovation releases (8.1–8.3, 9.x) are supported
 * only until the next one ships: unknown here, so null.
 */
const endOfLife: Record<'mariadb' | 'mysql', Record<string, string>> = {
  mariadb: {
    '10.2': '2022-05-23',
    '10.3': '2023-05-25',
    '10.4': '2024-06-18',
    '10.5': '2025-06-24',
    '10.6': '2026-07-06',
    '10.7': '2023-02-09',
    '10.8': '2023-05-20',
    '10.9': '2023-08-22',
    '10.10': '2023-11-17',
    '10.11': '2028-02-16',
    '11.0': '2024-06-06',
    '11.1': '2024-08-21',
    '11.2': '2024-11-21',
    '11.3': '2024-05-29',
    '11.4': '2029-05-29',
    '11.8': '2030-06-04',
  },
  mysql: {
    '5.6': '2021-02-01',
    '5.7': '2023-10-31',
    '8.0': '2026-04-30',
    '8.4': '2032-04-30',
  },
};

export function endOfLifeFor(version: string, flavor: 'mariadb' | 'mysql'): string | null {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (!match) return null;
  return endOfLife[flavor][`${match[1]}.${match[2]}`] ?? null;
}

const num = (value: unknown): number | null => {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
};

const isOn = (value: string | null | undefined): boolean => /^(on|1|yes|true)$/i.test(value ?? '');

const privilegeErrnos = new Set([
  1044, // ER_DBACCESS_DENIED_ERROR
  1142, // ER_TABLEACCESS_DENIED_ERROR
  1143, // ER_COLUMNACCESS_DENIED_ERROR
  1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR (PROCESS, REPLICATION CLIENT, …)
]);
const timeoutErrnos = new Set([
  1969, // MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
  3024, // MySQL ER_QUERY_TIMEOUT (max_execution_time)
  1317, // ER_QUERY_INTERRUPTED
]);

/** Collects skipped checks, one entry per check id. */
class Skips {
  readonly list: SkippedCheck[] = [];
  add(ids: readonly string[], reason: string, enableWith?: string): void {
    for (const id of ids) {
      if (this.list.some((s) => s.id === id)) continue;
      this.list.push(enableWith ? { id, reason, enableWith } : { id, reason });
    }
  }
}

const activityChecks = ['activity.long-running', 'activity.idle-in-transaction', 'activity.lock-waits'];
const schemaChecks = [
  'tables.no-primary-key',
  'indexes.invalid',
  'indexes.duplicate',
  'indexes.unused',
  'indexes.foreign-key-without-index',
  'mysql.non-innodb-tables',
  'mysql.utf8mb3',
  'mysql.auto-increment',
  'mysql.full-table-scans',
  'mysql.buffer-pool-size',
];

async function collect(session: SqlSession, ctx: DoctorCollectContext): Promise<DoctorFacts> {
  const skips = new Skips();
  const rows = async <Row>(sql: string, params?: unknown[]): Promise<Row[]> =>
    (await session.query<Row>(sql, params)).rows;

  const about = (await rows<AboutRow>(aboutSql))[0];
  if (!about) throw new Error('SELECT VERSION() returned no row.');
  const variables = nameValues(await rows<NameValueRow>(variablesSql));
  const status = nameValues(await rows<NameValueRow>(statusSql));
  const flavor = /mariadb/i.test(about.version) ? 'mariadb' : 'mysql';
  const account = quoteAccount(about.account);
  const db = about.db ?? undefined;

  /** Run an optional read; on failure record why for `ids` and return undefined. */
  const optional = async <T>(
    ids: readonly string[],
    grant: string | undefined,
    read: () => Promise<T>,
  ): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      if (err instanceof ConnectionError) throw err;
      const errno = mysqlErrno(err);
      const message = err instanceof Error ? err.message : String(err);
      if (errno !== undefined && privilegeErrnos.has(errno)) {
        skips.add(ids, `not permitted for ${account}: ${message}`, grant);
      } else if (errno !== undefined && timeoutErrnos.has(errno)) {
        skips.add(ids, `the query timed out after ${ctx.statementTimeoutMs} ms`);
      } else {
        skips.add(ids, `the query failed: ${message}`);
      }
      return undefined;
    }
  };

  const uptime = num(status.get('Uptime'));
  const facts: DoctorFacts = {
    server: {
      engine: 'mysql',
      version: about.version,
      flavor,
      ...(uptime !== null ? { uptimeSeconds: uptime } : {}),
      endOfLife: endOfLifeFor(about.version, flavor),
    },
    skipped: skips.list,
  };
  const maxConnections = num(variables.get('max_connections'));
  const threadsConnected = num(status.get('Threads_connected'));
  if (maxConnections !== null && threadsConnected !== null) {
    facts.connections = { max: maxConnections, current: threadsConnected };
  }
  if (uptime !== null) facts.statsSince = new Date(Date.now() - uptime * 1000).toISOString();

  // Sessions: needs PROCESS (other users' sessions, INNODB_TRX, INNODB_LOCK_WAITS).
  const processGrant = `GRANT PROCESS ON *.* TO ${account};`;
  const processes = await optional(activityChecks, processGrant, () => rows<ProcessRow>(processSql));
  let replicas: number | undefined;
  if (processes) {
    const lockWaits = await optional(
      ['activity.lock-waits'],
      Number(about.hasInnodbLockWaits) > 0
        ? processGrant
        : `GRANT SELECT ON performance_schema.* TO ${account};`,
      () =>
        rows<LockWaitRow>(
          Number(about.hasInnodbLockWaits) > 0 ? lockWaitsInfoSchemaSql : lockWaitsPerfSchemaSql,
        ),
    );
    const idleIds = processes.filter(isIdleInTransaction).map((p) => Number(p.id));
    // Best effort: the last statement of idle sessions, where performance_schema records it.
    const lastStatements =
      idleIds.length > 0 && isOn(variables.get('performance_schema'))
        ? await rows<LastStatementRow>(lastStatementsSql(idleIds.length), idleIds).catch(() => [])
        : [];
    facts.activity = activity(processes, lockWaits ?? [], lastStatements);
    replicas = processes.filter((p) => p.command.startsWith('Binlog Dump')).length;
  }

  // Replication: SHOW REPLICA STATUS needs REPLICATION CLIENT (MySQL) / SLAVE MONITOR (MariaDB).
  const replicaGrant =
    flavor === 'mariadb'
      ? `GRANT SLAVE MONITOR ON *.* TO ${account};`
      : `GRANT REPLICATION CLIENT ON *.* TO ${account};`;
  const replicaStatus = await optional(['replication.lag'], replicaGrant, () => readReplicaStatus(session));
  if (replicaStatus) facts.replication = replication(replicaStatus, replicas);

  const performanceSchema = isOn(variables.get('performance_schema'));
  const mysql: MysqlFacts = {
    status: statusFacts(status),
    settings: {
      slowQueryLog: isOn(variables.get('slow_query_log')),
      longQueryTimeSeconds: num(variables.get('long_query_time')) ?? 10,
      binlog: isOn(variables.get('log_bin')),
      performanceSchema,
      bufferPoolBytes: num(variables.get('innodb_buffer_pool_size')) ?? 0,
    },
  };
  facts.mysql = mysql;

  if (!db) {
    skips.add(
      schemaChecks,
      'the URL names no database, so there are no tables to examine',
      'Add the database to the URL, e.g. mysql://user@host:3306/app',
    );
    return facts;
  }
  mysql.database = db;

  // The schema: one query per catalog, all for this database.
  const tables = await rows<TableRow>(tablesSql, [db]);
  const indexParts = await rows<IndexPartRow>(indexPartsSql(Number(about.hasIndexExpressions) > 0), [db]);
  const foreignKeyRows = await rows<ForeignKeyRow>(foreignKeysSql, [db]);
  const columns = await rows<ColumnRow>(columnsSql, [db]);
  const sizes = await optional(
    ['indexes.unused'],
    `GRANT SELECT ON mysql.innodb_index_stats TO ${account};`,
    () => rows<IndexSizeRow>(indexSizesSql, [db]),
  );

  // performance_schema: index usage and statement digests.
  let usage: IndexUsageRow[] | undefined;
  let digests: DigestRow[] | undefined;
  const psChecks = ['indexes.unused', 'mysql.full-table-scans'];
  if (!performanceSchema) {
    skips.add(
      psChecks,
      'performance_schema is OFF, so the server counts neither index reads nor statements without an index',
      'Set performance_schema=ON in the [mysqld] section of my.cnf and restart the server (counts start at the restart)',
    );
  } else {
    const psGrant = `GRANT SELECT ON performance_schema.* TO ${account};`;
    const setup = (
      await optional(psChecks, psGrant, () => rows<PerfSchemaSetupRow>(perfSchemaSetupSql))
    )?.[0];
    if (setup) {
      if (!isOn(setup.globalInstrumentation) || !isOn(setup.tableIo)) {
        skips.add(
          ['indexes.unused'],
          'performance_schema does not count table I/O (instrument wait/io/table/sql/handler or consumer global_instrumentation is disabled)',
          "UPDATE performance_schema.setup_instruments SET ENABLED = 'YES', TIMED = 'YES' WHERE NAME = 'wait/io/table/sql/handler'; UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME = 'global_instrumentation';  -- and the same in my.cnf (performance-schema-instrument, performance-schema-consumer-global-instrumentation) to keep it after a restart",
        );
      } else {
        usage = await optional(['indexes.unused'], psGrant, () => rows<IndexUsageRow>(indexUsageSql, [db]));
      }
      if (!isOn(setup.globalInstrumentation) || !isOn(setup.statementsDigest)) {
        skips.add(
          ['mysql.full-table-scans'],
          'performance_schema does not keep statement digests (consumer statements_digest is disabled)',
          "UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME IN ('global_instrumentation', 'statements_digest');",
        );
      } else {
        digests = await optional(['mysql.full-table-scans'], psGrant, () =>
          rows<DigestRow>(fullScanDigestsSql, [db]),
        );
      }
    }
  }

  const baseTables = tables.filter((t) => t.type === 'BASE TABLE' || t.type === 'SYSTEM VERSIONED');
  const pageSize = num(variables.get('innodb_page_size')) ?? 16384;
  const indexes = indexFacts(baseTables, indexParts, sizes, usage, pageSize);
  const foreignKeys = foreignKeyFacts(foreignKeyRows, db);
  markForeignKeyIndexes(indexes, foreignKeyRows, db);

  const withPrimaryKey = new Set(indexes.filter((i) => i.primary).map((i) => i.table));
  facts.tables = baseTables.map((t): TableFact => {
    const data = num(t.dataBytes);
    const index = num(t.indexBytes);
    return {
      name: t.name,
      hasPrimaryKey: withPrimaryKey.has(t.name),
      rows: num(t.rowEstimate),
      totalBytes: data === null && index === null ? null : (data ?? 0) + (index ?? 0),
    };
  });
  facts.indexes = indexes;
  facts.foreignKeys = foreignKeys;

  const innodb = baseTables.filter((t) => (t.engine ?? '').toLowerCase() === 'innodb');
  mysql.innodbBytes = innodb.reduce((sum, t) => sum + (num(t.dataBytes) ?? 0) + (num(t.indexBytes) ?? 0), 0);
  mysql.nonInnodbTables = baseTables
    .filter((t) => t.engine !== null && t.engine.toLowerCase() !== 'innodb')
    .map((t) => ({ table: t.name, engine: t.engine ?? '?', rows: num(t.rowEstimate) }));
  const baseNames = new Set(baseTables.map((t) => t.name));
  const baseColumns = columns.filter((c) => baseNames.has(c.tableName));
  mysql.charsets = charsetFacts(baseTables, baseColumns, about);
  mysql.autoIncrement = autoIncrementFacts(baseTables, baseColumns);
  if (digests) mysql.fullScans = digests.map(fullScanFact);
  return facts;
}

/** SHOW STATUS / SHOW VARIABLES rows by name, case-insensitively. */
function nameValues(rows: NameValueRow[]): { get(name: string): string | null | undefined } {
  const values = new Map(rows.map((r) => [r.Variable_name.toLowerCase(), r.Value]));
  return { get: (name) => values.get(name.toLowerCase()) };
}

/** `user@host` from CURRENT_USER() as it goes into a GRANT: `'user'@'host'`. */
function quoteAccount(account: string | null): string {
  if (!account) return 'CURRENT_USER';
  const at = account.lastIndexOf('@');
  const user = at >= 0 ? account.slice(0, at) : account;
  const host = at >= 0 ? account.slice(at + 1) : '%';
  const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return `${q(user)}@${q(host)}`;
}

function statusFacts(status: ReturnType<typeof nameValues>): MysqlStatusFacts {
  const n = (name: string): number => num(status.get(name)) ?? 0;
  return {
    connections: n('Connections'),
    abortedConnects: n('Aborted_connects'),
    questions: n('Questions'),
    slowQueries: n('Slow_queries'),
    bufferPoolReadRequests: n('Innodb_buffer_pool_read_requests'),
    bufferPoolReads: n('Innodb_buffer_pool_reads'),
    createdTmpTables: n('Created_tmp_tables'),
    createdTmpDiskTables: n('Created_tmp_disk_tables'),
  };
}

const isIdleInTransaction = (p: ProcessRow): boolean => p.command === 'Sleep' && p.trxId !== null;

function session(p: ProcessRow, query: string | null = p.info): SessionFact {
  return {
    id: Number(p.id),
    user: p.user,
    application: null,
    client: p.host,
    seconds: num(p.seconds) ?? 0,
    query,
  };
}

/**
 * Sessions from the processlist. Idle in a transaction counts the time since the session's last
 * statement (how long it has sat idle), not the transaction's age: a busy session in a long
 * transaction is only momentarily idle between its statements and is not what this check is for.
 */
function activity(
  processes: ProcessRow[],
  lockWaits: LockWaitRow[],
  last: LastStatementRow[],
): ActivityFacts {
  const byId = new Map(processes.map((p) => [Number(p.id), p]));
  const lastById = new Map(last.map((l) => [Number(l.id), l.statement]));
  const blocked = new Map<number, BlockedFact>();
  for (const w of lockWaits) {
    const id = Number(w.id);
    const blocker = Number(w.blocker);
    const p = byId.get(id);
    const entry =
      blocked.get(id) ??
      ({
        id,
        user: p?.user ?? null,
        application: null,
        client: p?.host ?? null,
        seconds: num(w.seconds) ?? 0,
        query: w.query ?? p?.info ?? null,
        blockedBy: [],
      } satisfies BlockedFact);
    if (!entry.blockedBy.includes(blocker)) entry.blockedBy.push(blocker);
    entry.seconds = Math.max(entry.seconds, num(w.seconds) ?? 0);
    blocked.set(id, entry);
  }
  // Metadata-lock waits (an ALTER behind an open transaction, and everything queued behind it):
  // the processlist shows them, but not whom they wait for.
  for (const p of processes) {
    if (blocked.has(Number(p.id)) || !/^Waiting for .*metadata lock$/i.test(p.state ?? '')) continue;
    blocked.set(Number(p.id), { ...session(p), blockedBy: [] });
  }
  return {
    longRunning: processes
      .filter((p) => p.command === 'Query' || p.command === 'Execute')
      .map((p) => session(p)),
    idleInTransaction: processes
      .filter(isIdleInTransaction)
      .map((p) => session(p, lastById.get(Number(p.id)) ?? null)),
    blocked: [...blocked.values()],
  };
}

function replication(status: Record<string, unknown>[], replicas: number | undefined): ReplicationFacts {
  const row = status[0];
  if (row) {
    const pick = (...names: string[]): unknown => names.map((n) => row[n]).find((v) => v !== undefined);
    const io = String(pick('Replica_IO_Running', 'Slave_IO_Running') ?? '');
    const sql = String(pick('Replica_SQL_Running', 'Slave_SQL_Running') ?? '');
    return {
      role: 'replica',
      lagSeconds: num(pick('Seconds_Behind_Source', 'Seconds_Behind_Master')),
      linkUp: io === 'Yes' && sql === 'Yes',
      ...(replicas !== undefined && replicas > 0 ? { replicas } : {}),
    };
  }
  if (replicas !== undefined && replicas > 0) return { role: 'primary', replicas };
  return replicas === undefined ? { role: 'standalone' } : { role: 'standalone', replicas: 0 };
}

const key = (table: string, index: string): string => `${table}\u0000${index}`;

function indexFacts(
  tables: TableRow[],
  parts: IndexPartRow[],
  sizes: IndexSizeRow[] | undefined,
  usage: IndexUsageRow[] | undefined,
  pageSize: number,
): IndexFact[] {
  const engineOf = new Map(tables.map((t) => [t.name, (t.engine ?? '').toLowerCase()]));
  const sizeOf = new Map((sizes ?? []).map((s) => [key(s.tableName, s.indexName), num(s.pages)]));
  const scansOf = new Map((usage ?? []).map((u) => [key(u.tableName, u.indexName), num(u.scans) ?? 0]));
  const grouped = new Map<string, { table: string; name: string; rows: IndexPartRow[] }>();
  for (const part of parts) {
    if (!engineOf.has(part.tableName)) continue;
    const k = key(part.tableName, part.name);
    const entry = grouped.get(k) ?? { table: part.tableName, name: part.name, rows: [] };
    entry.rows.push(part);
    grouped.set(k, entry);
  }
  const indexes = [...grouped.values()].map(({ table, name, rows }): IndexFact => {
    const first = rows[0] as IndexPartRow;
    const method = first.method.toUpperCase();
    const pages = sizeOf.get(key(table, name));
    // performance_schema keeps no row for a table not opened since the restart: unused since then.
    // FULLTEXT searches do not show up in its index I/O counts, so they stay unknown.
    const scans = usage === undefined || method === 'FULLTEXT' ? null : (scansOf.get(key(table, name)) ?? 0);
    return {
      table,
      name,
      columns: rows.map((r) =>
        r.columnName !== null
          ? `${r.columnName}${r.subPart !== null ? `(${r.subPart})` : ''}`
          : `(${r.expression ?? '?'})`,
      ),
      method,
      unique: Number(first.nonUnique) === 0,
      primary: name === 'PRIMARY',
      predicate: null,
      valid: true,
      scans,
      sizeBytes: pages === undefined || pages === null ? null : pages * pageSize,
      constraint: name === 'PRIMARY' ? 'PRIMARY' : null,
    };
  });
  // InnoDB stores the primary key in every secondary B-tree index, after the named columns.
  const primaryOf = new Map(indexes.filter((i) => i.primary).map((i) => [i.table, i]));
  for (const index of indexes) {
    if (index.primary || index.method !== 'BTREE' || engineOf.get(index.table) !== 'innodb') continue;
    const pk = primaryOf.get(index.table);
    if (pk) index.implicitSuffix = [...pk.columns];
  }
  return indexes;
}

interface ForeignKeyGroup {
  table: string;
  name: string;
  columns: string[];
  referencedSchema: string | null;
  referencedTable: string;
  referencedColumns: string[];
}

function groupForeignKeys(rows: ForeignKeyRow[]): ForeignKeyGroup[] {
  const groups = new Map<string, ForeignKeyGroup>();
  for (const r of rows) {
    const k = key(r.tableName, r.name);
    const g = groups.get(k) ?? {
      table: r.tableName,
      name: r.name,
      columns: [],
      referencedSchema: r.referencedSchema,
      referencedTable: r.referencedTable,
      referencedColumns: [],
    };
    g.columns.push(r.columnName);
    if (r.referencedColumn !== null) g.referencedColumns.push(r.referencedColumn);
    groups.set(k, g);
  }
  return [...groups.values()];
}

function foreignKeyFacts(rows: ForeignKeyRow[], db: string): ForeignKeyFact[] {
  return groupForeignKeys(rows).map((g) => ({
    table: g.table,
    name: g.name,
    columns: g.columns,
    referencedTable:
      g.referencedSchema && g.referencedSchema !== db
        ? `${g.referencedSchema}.${g.referencedTable}`
        : g.referencedTable,
  }));
}

/**
 * InnoDB needs an index whose first columns are a foreign key's columns, on both sides; it refuses
 * to drop the last such index (error 1553). For each foreign key we pick the index that keeps
 * that job (the primary key or a unique one if it fits, else the widest) and set its `constraint`
 * to the foreign key's name, so the duplicate and unused checks never suggest dropping it. The
 * other candidates stay droppable: one of them going still leaves the kept one.
 */
function markForeignKeyIndexes(indexes: IndexFact[], rows: ForeignKeyRow[], db: string): void {
  const byTable = new Map<string, IndexFact[]>();
  for (const i of indexes) {
    const list = byTable.get(i.table);
    if (list) list.push(i);
    else byTable.set(i.table, [i]);
  }
  const keep = (table: string, columns: string[], fkName: string): void => {
    if (columns.length === 0) return;
    const candidates = (byTable.get(table) ?? []).filter(
      (i) =>
        i.method === 'BTREE' &&
        i.columns.length >= columns.length &&
        columns.every((c, n) => i.columns[n] === c),
    );
    if (candidates.length === 0 || candidates.some((i) => i.primary)) return;
    const kept = [...candidates].sort(
      (a, b) =>
        Number(b.constraint !== null) - Number(a.constraint !== null) ||
        Number(b.unique) - Number(a.unique) ||
        b.columns.length - a.columns.length ||
        (a.name < b.name ? -1 : 1),
    )[0] as IndexFact;
    kept.constraint ??= fkName;
  };
  for (const fk of groupForeignKeys(rows)) {
    keep(fk.table, fk.columns, fk.name);
    if (!fk.referencedSchema || fk.referencedSchema === db)
      keep(fk.referencedTable, fk.referencedColumns, fk.name);
  }
}

const isUtf8mb3Charset = (charset: string | null): boolean => charset === 'utf8' || charset === 'utf8mb3';
const charsetOfCollation = (collation: string | null): string | null =>
  collation === null ? null : (collation.split('_')[0] ?? null);

function charsetFacts(tables: TableRow[], columns: ColumnRow[], about: AboutRow): MysqlCharsetFacts {
  const byTable = new Map<string, { table: string; tableCollation: string | null; columns: string[] }>();
  let utf8mb4Columns = 0;
  for (const c of columns) {
    if (c.charset === 'utf8mb4') utf8mb4Columns++;
    if (!isUtf8mb3Charset(c.charset)) continue;
    const entry = byTable.get(c.tableName) ?? { table: c.tableName, tableCollation: null, columns: [] };
    entry.columns.push(c.name);
    byTable.set(c.tableName, entry);
  }
  let utf8mb4Tables = 0;
  for (const t of tables) {
    const charset = charsetOfCollation(t.collation);
    if (charset === 'utf8mb4') utf8mb4Tables++;
    const entry = byTable.get(t.name);
    if (entry) entry.tableCollation = t.collation;
    else if (isUtf8mb3Charset(charset))
      byTable.set(t.name, { table: t.name, tableCollation: t.collation, columns: [] });
  }
  return {
    databaseCharset: about.dbCharset,
    databaseCollation: about.dbCollation,
    utf8mb4Tables,
    utf8mb4Columns,
    utf8mb3Tables: [...byTable.values()],
  };
}

const integerMax: Record<string, [signed: number, unsigned: number]> = {
  tinyint: [127, 255],
  smallint: [32767, 65535],
  mediumint: [8388607, 16777215],
  int: [2147483647, 4294967295],
  integer: [2147483647, 4294967295],
  // Beyond 2^53 a JS number is approximate; close enough for a percentage.
  bigint: [2 ** 63 - 1, 2 ** 64 - 1],
};

function autoIncrementFacts(tables: TableRow[], columns: ColumnRow[]): MysqlAutoIncrementFact[] {
  const next = new Map(tables.map((t) => [t.name, num(t.autoIncrement)]));
  const out: MysqlAutoIncrementFact[] = [];
  for (const c of columns) {
    if (!/auto_increment/i.test(c.extra)) continue;
    const limits = integerMax[c.dataType.toLowerCase()];
    const nextValue = next.get(c.tableName);
    if (!limits || nextValue === null || nextValue === undefined) continue;
    const unsigned = /unsigned/i.test(c.columnType);
    out.push({
      table: c.tableName,
      column: c.name,
      dataType: c.dataType.toLowerCase(),
      columnType: c.columnType,
      unsigned,
      nullable: c.nullable === 'YES',
      nextValue,
      maxValue: unsigned ? limits[1] : limits[0],
    });
  }
  return out;
}

function fullScanFact(d: DigestRow): MysqlFullScanFact {
  return {
    statement: d.statement,
    calls: num(d.calls) ?? 0,
    noIndexUsed: num(d.noIndexUsed) ?? 0,
    noGoodIndexUsed: num(d.noGoodIndexUsed) ?? 0,
    rowsExamined: num(d.rowsExamined) ?? 0,
    rowsSent: num(d.rowsSent) ?? 0,
  };
}
