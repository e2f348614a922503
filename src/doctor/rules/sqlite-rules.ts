/**
 * Rules judging the sqlite section of the facts (src/doctor/facts/sqlite-facts.ts). Engine-neutral
 * code in the sense that matters: pure functions of collected facts, unit-tested without a server.
 * The shared sections (tables without a primary key, duplicate indexes, foreign keys without an
 * index) are judged by common-rules.ts; these are the checks only an embedded file database needs.
 */
import { finding, formatBytes, formatCount, formatPercent, type Rule } from '../rule.js';

export const sqliteThresholds = {
  /**
   * Files up to this size (bytes) get the full PRAGMA integrity_check (it also verifies every
   * index, O(N log N)); larger ones only PRAGMA quick_check. Read by the collector, so only the
   * target's config (`doctor.thresholds`) changes it.
   */
  'sqlite.integrityCheckMaxBytes': 1024 ** 3,
  /**
   * Files up to this size (bytes) are read whole for index sizes and exact row counts (dbstat)
   * and for PRAGMA foreign_key_check; larger ones skip these. Read by the collector, like the above.
   */
  'sqlite.scanMaxBytes': 1024 ** 3,
  /** Free pages above this share of the file (percent)… */
  'sqlite.freePagesPercent': 20,
  /** …and above this many bytes (1 MB) are reported: VACUUM would give the space back. */
  'sqlite.freeMinBytes': 1024 ** 2,
  /** An indexed table with at least this many rows and no sqlite_stat1 entry is reported (info)… */
  'sqlite.statsMinRows': 1_000,
  /** …as a warning from this many rows on. */
  'sqlite.statsWarnRows': 1_000_000,
  /** Statistics are stale when the table has grown this many times past what ANALYZE recorded. */
  'sqlite.statsStaleFactor': 10,
  /** A `-wal` file larger than this (bytes; 64 MB) is reported: checkpoints are not keeping up. */
  'sqlite.walMaxBytes': 64 * 1024 ** 2,
} satisfies Record<string, number>;

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const sqlString = (text: string): string => `'${text.replace(/'/g, "''")}'`;
const shellQuote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

const listed = <T>(items: T[], show: (item: T) => string, max = 10): string[] => {
  const lines = items.slice(0, max).map(show);
  if (items.length > max) lines.push(`… and ${items.length - max} more`);
  return lines;
};

const integrity: Rule = {
  id: 'sqlite.integrity',
  title: 'Database file integrity (PRAGMA integrity_check / quick_check)',
  check({ sqlite }) {
    if (!sqlite) return null;
    const { check, errors, fullCheckSkipped } = sqlite.integrity;
    if (errors.length === 0) return [];
    const file = sqlite.file ?? 'app.db';
    return [
      finding(
        'critical',
        check === 'none'
          ? 'The database file is corrupt: its schema cannot be read'
          : `The database file is corrupt: ${check} reports ${errors.length === 1 ? 'a problem' : `${errors.length} problems`}`,
        [
          ...(sqlite.file ? [`file: ${sqlite.file}`] : []),
          ...(check === 'none'
            ? []
            : [
                `checked with PRAGMA ${check}${check === 'quick_check' ? ' (pages and rows; indexes not compared with their tables)' : ''}:`,
              ]),
          ...listed(errors, (e) => e),
          ...(fullCheckSkipped ? [`(the full integrity_check did not run: ${fullCheckSkipped})`] : []),
        ],
        'Reads of the damaged pages fail or return wrong rows, and writes can spread the damage. Typical causes: a file copied while being written, a disabled sync (synchronous = OFF) and a crash, or faulty storage.',
        [
          '-- Stop the writers and keep a copy of the damaged file (with its -wal/-shm files), then either',
          '-- restore the latest good backup, or salvage what is readable into a new file:',
          `sqlite3 ${shellQuote(file)} ".recover" | sqlite3 ${shellQuote(`${file.replace(/\.[^./]*$/, '')}-recovered.db`)}`,
          '-- and check the result with PRAGMA integrity_check; before putting it in place.',
        ].join('\n'),
      ),
    ];
  },
};

