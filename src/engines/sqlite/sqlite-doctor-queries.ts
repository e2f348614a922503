/**
 * The statements the SQLite doctor collector runs, and their row shapes. Per-table pragmas are
 * joined over the catalog as table-valued functions, so each statement covers every table: the
 * number of statements does not grow with the table count (the max(rowid) fallback batches 200
 * tables per statement).
 */
import type { SqlSession } from '../contract.js';
import type { IndexColumnRow } from './sqlite-catalog.js';

export interface ScalarRow {
  version: string;
  /** Empty for an in-memory database. */
  file: string;
  page_size: number;
  page_count: number;
  freelist_count: number;
  journal_mode: string;
  /** 0 none, 1 full, 2 incremental. */
  auto_vacuum: number;
  foreign_keys: number;
  has_stat1: number;
}

export const scalarsSql = `
  SELECT sqlite_version() AS version,
         (SELECT file FROM pragma_database_list WHERE name = 'main') AS file,
         (SELECT page_size FROM pragma_page_size) AS page_size,
         (SELECT page_count FROM pragma_page_count) AS page_count,
         (SELECT freelist_count FROM pragma_freelist_count) AS freelist_count,
         (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode,
         (SELECT auto_vacuum FROM pragma_auto_vacuum) AS auto_vacuum,
         (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys,
         EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1') AS has_stat1`;

export interface TableRow {
  name: string;
  /** 1 for WITHOUT ROWID tables. */
  wr: number;
  /** Columns declared PRIMARY KEY. */
  pk_columns: number;
  /** The INTEGER PRIMARY KEY column, which is the rowid itself; null when there is none. */
  ipk: string | null;
}

// Ordinary tables only: not views, virtual tables, FTS/R-tree shadow tables or sqlite_% internals.
const userTable = `t.schema = 'main' AND t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`;

export const tablesSql = `
  SELECT t.name, t.wr,
         (SELECT count(*) FROM pragma_table_info(t.name, 'main') c WHERE c.pk > 0) AS pk_columns,
         CASE WHEN t.wr = 0
                   AND (SELECT count(*) FROM pragma_table_info(t.name, 'main') c WHERE c.pk > 0) = 1
              THEN (SELECT c.name FROM pragma_table_info(t.name, 'main') c
                     WHERE c.pk = 1 AND upper(c.type) = 'INTEGER') END AS ipk
    FROM pragma_table_list t
   WHERE ${userTable}
   ORDER BY t.name`;

/** inspect's index-column row (sqlite-catalog.ts), plus what doctor's key comparison needs. */
export interface IndexPartRow extends IndexColumnRow {
  /** Collation of the key part. */
  coll: string | null;
  /** 1 for the named key parts, 0 for what SQLite appends (the rowid, or a WITHOUT ROWID key). */
  key: number;
}

export const indexPartsSql = `
  SELECT t.name AS table_name, i.name AS index_name, i."unique" AS is_unique, i.origin, i.partial,
         x.seqno, x.cid, x.name AS column_name, x.coll, x.key
    FROM pragma_table_list t
    JOIN pragma_index_list(t.name, 'main') i
    JOIN pragma_index_xinfo(i.name, 'main') x
   WHERE ${userTable}
   ORDER BY t.name, i.name, x.seqno`;

/** CREATE INDEX texts: expression terms and partial-index predicates live only there. */
export const indexSqlSql = `SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL`;

export interface ForeignKeyRow {
  table_name: string;
  id: number;
  seq: number;
  ref_table: string;
  from_col: string;
}

export const foreignKeysSql = `
  SELECT t.name AS table_name, f.id, f.seq, f."table" AS ref_table, f."from" AS from_col
    FROM pragma_table_list t JOIN pragma_foreign_key_list(t.name, 'main') f
   WHERE ${userTable}
   ORDER BY t.name, f.id, f.seq`;

export interface ViolationRow {
  child: string;
  parent: string;
  n: number;
}

// Reads every row of every table with a foreign key: the collector runs it below a size limit.
export const foreignKeyCheckSql = `
  SELECT "table" AS child, parent, count(*) AS n
    FROM pragma_foreign_key_check
   GROUP BY "table", parent
   ORDER BY n DESC, child`;

/** Rows ANALYZE recorded per table: each stat row starts with the rows its index covers. */
export const stat1Sql = `SELECT tbl, max(CAST(stat AS INTEGER)) AS n FROM sqlite_stat1 GROUP BY tbl`;

export interface DbstatRow {
  name: string;
  bytes: number;
  /** Cells on leaf pages: the rows of a rowid table. */
  leaf_cells: number;
  /** Cells on leaf and interior pages: the entries of an index (or WITHOUT ROWID) b-tree. */
  cells: number;
}

// Reads every page of the file (the collector runs it below a size limit).
export const dbstatSql = `
  SELECT name, sum(pgsize) AS bytes,
         sum(CASE WHEN pagetype = 'leaf' THEN ncell ELSE 0 END) AS leaf_cells,
         sum(CASE WHEN pagetype IN ('leaf', 'internal') THEN ncell ELSE 0 END) AS cells
    FROM dbstat('main')
   GROUP BY name`;

/**
 * Rowid estimates for tables without a count: max(rowid) is one b-tree descent, not a scan.
 * Compound SELECTs are limited (SQLITE_MAX_COMPOUND_SELECT, 500 by default), hence the batches.
 */
export async function readMaxRowids(session: SqlSession, tables: string[]): Promise<Map<string, number>> {
  const estimates = new Map<string, number>();
  const batch = 200;
  for (let from = 0; from < tables.length; from += batch) {
    const part = tables.slice(from, from + batch);
    const sql = part
      .map((t, i) => `SELECT ${i} AS i, (SELECT max(rowid) FROM "main".${quote(t)}) AS n`)
      .join(' UNION ALL ');
    const { rows } = await session.query<{ i: number; n: number | null }>(sql);
    for (const { i, n } of rows) estimates.set(part[i] as string, n ?? 0);
  }
  return estimates;
}

export function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
