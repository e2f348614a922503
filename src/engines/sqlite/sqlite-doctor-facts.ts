/**
 * SQLite doctor facts: the shared sections (server, tables, indexes, foreign keys) and the
 * SQLite section (integrity, foreign-key violations, journal mode, free pages, planner
 * statistics, WAL size), read-only, in a bounded number of statements (sqlite-doctor-queries.ts).
 * There is no server: no connections, sessions or replication to report, no uptime, no end of
 * life. SQLite has no index usage counters either (scans stay null, so no "unused index" check).
 *
 * Time bounds: better-sqlite3 runs statements synchronously and cannot interrupt them, so the
 * statement timeout cannot cut a statement short. The checks that read the whole file are bounded
 * by size instead (sqlite.integrityCheckMaxBytes, sqlite.scanMaxBytes); lock waits are bounded by
 * the connection's busy_timeout (at most 5 s), and a locked database skips the check.
 *
 * A corrupt file is a finding, not a crash: a statement failing with SQLITE_CORRUPT adds its
 * message to the integrity facts, and the checks that would read the damaged pages are skipped.
 */
import { existsSync, statSync } from 'node:fs';
import { DbwardError } from '../../core/errors.js';
import type { DoctorFacts, ForeignKeyFact, IndexFact, TableFact } from '../../doctor/facts.js';
import type {
  SqliteFacts,
  SqliteForeignKeyViolation,
  SqliteTableStatistics,
} from '../../doctor/facts/sqlite-facts.js';
import type { SkippedCheck } from '../../doctor/finding.js';
import { formatBytes, type DoctorFixes } from '../../doctor/rule.js';
import { sqliteCollectorLimits } from '../../doctor/rules/sqlite-rules.js';
import type { DoctorFactsRole, SqlSession } from '../contract.js';
import { parseCreateIndex } from './sqlite-ddl.js';
import {
  dbstatSql,
  foreignKeyCheckSql,
  foreignKeysSql,
  indexPartsSql,
  indexSqlSql,
  quote,
  readMaxRowids,
  scalarsSql,
  stat1Sql,
  tablesSql,
  type DbstatRow,
  type ForeignKeyRow,
  type IndexPartRow,
  type ScalarRow,
  type TableRow,
  type ViolationRow,
} from './sqlite-doctor-queries.js';
import { sqliteCode } from './sqlite-errors.js';

const noSessions = '-- SQLite has no server sessions: nothing to cancel or terminate';

export const sqliteDoctorFixes: DoctorFixes = {
  dropIndex: (index) => `DROP INDEX ${quote(index.name)};`,
  createIndexFor: (fk) =>
    `CREATE INDEX ${quote(`${fk.table}_${fk.columns.join('_')}_idx`)} ON ${quote(fk.table)} (${fk.columns.map(quote).join(', ')});`,
  cancel: () => noSessions,
  terminate: () => noSessions,
};

export const sqliteDoctorFactsRole: DoctorFactsRole = {
  async collect(conn, ctx) {
    if (conn.kind !== 'sql') {
      throw new DbwardError('E_INTERNAL', 'SQLite doctor needs a SQL connection.', {
        context: { engine: 'sqlite', target: ctx.target.name, operation: 'doctor' },
      });
    }
    // One session for the whole collection: nothing else runs on the connection in between.
    return conn.withSession((session) =>
      collectSqliteFacts(session, sqliteCollectorLimits(ctx.thresholds), ctx.spec.file),
    );
  },
  fixes: sqliteDoctorFixes,
};

type Limits = ReturnType<typeof sqliteCollectorLimits>;