const foreignKeyViolations: Rule = {
  id: 'sqlite.foreign-key-violations',
  title: 'Rows violating foreign keys (PRAGMA foreign_key_check)',
  check({ sqlite }) {
    if (!sqlite?.foreignKeyViolations) return null;
    if (sqlite.foreignKeyMismatch) {
      const [, child, parent] = /"([^"]+)" referencing "([^"]+)"/.exec(sqlite.foreignKeyMismatch) ?? [];
      return [
        finding(
          'warning',
          `A foreign key references columns that are not a key of ${parent ?? 'its parent table'}`,
          [sqlite.foreignKeyMismatch, 'PRAGMA foreign_key_check cannot run until this is fixed'],
          'SQLite requires the referenced columns to be the parent’s PRIMARY KEY or to have a UNIQUE index; otherwise, with foreign keys enforced, every write to the child table (and every delete from the parent) fails with this error.',
          [
            `-- if the referenced columns are unique, say so (then rerun doctor to check the rows):`,
            `CREATE UNIQUE INDEX ${quote(`${parent ?? 'parent'}_key`)} ON ${quote(parent ?? 'parent')} (<referenced columns>);`,
            `-- otherwise point the foreign key of ${child ?? 'the child table'} at the parent's key (recreate the table).`,
          ].join('\n'),
        ),
      ];
    }
    const violations = sqlite.foreignKeyViolations;
    if (violations.length === 0) return [];
    const total = violations.reduce((sum, v) => sum + v.rows, 0);
    return [
      finding(
        'warning',
        `${formatCount(total)} row(s) in ${new Set(violations.map((v) => v.table)).size} table(s) point to parent rows that do not exist`,
        listed(violations, (v) => `${v.table} → ${v.parent}: ${formatCount(v.rows)} orphan row(s)`),
        'SQLite checks foreign keys only on connections that ran PRAGMA foreign_keys = ON; some writer did not, and left rows whose parent is gone. Joins silently drop them, and a later write with enforcement on can fail on them.',
        violations
          .map((v) =>
            [
              `-- ${v.table}: list the orphans, then fix their references or delete them:`,
              `SELECT * FROM pragma_foreign_key_check(${sqlString(v.table)});`,
              v.hasRowid
                ? `DELETE FROM ${quote(v.table)} WHERE rowid IN (SELECT rowid FROM pragma_foreign_key_check(${sqlString(v.table)}) WHERE parent = ${sqlString(v.parent)});`
                : `-- (WITHOUT ROWID table: delete by its primary key, from the listing above)`,
            ].join('\n'),
          )
          .join('\n'),
      ),
    ];
  },
};

const foreignKeysPragma: Rule = {
  id: 'sqlite.foreign-keys-pragma',
  title: 'Foreign keys enforced on the connection',
  check({ sqlite, foreignKeys }) {
    if (!sqlite || !foreignKeys || foreignKeys.length === 0) return null;
    if (sqlite.foreignKeysEnforced) return [];
    return [
      finding(
        'info',
        `${foreignKeys.length} foreign key(s) are declared but not enforced on this connection`,
        ['PRAGMA foreign_keys = 0 on the connection doctor used'],
        'SQLite enforces foreign keys only on connections that turn them on, each time they connect; dbward does, but every application connection must too, or orphan rows creep in.',
        'PRAGMA foreign_keys = ON;  -- run on every connection, right after opening it',
      ),
    ];
  },
};

const journalMode: Rule = {
  id: 'sqlite.journal-mode',
  title: 'Journal mode (WAL)',
  check({ sqlite }) {
    if (!sqlite || sqlite.file === null) return null;
    if (sqlite.journalMode === 'wal') return [];
    return [
      finding(
        'info',
        `The database uses journal mode ${sqlite.journalMode}, not WAL`,
        [`journal_mode = ${sqlite.journalMode}`],
        'In rollback-journal modes a writer blocks every reader while it commits, and readers block the writer; WAL lets readers and one writer work at once and usually writes faster. WAL needs the file on a local disk (shared memory), not a network share.',
        'PRAGMA journal_mode = WAL;  -- stored in the file: once is enough',
      ),
    ];
  },
};

const freePages: Rule = {
  id: 'sqlite.free-pages',
  title: 'Free pages in the file',
  check({ sqlite }, { thresholds }) {
    if (!sqlite || sqlite.pageCount === 0) return null;
    const ratio = sqlite.freelistCount / sqlite.pageCount;
    const freeBytes = sqlite.freelistCount * sqlite.pageSize;
    if (
      ratio * 100 <= thresholds['sqlite.freePagesPercent'] ||
      freeBytes <= thresholds['sqlite.freeMinBytes']
    ) {
      return [];
    }
    const incremental = sqlite.autoVacuum === 'incremental';
    return [
      finding(
        'warning',
        `${formatPercent(ratio)} of the file is free pages (${formatBytes(freeBytes)})`,
        [
          `free pages: ${formatCount(sqlite.freelistCount)} of ${formatCount(sqlite.pageCount)} (${formatBytes(sqlite.pageSize)} each)`,
          `file size: ${formatBytes(sqlite.pageCount * sqlite.pageSize)}`,
          `auto_vacuum = ${sqlite.autoVacuum}`,
        ],
        'Deleted data leaves free pages the file keeps: SQLite reuses them for new rows but never gives them back to the disk by itself, and backups and copies carry them along.',
        incremental
          ? 'PRAGMA incremental_vacuum;  -- auto_vacuum = incremental: frees the pages without rewriting the file'
          : 'VACUUM;  -- rewrites the whole file: needs free disk space of about its size and takes the write lock while it runs',
      ),
    ];
  },
};

