/**
 * Rules judging the mysql section of the facts (src/doctor/facts/mysql-facts.ts). Engine-neutral
 * code in the sense that matters: pure functions of collected facts, unit-tested without a server.
 * Ratios of server counters are judged only once the counters are big enough to mean something,
 * so a freshly started server never warns. Thresholds after MySQLTuner where it has one.
 */
import type { DoctorFacts } from '../facts.js';
import type { MysqlFacts } from '../facts/mysql-facts.js';
import { finding, formatBytes, formatCount, formatPercent, type Rule } from '../rule.js';

export const mysqlThresholds = {
  /** Failed connection attempts above this share of all attempts (percent) are a warning (MySQLTuner: 3). */
  'mysql.abortedConnectsPercent': 3,
  /** …judged only after this many connection attempts. */
  'mysql.abortedConnectsMinConnections': 1000,
  /** Statements slower than long_query_time above this share of all (percent) are a warning (MySQLTuner: 5). */
  'mysql.slowQueriesPercent': 5,
  /** …judged only after this many statements (Questions). */
  'mysql.slowQueriesMinQuestions': 10_000,
  /** InnoDB buffer pool reads served from memory below this share (percent) are a warning (MySQLTuner: 90). */
  'mysql.bufferPoolHitPercent': 90,
  /** …judged only after this many logical reads. */
  'mysql.bufferPoolMinReadRequests': 100_000,
  /** This database's InnoDB data + indexes above this share of the buffer pool (percent) is reported (info). */
  'mysql.bufferPoolDataPercent': 100,
  /** Internal temporary tables going to disk above this share (percent) are a warning (MySQLTuner: 25). */
  'mysql.tmpDiskTablesPercent': 25,
  /** …judged only after this many temporary tables. */
  'mysql.tmpTablesMin': 10_000,
  /** A statement that ran without an index at least this many times… */
  'mysql.fullScanMinExecutions': 1000,
  /** …examining at least this many rows per execution on average is a warning (fewer: info). */
  'mysql.fullScanMinRowsExamined': 10_000,
  /** AUTO_INCREMENT past this share of its column type's maximum (percent) is a warning… */
  'mysql.autoIncrementWarnPercent': 90,
  /** …and critical past this one. */
  'mysql.autoIncrementCriticalPercent': 98,
} satisfies Record<string, number>;

const listed = <T>(items: T[], show: (item: T) => string, max = 10): string[] => {
  const lines = items.slice(0, max).map(show);
  if (items.length > max) lines.push(`… and ${items.length - max} more`);
  return lines;
};

const quote = (name: string): string => `\`${name.replace(/`/g, '``')}\``;

/** The mysql section with `part` collected, or null (the rule does not run). */
function part<K extends keyof MysqlFacts>(facts: DoctorFacts, key: K): NonNullable<MysqlFacts[K]> | null {
  const value = facts.mysql?.[key];
  return value === undefined || value === null ? null : (value as NonNullable<MysqlFacts[K]>);
}

const abortedConnects: Rule = {
  id: 'mysql.aborted-connects',
  title: 'Failed connection attempts',
  check(facts, { thresholds }) {
    const status = part(facts, 'status');
    if (!status) return null;
    if (status.connections < thresholds['mysql.abortedConnectsMinConnections']) return [];
    const ratio = status.abortedConnects / status.connections;
    if (ratio * 100 <= thresholds['mysql.abortedConnectsPercent']) return [];
    return [
      finding(
        'warning',
        `${formatPercent(ratio)} of connection attempts failed`,
        [
          `Aborted_connects: ${formatCount(status.abortedConnects)}`,
          `Connections: ${formatCount(status.connections)}`,
        ],
        'Failed attempts are wrong passwords, unknown databases or clients that time out in the handshake: a misconfigured application, or someone guessing passwords. Enough of them from one host get it blocked (max_connect_errors).',
        'Find the clients in the error log (log_warnings >= 2 / log_error_verbosity = 3 logs each failure); on MySQL 8: SELECT * FROM performance_schema.host_cache WHERE SUM_CONNECT_ERRORS > 0;',
      ),
    ];
  },
};

const slowQueryLog: Rule = {
  id: 'mysql.slow-query-log',
  title: 'Slow query log',
  check(facts) {
    const settings = part(facts, 'settings');
    if (!settings) return null;
    if (settings.slowQueryLog) return [];
    return [
      finding(
        'info',
        'The slow query log is off',
        [`slow_query_log = OFF`, `long_query_time = ${settings.longQueryTimeSeconds} s`],
        'Without it there is no record of which statements were slow when something went wrong, and no input for pt-query-digest.',
        'SET GLOBAL slow_query_log = ON;\nSET GLOBAL long_query_time = 1;\n-- and slow_query_log = ON, long_query_time = 1 in the [mysqld] section of my.cnf to keep it after a restart',
      ),
    ];
  },
};