/** Collect every SQLite doctor fact over one session. */
export async function collectSqliteFacts(
  session: SqlSession,
  limits: Limits,
  specFile?: string,
): Promise<DoctorFacts> {
  const skipped: SkippedCheck[] = [];
  const corruption: string[] = [];
  const query = async <Row>(sql: string): Promise<Row[]> => (await session.query<Row>(sql)).rows;

  /**
   * Run an optional read: corruption becomes integrity evidence and a lock becomes a skip, for
   * the checks `ids` that needed it; anything else is a bug and is thrown.
   */
  async function guarded<T>(ids: string[], what: string, read: () => Promise<T>): Promise<T | undefined> {
    try {
      return await read();
    } catch (err) {
      const code = sqliteCode(err) ?? '';
      const message = driverMessage(err);
      if (isCorrupt(err)) {
        corruption.push(`${what}: ${message}`);
        for (const id of ids) skipped.push({ id, reason: `the database file is corrupt (${message})` });
        return undefined;
      }
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        for (const id of ids) {
          skipped.push({
            id,
            reason: `the database stayed locked by a writer while reading ${what} (${message})`,
          });
        }
        return undefined;
      }
      throw err;
    }
  }

  let scalars: ScalarRow | undefined;
  try {
    [scalars] = await query<ScalarRow>(scalarsSql);
  } catch (err) {
    // Every statement needs the schema first: when sqlite_schema itself is damaged, nothing
    // else can be read, and that is the one finding.
    if (!isCorrupt(err)) throw err;
    return unreadableSchemaFacts(driverMessage(err), specFile);
  }
  if (!scalars) throw new Error('SQLite returned no row for its header pragmas');
  const file = scalars.file === '' ? null : scalars.file;
  const fileBytes = scalars.page_count * scalars.page_size;

  // Integrity first: the other reads depend on whether the pages can be trusted.
  const fullCheck = file === null || fileBytes <= limits.integrityCheckMaxBytes;
  const check = fullCheck ? 'integrity_check' : 'quick_check';
  const integrityErrors: string[] = [];
  const checked = await guarded(['sqlite.integrity'], check, () =>
    query<Record<string, string>>(`PRAGMA ${check}(100)`),
  );
  if (checked) {
    // One message per row, though newer SQLite packs a b-tree's messages into one row, headed
    // by the database name.
    integrityErrors.push(
      ...checked
        .flatMap((r) => String(Object.values(r)[0]).split('\n'))
        .map((m) => m.trim())
        .filter((m) => m !== '' && m !== 'ok' && !/^\*\*\* in database \w+ \*\*\*$/.test(m)),
    );
    if (integrityErrors.length > 0) await nameDamagedTrees(session, integrityErrors);
  } else if (corruption.length > 0) {
    // The check itself died on the damage: that is the finding, not a skip.
    integrityErrors.push(...corruption.splice(0));
    skipped.splice(0);
  }
  const damaged = (): boolean => integrityErrors.length > 0 || corruption.length > 0;

  // The catalog lives in sqlite_schema (page 1 onwards), read on every open: these run even on a
  // damaged file and fail only when the schema itself is damaged.
  const catalog = await guarded(
    [
      'tables.no-primary-key',
      'indexes.duplicate',
      'indexes.invalid',
      'indexes.foreign-key-without-index',
      'sqlite.foreign-keys-pragma',
      'sqlite.statistics',
    ],
    'the schema',
    async () => ({
      tables: await query<TableRow>(tablesSql),
      parts: await query<IndexPartRow>(indexPartsSql),
      indexSql: new Map(
        (await query<{ name: string; sql: string }>(indexSqlSql)).map((r) => [r.name, r.sql] as const),
      ),
      foreignKeyRows: await query<ForeignKeyRow>(foreignKeysSql),
      analyzed: scalars.has_stat1
        ? new Map((await query<{ tbl: string; n: number }>(stat1Sql)).map((r) => [r.tbl, r.n] as const))
        : new Map<string, number>(),
    }),
  );

  // Whole-file reads: only below the size limit, and not over pages known to be damaged.
  const scanAllowed = (ids: string[], what: string): boolean => {
    if (damaged()) {
      for (const id of ids) skipped.push({ id, reason: `not run on a corrupt database file (${what})` });
      return false;
    }
    if (file !== null && fileBytes > limits.scanMaxBytes) {
      for (const id of ids) {
        skipped.push({
          id,
          reason: `${what} reads the whole file, and it is larger than sqlite.scanMaxBytes (${formatBytes(fileBytes)} > ${formatBytes(limits.scanMaxBytes)})`,
          enableWith: `doctor: { thresholds: { 'sqlite.scanMaxBytes': ${Math.ceil(fileBytes / 1024 ** 3) * 1024 ** 3} } } in the target's config`,
        });
      }
      return false;
    }
    return true;
  };

  let dbstat: Map<string, DbstatRow> | null = null;
  if (catalog && file !== null && fileBytes <= limits.scanMaxBytes && !damaged()) {
    dbstat = (await guarded([], 'dbstat', () => readDbstat(session))) ?? null;
  }

  let violations: SqliteForeignKeyViolation[] | null = null;
  let foreignKeyMismatch: string | undefined;
  if (catalog && catalog.foreignKeyRows.length === 0) {
    violations = [];
  } else if (catalog && scanAllowed(['sqlite.foreign-key-violations'], 'PRAGMA foreign_key_check')) {
    const withoutRowid = new Set(catalog.tables.filter((t) => t.wr === 1).map((t) => t.name));
    const result = await guarded(['sqlite.foreign-key-violations'], 'PRAGMA foreign_key_check', () =>
      foreignKeyCheck(session),
    );
    if (result && 'mismatch' in result) {
      violations = [];
      foreignKeyMismatch = result.mismatch;
    } else if (result) {
      violations = result.map((r) => ({
        table: r.child,
        parent: r.parent,
        rows: r.n,
        hasRowid: !withoutRowid.has(r.child),
      }));
    }
  }

  // Server: no uptime (no server), no end of life (SQLite has none); no connections, sessions
  // or replication sections for an embedded engine.
  const facts: DoctorFacts = { server: { engine: 'sqlite', version: scalars.version }, skipped };

  let statistics: SqliteTableStatistics[] = [];
  if (catalog) {
    const indexes = buildIndexes(catalog.tables, catalog.parts, catalog.indexSql, dbstat);
    const counts = new Map<string, { rows: number; estimated: boolean }>();
    for (const t of catalog.tables) {
      const stat = dbstat?.get(t.name);
      if (stat) counts.set(t.name, { rows: t.wr === 1 ? stat.cells : stat.leaf_cells, estimated: false });
    }
    // Per table: how many indexes, and their bytes (Maps: thousands of tables must stay linear).
    const indexed = new Map<string, { count: number; bytes: number }>();
    for (const i of indexes) {
      const entry = indexed.get(i.table) ?? { count: 0, bytes: 0 };
      entry.count++;
      entry.bytes += i.sizeBytes ?? 0;
      indexed.set(i.table, entry);
    }
    // Without dbstat: estimate the indexed rowid tables that have no statistics from max(rowid).
    const toEstimate = catalog.tables
      .filter(
        (t) => t.wr === 0 && indexed.has(t.name) && !counts.has(t.name) && !catalog.analyzed.has(t.name),
      )
      .map((t) => t.name);
    if (toEstimate.length > 0 && !damaged()) {
      const estimates = await guarded([], 'max(rowid)', () => readMaxRowids(session, toEstimate));
      for (const [name, n] of estimates ?? []) counts.set(name, { rows: n, estimated: true });
    }

    facts.tables = catalog.tables.map((t): TableFact => {
      const own = dbstat?.get(t.name)?.bytes;
      const indexBytes = indexed.get(t.name)?.bytes ?? 0;
      return {
        name: t.name,
        // Every rowid table has an implicit rowid, but it is no key for the application: it is
        // invisible to SELECT *, and VACUUM may renumber it. Only a declared key counts.
        hasPrimaryKey: t.wr === 1 || t.pk_columns > 0,
        rows: counts.get(t.name)?.rows ?? catalog.analyzed.get(t.name) ?? null,
        totalBytes: own === undefined ? null : own + indexBytes,
      };
    });
    facts.indexes = indexes;
    facts.foreignKeys = buildForeignKeys(catalog.foreignKeyRows);
    statistics = [...indexed.keys()].sort().map((table) => {
      const count = counts.get(table);
      return {
        table,
        indexes: indexed.get(table)?.count ?? 0,
        rows: count?.rows ?? null,
        rowsEstimated: count?.estimated ?? false,
        analyzedRows: catalog.analyzed.get(table) ?? null,
      };
    });
  }

  facts.sqlite = {
    file,
    pageSize: scalars.page_size,
    pageCount: scalars.page_count,
    freelistCount: scalars.freelist_count,
    autoVacuum: scalars.auto_vacuum === 1 ? 'full' : scalars.auto_vacuum === 2 ? 'incremental' : 'none',
    journalMode: scalars.journal_mode.toLowerCase(),
    foreignKeysEnforced: scalars.foreign_keys === 1,
    integrity: {
      check,
      fullCheckSkipped: fullCheck
        ? null
        : `the file (${formatBytes(fileBytes)}) is larger than sqlite.integrityCheckMaxBytes (${formatBytes(limits.integrityCheckMaxBytes)})`,
      errors: [...new Set([...integrityErrors, ...corruption])],
    },
    foreignKeyViolations: violations,
    ...(foreignKeyMismatch === undefined ? {} : { foreignKeyMismatch }),
    walBytes: walFileBytes(file),
    statistics,
  } satisfies SqliteFacts;
  return facts;
}

