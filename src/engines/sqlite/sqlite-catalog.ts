/**
 * Collect SQLite's catalog as plain rows, in a fixed number of queries however many tables
 * there are: the per-table pragmas are joined against pragma_table_list as table-valued
 * functions, so one statement covers every table. At most nine queries run:
 * scalars, objects, columns, virtual-table columns, foreign keys, indexes, sqlite_stat1,
 * sqlite_sequence and dbstat (the last four only when there is something to read).
 */
import type { SqlSession } from '../contract.js';

export interface ObjectRow {
  type: 'table' | 'view' | 'index';
  name: string;
  tbl_name: string;
  sql: string | null;
  /** pragma_table_list type for tables: `table` or `virtual`. */
  table_type: string | null;
  /** 1 for WITHOUT ROWID tables. */
  wr: number | null;
}

export interface ColumnRow {
  table_name: string;
  cid: number;
  name: string;
  type: string;
  not_null: number;
  dflt_value: string | null;
  /** 1-based position in the primary key, 0 when not part of it. */
  pk: number;
  /** 0 normal, 1 hidden (virtual tables), 2 generated virtual, 3 generated stored. */
  hidden: number;
}

export interface ForeignKeyRow {
  table_name: string;
  id: number;
  seq: number;
  ref_table: string;
  from_col: string;
  /** Null when the reference names no columns and so means the parent's primary key. */
  to_col: string | null;
  on_update: string;
  on_delete: string;
}

export interface IndexColumnRow {
  table_name: string;
  index_name: string;
  is_unique: number;
  /** `c` CREATE INDEX, `u` UNIQUE constraint, `pk` PRIMARY KEY. */
  origin: string;
  partial: number;
  seqno: number;
  /** Column number; -1 the rowid, -2 an expression. */
  cid: number;
  column_name: string | null;
}

export interface SqliteCatalog {
  version: string;
  /** The main database's file path; empty for an in-memory database. */
  file: string;
  objects: ObjectRow[];
  columns: ColumnRow[];
  foreignKeys: ForeignKeyRow[];
  indexColumns: IndexColumnRow[];
  /** Table name → row count ANALYZE recorded; absent without sqlite_stat1. */
  rowCounts: Map<string, number>;
  /** Table name → last AUTOINCREMENT value. */
  sequences: Map<string, number>;
  /** B-tree name (table or index) → bytes; null when dbstat is unavailable or skipped. */
  sizes: Map<string, number> | null;
}

// dbstat reads every page of the file. Below this it costs well under a second; above it,
// sizes are left unknown rather than making every inspect read the whole database.
const dbstatMaxFileBytes = 512 * 1024 * 1024;

// pragma_table_list (SQLite 3.37+) tells tables from views, virtual and FTS shadow tables, and
// knows WITHOUT ROWID; better-sqlite3 bundles its own, newer SQLite.
const isUserTable = `t.schema = 'main' AND t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`;