const slowQueries: Rule = {
  id: 'mysql.slow-queries',
  title: 'Share of slow statements',
  check(facts, { thresholds }) {
    const status = part(facts, 'status');
    const settings = part(facts, 'settings');
    if (!status || !settings) return null;
    if (status.questions < thresholds['mysql.slowQueriesMinQuestions']) return [];
    const ratio = status.slowQueries / status.questions;
    if (ratio * 100 <= thresholds['mysql.slowQueriesPercent']) return [];
    return [
      finding(
        'warning',
        `${formatPercent(ratio)} of statements took longer than long_query_time (${settings.longQueryTimeSeconds} s)`,
        [`Slow_queries: ${formatCount(status.slowQueries)}`, `Questions: ${formatCount(status.questions)}`],
        'A large share of slow statements means queries are missing indexes or the server is short of memory or I/O; every slow statement holds its locks longer.',
        settings.slowQueryLog
          ? 'Summarize the slow query log (pt-query-digest /path/to/slow.log) and index or rewrite the top statements.'
          : 'SET GLOBAL slow_query_log = ON;  -- then summarize the log with pt-query-digest and index or rewrite the top statements',
      ),
    ];
  },
};

const bufferPoolHitRate: Rule = {
  id: 'mysql.buffer-pool-hit-rate',
  title: 'InnoDB buffer pool hit rate',
  check(facts, { thresholds }) {
    const status = part(facts, 'status');
    const settings = part(facts, 'settings');
    if (!status || !settings) return null;
    if (status.bufferPoolReadRequests < thresholds['mysql.bufferPoolMinReadRequests']) return [];
    const hit = 1 - status.bufferPoolReads / status.bufferPoolReadRequests;
    if (hit * 100 >= thresholds['mysql.bufferPoolHitPercent']) return [];
    return [
      finding(
        'warning',
        `Only ${formatPercent(hit)} of InnoDB reads are served from the buffer pool`,
        [
          `Innodb_buffer_pool_read_requests: ${formatCount(status.bufferPoolReadRequests)}`,
          `Innodb_buffer_pool_reads (from disk): ${formatCount(status.bufferPoolReads)}`,
          `innodb_buffer_pool_size: ${formatBytes(settings.bufferPoolBytes)}`,
        ],
        'Reads that miss the buffer pool go to disk, orders of magnitude slower; the working set does not fit in memory.',
        'SET GLOBAL innodb_buffer_pool_size = <bytes>;  -- resizable online; on a dedicated server about 70–80 % of RAM, and the same in my.cnf',
      ),
    ];
  },
};

const bufferPoolSize: Rule = {
  id: 'mysql.buffer-pool-size',
  title: 'InnoDB buffer pool size vs the data',
  check(facts, { thresholds }) {
    const settings = part(facts, 'settings');
    const bytes = part(facts, 'innodbBytes');
    if (!settings || bytes === null || settings.bufferPoolBytes <= 0) return null;
    const ratio = bytes / settings.bufferPoolBytes;
    if (ratio * 100 <= thresholds['mysql.bufferPoolDataPercent']) return [];
    return [
      finding(
        'info',
        `This database's InnoDB data (${formatBytes(bytes)}) is larger than the buffer pool (${formatBytes(settings.bufferPoolBytes)})`,
        [
          `InnoDB data + indexes of ${facts.mysql?.database ?? 'this database'}: ${formatBytes(bytes)}`,
          `innodb_buffer_pool_size: ${formatBytes(settings.bufferPoolBytes)}`,
        ],
        'That is fine while the rows in daily use fit (see the buffer pool hit rate); when they do not, reads go to disk.',
        'SET GLOBAL innodb_buffer_pool_size = <bytes>;  -- if the hit rate is low and memory allows; and the same in my.cnf',
      ),
    ];
  },
};