async function readDbstat(session: SqlSession): Promise<Map<string, DbstatRow> | null> {
  try {
    const { rows } = await session.query<DbstatRow>(dbstatSql);
    return new Map(rows.map((r) => [r.name, r] as const));
  } catch (err) {
    // SQLite built without SQLITE_ENABLE_DBSTAT_VTAB: sizes and exact counts stay unknown.
    if (/no such table: dbstat/i.test(driverMessage(err))) return null;
    throw err;
  }
}

/**
 * PRAGMA foreign_key_check. A foreign key whose parent columns are not a key of the parent table
 * makes it fail as a whole ("foreign key mismatch"): that message is returned instead of rows.
 */
async function foreignKeyCheck(session: SqlSession): Promise<ViolationRow[] | { mismatch: string }> {
  try {
    return (await session.query<ViolationRow>(foreignKeyCheckSql)).rows;
  } catch (err) {
    const message = driverMessage(err);
    if (!/foreign key mismatch/i.test(message)) throw err;
    return { mismatch: message };
  }
}

function buildIndexes(
  tables: TableRow[],
  parts: IndexPartRow[],
  indexSql: Map<string, string>,
  dbstat: Map<string, DbstatRow> | null,
): IndexFact[] {
  const ipk = new Map(tables.map((t) => [t.name, t.ipk] as const));
  const byIndex = new Map<string, IndexPartRow[]>();
  for (const p of parts) {
    const list = byIndex.get(p.index_name);
    if (list) list.push(p);
    else byIndex.set(p.index_name, [p]);
  }
  return [...byIndex].map(([name, rows]): IndexFact => {
    const first = rows[0] as IndexPartRow;
    const keys = rows.filter((r) => r.key === 1);
    const sql = indexSql.get(name);
    const needsSql = first.partial === 1 || keys.some((k) => k.cid === -2);
    const ddl = needsSql && sql ? parseCreateIndex(sql) : { terms: [], predicate: null };
    const columnName = (r: IndexPartRow): string =>
      r.cid === -1 ? (ipk.get(r.table_name) ?? 'rowid') : (r.column_name ?? 'rowid');
    return {
      table: first.table_name,
      name,
      // Expression parts by their text; a non-default collation makes a different key.
      columns: keys.map((k) => {
        const base = k.cid === -2 ? (ddl.terms[k.seqno] ?? '<expr>') : columnName(k);
        return k.coll && k.coll.toUpperCase() !== 'BINARY' ? `${base} COLLATE ${k.coll}` : base;
      }),
      method: 'btree',
      unique: first.is_unique === 1,
      primary: first.origin === 'pk',
      predicate: first.partial === 1 ? (ddl.predicate ?? '<predicate>') : null,
      valid: true,
      scans: null,
      // A WITHOUT ROWID table's primary key is the table's own b-tree: no size of its own.
      sizeBytes: dbstat ? (dbstat.get(name)?.bytes ?? null) : null,
      constraint: first.origin === 'pk' ? 'PRIMARY KEY' : first.origin === 'u' ? 'UNIQUE' : null,
      // What SQLite appends to every index: the rowid (an INTEGER PRIMARY KEY is the rowid), or
      // the primary key of a WITHOUT ROWID table.
      implicitSuffix: rows.filter((r) => r.key === 0).map(columnName),
    };
  });
}