const statistics: Rule = {
  id: 'sqlite.statistics',
  title: 'Planner statistics (sqlite_stat1)',
  check({ sqlite }, { thresholds }) {
    if (!sqlite) return null;
    const min = thresholds['sqlite.statsMinRows'];
    const about = (s: { rows: number | null; rowsEstimated: boolean }): string =>
      `${s.rowsEstimated ? '~' : ''}${formatCount(s.rows ?? 0)} rows`;
    const missing = sqlite.statistics.filter(
      (s) => s.analyzedRows === null && s.rows !== null && s.rows >= min,
    );
    const stale = sqlite.statistics.filter(
      (s) =>
        s.analyzedRows !== null &&
        s.rows !== null &&
        s.rows >= min &&
        s.rows > s.analyzedRows * thresholds['sqlite.statsStaleFactor'],
    );
    const found = [];
    if (missing.length > 0) {
      const big = missing.some((s) => (s.rows ?? 0) >= thresholds['sqlite.statsWarnRows']);
      found.push(
        finding(
          big ? 'warning' : 'info',
          `${missing.length} indexed table(s) have no planner statistics`,
          listed(missing, (s) => `${s.table}: ${about(s)}, ${s.indexes} index(es), not in sqlite_stat1`),
          'Without statistics SQLite guesses how selective each index is, and on larger tables it can pick a poor index or a full scan. SQLite never gathers them by itself.',
          'PRAGMA optimize;  -- analyzes the tables that need it (or ANALYZE; for all)',
        ),
      );
    }
    if (stale.length > 0) {
      found.push(
        finding(
          'info',
          `${stale.length} table(s) have grown far past their planner statistics`,
          listed(
            stale,
            (s) => `${s.table}: ${about(s)} now, ${formatCount(s.analyzedRows ?? 0)} when last analyzed`,
          ),
          'The planner still sizes these tables by the old counts; plans chosen for a small table can be slow for a large one.',
          'PRAGMA optimize;  -- run it periodically, e.g. before closing long-lived connections',
        ),
      );
    }
    return found;
  },
};

const walSize: Rule = {
  id: 'sqlite.wal-size',
  title: 'Size of the write-ahead log (-wal file)',
  check({ sqlite }, { thresholds }) {
    if (!sqlite || sqlite.file === null || sqlite.journalMode !== 'wal') return null;
    const bytes = sqlite.walBytes ?? 0;
    if (bytes <= thresholds['sqlite.walMaxBytes']) return [];
    return [
      finding(
        'warning',
        `The write-ahead log is ${formatBytes(bytes)}`,
        [
          `${sqlite.file}-wal: ${formatBytes(bytes)}`,
          `database file: ${formatBytes(sqlite.pageCount * sqlite.pageSize)}`,
        ],
        'Checkpoints copy the log back into the database and let it restart; a log this large means they do not finish — most often a long-lived reader (an open read transaction or an unfinished statement) keeps them from reaching the end, or wal_autocheckpoint is off. Reads get slower as the log grows, and the file keeps its size until a TRUNCATE checkpoint.',
        'PRAGMA wal_checkpoint(TRUNCATE);  -- when no reader holds an old snapshot; find and end the long-lived reader first',
      ),
    ];
  },
};

export const sqliteRules: Rule[] = [
  integrity,
  foreignKeyViolations,
  foreignKeysPragma,
  journalMode,
  freePages,
  statistics,
  walSize,
];

/** The collector's size limits: defaults, overridden by the target's `doctor.thresholds`. */
export function sqliteCollectorLimits(overrides: Record<string, number> | undefined): {
  integrityCheckMaxBytes: number;
  scanMaxBytes: number;
} {
  return {
    integrityCheckMaxBytes:
      overrides?.['sqlite.integrityCheckMaxBytes'] ?? sqliteThresholds['sqlite.integrityCheckMaxBytes'],
    scanMaxBytes: overrides?.['sqlite.scanMaxBytes'] ?? sqliteThresholds['sqlite.scanMaxBytes'],
  };
}