const tmpDiskTables: Rule = {
  id: 'mysql.tmp-disk-tables',
  title: 'Temporary tables on disk',
  check(facts, { thresholds }) {
    const status = part(facts, 'status');
    if (!status) return null;
    if (status.createdTmpTables < thresholds['mysql.tmpTablesMin']) return [];
    const ratio = status.createdTmpDiskTables / status.createdTmpTables;
    if (ratio * 100 <= thresholds['mysql.tmpDiskTablesPercent']) return [];
    return [
      finding(
        'warning',
        `${formatPercent(ratio)} of internal temporary tables went to disk`,
        [
          `Created_tmp_disk_tables: ${formatCount(status.createdTmpDiskTables)}`,
          `Created_tmp_tables: ${formatCount(status.createdTmpTables)}`,
        ],
        'GROUP BY, DISTINCT, UNION and derived tables that outgrow tmp_table_size / max_heap_table_size (or carry TEXT/BLOB columns) are written to disk, which is slow. Monitoring queries on information_schema add to the count.',
        'SET GLOBAL tmp_table_size = 67108864; SET GLOBAL max_heap_table_size = 67108864;  -- 64 MB, per session and temporary table: mind the memory\n-- and find the statements: SELECT * FROM sys.statements_with_temp_tables;',
      ),
    ];
  },
};

const fullTableScans: Rule = {
  id: 'mysql.full-table-scans',
  title: 'Statements reading without an index',
  check(facts, { thresholds }) {
    const scans = part(facts, 'fullScans');
    if (!scans) return null;
    if (scans.length === 0) return [];
    const withoutIndex = (s: (typeof scans)[number]): number => s.noIndexUsed + s.noGoodIndexUsed;
    const perCall = (s: (typeof scans)[number]): number => (s.calls > 0 ? s.rowsExamined / s.calls : 0);
    const heavy = scans.filter(
      (s) =>
        withoutIndex(s) >= thresholds['mysql.fullScanMinExecutions'] &&
        perCall(s) >= thresholds['mysql.fullScanMinRowsExamined'],
    );
    const light = scans.filter((s) => !heavy.includes(s));
    const line = (s: (typeof scans)[number]): string =>
      `${formatCount(withoutIndex(s))} of ${formatCount(s.calls)} runs without an index, ~${formatCount(perCall(s))} rows examined per run: ${s.statement}`;
    const fix =
      'EXPLAIN <the statement>;  -- then index the columns of its WHERE / JOIN, e.g.\nALTER TABLE `t` ADD INDEX (`column`), ALGORITHM=INPLACE, LOCK=NONE;';
    const out = [];
    if (heavy.length > 0) {
      out.push(
        finding(
          'warning',
          `${heavy.length} frequent statement(s) scan whole tables`,
          listed(heavy, line),
          'A statement without a usable index reads every row of the table on every run: its cost grows with the table, and it keeps the buffer pool busy with rows nobody asked for.',
          fix,
        ),
      );
    }
    if (light.length > 0) {
      out.push(
        finding(
          'info',
          `${light.length} statement(s) ran without an index`,
          listed(light, line),
          'Harmless on small tables; worth an index before the table grows.',
          fix,
        ),
      );
    }
    return out;
  },
};

const nonInnodbTables: Rule = {
  id: 'mysql.non-innodb-tables',
  title: 'Tables not stored in InnoDB',
  check(facts) {
    const tables = part(facts, 'nonInnodbTables');
    if (!tables) return null;
    if (tables.length === 0) return [];
    const risky = tables.filter((t) => /^(myisam|aria)$/i.test(t.engine));
    const other = tables.filter((t) => !risky.includes(t));
    const fix = (list: typeof tables): string =>
      list.map((t) => `ALTER TABLE ${quote(t.table)} ENGINE=InnoDB;`).join('\n') +
      '\n-- rebuilds the table and blocks writes meanwhile; use pt-online-schema-change or gh-ost for big tables';
    const line = (t: (typeof tables)[number]): string =>
      `${t.table}: ${t.engine}${t.rows !== null ? `, ~${formatCount(t.rows)} rows` : ''}`;
    const out = [];
    if (risky.length > 0) {
      out.push(
        finding(
          'warning',
          `${risky.length} table(s) use a non-transactional engine (MyISAM/Aria)`,
          listed(risky, line),
          'MyISAM and Aria have no transactions (a failed statement leaves half its changes), lock the whole table for every write, ignore foreign keys, and MyISAM needs a repair after a crash.',
          fix(risky),
        ),
      );
    }
    if (other.length > 0) {
      out.push(
        finding(
          'info',
          `${other.length} table(s) use an engine other than InnoDB`,
          listed(other, line),
          'Engines such as MEMORY, ARCHIVE or CSV are special-purpose: no transactions, and MEMORY tables are empty after a restart. Fine if that was the intent.',
          fix(other),
        ),
      );
    }
    return out;
  },
};

/** The utf8mb4 collation a utf8mb3 table should move to: the database default, else its own counterpart. */
function targetCollation(tableCollation: string | null, databaseCollation: string | null): string {
  if (databaseCollation?.startsWith('utf8mb4_')) return databaseCollation;
  const suffix = tableCollation?.replace(/^utf8(mb3)?_/, '');
  return suffix && suffix !== tableCollation ? `utf8mb4_${suffix}` : 'utf8mb4_unicode_ci';
}