function buildForeignKeys(rows: ForeignKeyRow[]): ForeignKeyFact[] {
  const byKey = new Map<string, ForeignKeyRow[]>();
  for (const r of rows) {
    const key = `${r.table_name}\u0000${r.id}`;
    const list = byKey.get(key);
    if (list) list.push(r);
    else byKey.set(key, [r]);
  }
  return [...byKey.values()].map((parts) => {
    const first = parts[0] as ForeignKeyRow;
    return {
      table: first.table_name,
      // SQLite keeps no constraint names in its catalog: the key's number within its table.
      name: `fk${first.id}`,
      columns: parts.map((p) => p.from_col),
      referencedTable: first.ref_table,
    };
  });
}

/** `Tree 3 page 16 …` → `Tree 3 (payload) page 16 …`: which table or index the damage is in. */
async function nameDamagedTrees(session: SqlSession, messages: string[]): Promise<void> {
  try {
    const { rows } = await session.query<{ name: string; rootpage: number }>(
      `SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 0`,
    );
    const names = new Map(rows.map((r) => [r.rootpage, r.name] as const));
    for (let i = 0; i < messages.length; i++) {
      messages[i] = (messages[i] as string).replace(/^Tree (\d+)\b/, (all, root: string) => {
        const name = names.get(Number(root));
        return name === undefined ? all : `${all} (${name})`;
      });
    }
  } catch {
    // Names are a convenience: the messages stand without them.
  }
}