/** Read every catalog fact inspect needs. */
export async function readSqliteCatalog(session: SqlSession): Promise<SqliteCatalog> {
  const scalars = await one<{
    version: string;
    file: string;
    bytes: number;
    stat1: number;
    sequence: number;
  }>(
    session,
    `SELECT sqlite_version() AS version,
            (SELECT file FROM pragma_database_list WHERE name = 'main') AS file,
            (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size) AS bytes,
            EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1') AS stat1,
            EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence') AS sequence`,
  );
  const objects = await rows<ObjectRow>(
    session,
    // MATERIALIZED: evaluated once, not once per sqlite_schema row (quadratic in table count).
    `WITH t AS MATERIALIZED (SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main')
     SELECT m.type, m.name, m.tbl_name, m.sql, t.type AS table_type, t.wr
       FROM sqlite_schema m
       LEFT JOIN t ON t.name = m.name
      WHERE m.type IN ('table', 'view', 'index') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        AND (m.type <> 'table' OR t.type IN ('table', 'virtual'))
      ORDER BY m.name`,
  );
  return {
    version: scalars.version,
    file: scalars.file,
    objects,
    columns: await readColumns(session, objects),
    foreignKeys: await rows<ForeignKeyRow>(
      session,
      `SELECT t.name AS table_name, f.id, f.seq, f."table" AS ref_table, f."from" AS from_col,
              f."to" AS to_col, f.on_update, f.on_delete
         FROM pragma_table_list t JOIN pragma_foreign_key_list(t.name, 'main') f
        WHERE ${isUserTable}
        ORDER BY t.name, f.id, f.seq`,
    ),
    indexColumns: await rows<IndexColumnRow>(
      session,
      `SELECT t.name AS table_name, i.name AS index_name, i."unique" AS is_unique, i.origin, i.partial,
              x.seqno, x.cid, x.name AS column_name
         FROM pragma_table_list t
         JOIN pragma_index_list(t.name, 'main') i
         JOIN pragma_index_xinfo(i.name, 'main') x
        WHERE ${isUserTable} AND x.key = 1
        ORDER BY t.name, i.name, x.seqno`,
    ),
    rowCounts: scalars.stat1 ? await readRowCounts(session) : new Map(),
    sequences: scalars.sequence
      ? new Map(
          (await rows<{ name: string; seq: number }>(session, 'SELECT name, seq FROM sqlite_sequence')).map(
            (r) => [r.name, r.seq] as const,
          ),
        )
      : new Map(),
    sizes: scalars.bytes <= dbstatMaxFileBytes ? await readSizes(session) : null,
  };
}

async function readColumns(session: SqlSession, objects: ObjectRow[]): Promise<ColumnRow[]> {
  const select = `SELECT t.name AS table_name, c.cid, c.name, c.type, c."notnull" AS not_null,
                         c.dflt_value, c.pk, c.hidden`;
  const columns = await rows<ColumnRow>(
    session,
    `${select} FROM pragma_table_list t JOIN pragma_table_xinfo(t.name, 'main') c
      WHERE ${isUserTable}
      ORDER BY t.name, c.cid`,
  );
  if (!objects.some((o) => o.table_type === 'virtual')) return columns;
  // A virtual table's columns come from its module; one whose module is not loaded here (an
  // extension) fails the whole statement, so virtual tables get their own, optional query.
  try {
    const virtual = await rows<ColumnRow>(
      session,
      `${select} FROM pragma_table_list t JOIN pragma_table_xinfo(t.name, 'main') c
        WHERE t.schema = 'main' AND t.type = 'virtual' AND c.hidden <> 1
        ORDER BY t.name, c.cid`,
    );
    return [...columns, ...virtual];
  } catch (err) {
    if (!/no such module/i.test(String(err))) throw err;
    return columns;
  }
}

async function readRowCounts(session: SqlSession): Promise<Map<string, number>> {
  // Each stat row starts with the number of rows its index covers: the whole table for a full
  // index (or the table's own row, idx NULL), fewer for a partial one; hence the largest.
  const stats = await rows<{ tbl: string; stat: string }>(session, 'SELECT tbl, stat FROM sqlite_stat1');
  const counts = new Map<string, number>();
  for (const { tbl, stat } of stats) {
    const count = Number.parseInt(stat, 10);
    if (Number.isFinite(count)) counts.set(tbl, Math.max(count, counts.get(tbl) ?? 0));
  }
  return counts;
}

async function readSizes(session: SqlSession): Promise<Map<string, number> | null> {
  try {
    // aggregate = 1: one row per b-tree, summed by SQLite.
    const sizes = await rows<{ name: string; bytes: number }>(
      session,
      `SELECT name, pgsize AS bytes FROM dbstat('main', 1)`,
    );
    return new Map(sizes.map((r) => [r.name, r.bytes] as const));
  } catch (err) {
    // SQLite built without SQLITE_ENABLE_DBSTAT_VTAB: sizes stay unknown.
    if (!/dbstat/i.test(String(err))) throw err;
    return null;
  }
}

async function rows<Row>(session: SqlSession, sql: string): Promise<Row[]> {
  return (await session.query<Row>(sql)).rows;
}

async function one<Row>(session: SqlSession, sql: string): Promise<Row> {
  const [row] = await rows<Row>(session, sql);
  if (!row) throw new Error(`expected one row from: ${sql}`);
  return row;
}