const utf8mb3: Rule = {
  id: 'mysql.utf8mb3',
  title: 'utf8mb3 (3-byte utf8) tables and columns',
  check(facts) {
    const charsets = part(facts, 'charsets');
    if (!charsets) return null;
    const legacy = charsets.utf8mb3Tables;
    if (legacy.length === 0) return [];
    const mixed =
      charsets.utf8mb4Tables > 0 || charsets.utf8mb4Columns > 0 || charsets.databaseCharset === 'utf8mb4';
    return [
      finding(
        mixed ? 'warning' : 'info',
        mixed
          ? `${legacy.length} table(s) use utf8mb3 next to utf8mb4`
          : `${legacy.length} table(s) use utf8mb3, which cannot store 4-byte characters`,
        listed(
          legacy,
          (t) =>
            `${t.table}: table default ${t.tableCollation ?? '?'}${t.columns.length > 0 ? `; utf8mb3 columns: ${t.columns.join(', ')}` : ''}`,
        ),
        mixed
          ? 'utf8mb3 cannot store emoji and other 4-byte characters (inserts fail or truncate), and joining or comparing utf8mb3 with utf8mb4 columns converts them row by row, so their indexes cannot be used. utf8mb3 is deprecated.'
          : 'utf8mb3 cannot store emoji and other 4-byte characters (inserts fail or truncate); it is deprecated.',
        legacy
          .map(
            (t) =>
              `ALTER TABLE ${quote(t.table)} CONVERT TO CHARACTER SET utf8mb4 COLLATE ${targetCollation(t.tableCollation, charsets.databaseCollation)};`,
          )
          .join('\n') +
          '\n-- rebuilds the table; indexed VARCHAR columns need up to 4 bytes per character (3072-byte key limit with DYNAMIC rows), and TEXT columns may widen',
      ),
    ];
  },
};

const autoIncrement: Rule = {
  id: 'mysql.auto-increment',
  title: 'AUTO_INCREMENT columns near their maximum',
  check(facts, { thresholds }) {
    const columns = part(facts, 'autoIncrement');
    if (!columns) return null;
    const used = (c: (typeof columns)[number]): number => Math.max(0, c.nextValue - 1) / c.maxValue;
    const near = columns
      .filter((c) => used(c) * 100 > thresholds['mysql.autoIncrementWarnPercent'])
      .sort((a, b) => used(b) - used(a));
    if (near.length === 0) return [];
    const critical = near.some((c) => used(c) * 100 > thresholds['mysql.autoIncrementCriticalPercent']);
    return [
      finding(
        critical ? 'critical' : 'warning',
        `${near.length} AUTO_INCREMENT column(s) past ${thresholds['mysql.autoIncrementWarnPercent']} % of their type's maximum`,
        listed(
          near,
          (c) =>
            `${c.table}.${c.column} (${c.columnType}): next value ${formatCount(c.nextValue)} of ${formatCount(c.maxValue)} (${formatPercent(used(c))})`,
        ),
        'When the counter reaches the maximum every insert fails with a duplicate-key error: the table stops taking rows.',
        near
          .map(
            (c) =>
              `ALTER TABLE ${quote(c.table)} MODIFY ${quote(c.column)} BIGINT${c.unsigned ? ' UNSIGNED' : ''}${c.nullable ? '' : ' NOT NULL'} AUTO_INCREMENT;`,
          )
          .join('\n') +
          '\n-- rebuilds the table and blocks writes meanwhile (pt-online-schema-change / gh-ost for big tables); widen the foreign key columns that reference it too',
      ),
    ];
  },
};

const binlog: Rule = {
  id: 'mysql.binlog',
  title: 'Binary log',
  check(facts) {
    const settings = part(facts, 'settings');
    if (!settings) return null;
    if (settings.binlog) return [];
    return [
      finding(
        'info',
        'The binary log is off',
        ['log_bin = OFF'],
        'Without the binary log a backup can only be restored to the moment it was taken (no point-in-time recovery), and the server cannot be a replication source. Fine for a throwaway or a replica that needs neither.',
        'Add log_bin (and server_id, binlog_expire_logs_seconds / expire_logs_days) to the [mysqld] section of my.cnf and restart the server.',
      ),
    ];
  },
};

export const mysqlRules: Rule[] = [
  autoIncrement,
  nonInnodbTables,
  utf8mb3,
  fullTableScans,
  bufferPoolHitRate,
  bufferPoolSize,
  tmpDiskTables,
  slowQueries,
  slowQueryLog,
  abortedConnects,
  binlog,
];