function isCorrupt(err: unknown): boolean {
  const code = sqliteCode(err) ?? '';
  return code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB');
}

/** The facts of a file whose schema cannot be read: only the integrity finding can be made. */
function unreadableSchemaFacts(message: string, file: string | undefined): DoctorFacts {
  const sqlite: SqliteFacts = {
    file: file === undefined || file === ':memory:' ? null : file,
    pageSize: 0,
    pageCount: 0,
    freelistCount: 0,
    autoVacuum: 'none',
    journalMode: 'unknown',
    foreignKeysEnforced: true,
    integrity: { check: 'none', fullCheckSkipped: null, errors: [`reading the schema: ${message}`] },
    foreignKeyViolations: null,
    walBytes: null,
    statistics: [],
  };
  const reason = `the database schema cannot be read (${message})`;
  return {
    server: { engine: 'sqlite', version: 'unknown' },
    sqlite,
    skipped: [
      'sqlite.foreign-key-violations',
      'sqlite.statistics',
      'sqlite.free-pages',
      'sqlite.journal-mode',
    ].map((id) => ({ id, reason })),
  };
}

function walFileBytes(file: string | null): number | null {
  if (file === null) return null;
  const wal = `${file}-wal`;
  try {
    return existsSync(wal) ? statSync(wal).size : null;
  } catch {
    return null;
  }
}

function driverMessage(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}
