/**
 * The catalog queries behind MySQL/MariaDB `inspect`, and the raw rows they return. One query per
 * kind of object, each filtered to one database, so the number of round trips does not grow with
 * the number of tables: 8 queries, plus one when the database has MariaDB sequences.
 */
import { ConfigError } from '../../core/errors.js';
import type { SqlConnection } from '../contract.js';
import { mysqlErrno } from './mysql-errors.js';

/** What the server is and which optional catalog columns it has. */
export interface AboutRow {
  db: string | null;
  version: string;
  pageSize: number | string | null;
  /** information_schema.STATISTICS.EXPRESSION (functional index parts, MySQL 8.0.13+). */
  hasIndexExpressions: number | string;
  /** information_schema.CHECK_CONSTRAINTS (MySQL 8.0.16+, MariaDB 10.2+). */
  hasCheckConstraints: number | string;
}

export interface TableRow {
  name: string;
  /** BASE TABLE, VIEW, SYSTEM VERSIONED, SEQUENCE (MariaDB), TEMPORARY. */
  type: string;
  rowEstimate: number | string | null;
  tableBytes: number | string | null;
  indexBytes: number | string | null;
  comment: string | null;
}

export interface ColumnRow {
  tableName: string;
  name: string;
  position: number | string;
  type: string;
  dataType: string;
  nullable: string;
  defaultValue: string | null;
  extra: string;
  generation: string | null;
  comment: string | null;
}

export interface TableConstraintRow {
  tableName: string;
  name: string;
  /** UNIQUE or CHECK (primary and foreign keys come from their own queries). */
  type: string;
}

export interface ForeignKeyRow {
  tableName: string;
  name: string;
  columnName: string;
  referencedSchema: string;
  referencedTable: string;
  referencedColumn: string;
  onUpdate: string;
  onDelete: string;
}

/** `SELECT *` rows: MariaDB has TABLE_NAME, MySQL only the (schema-unique) constraint name. */
export interface CheckRow {
  CONSTRAINT_NAME: string;
  CHECK_CLAUSE: string;
  TABLE_NAME?: string;
}

export interface IndexPartRow {
  tableName: string;
  name: string;
  nonUnique: number | string;
  columnName: string | null;
  subPart: number | string | null;
  method: string;
  /** Functional key part (MySQL 8); always null on MariaDB. */
  expression: string | null;
}

export interface ViewRow {
  name: string;
  definition: string | null;
}

export interface IndexSizeRow {
  tableName: string;
  indexName: string;
  pages: number | string;
}

export interface SequenceRow {
  name: string;
  nextNotCached: number | string;
  maximumValue: number | string;
  startValue: number | string;
  increment: number | string;
  cycles: number | string;
}

/** Everything inspect reads, as the catalogs returned it. */
export interface MysqlCatalog {
  about: AboutRow & { db: string };
  tables: TableRow[];
  columns: ColumnRow[];
  constraints: TableConstraintRow[];
  foreignKeys: ForeignKeyRow[];
  checks: CheckRow[];
  indexParts: IndexPartRow[];
  views: ViewRow[];
  /** Empty when mysql.innodb_index_stats cannot be read (no privilege). */
  indexSizes: IndexSizeRow[];
  sequences: SequenceRow[];
}

const aboutSql = `SELECT DATABASE() AS db, VERSION() AS version, @@innodb_page_size AS pageSize,
  (SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema'
     AND TABLE_NAME = 'STATISTICS' AND COLUMN_NAME = 'EXPRESSION') AS hasIndexExpressions,
  (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'information_schema'
     AND TABLE_NAME = 'CHECK_CONSTRAINTS') AS hasCheckConstraints`;

const tablesSql = `SELECT TABLE_NAME AS name, TABLE_TYPE AS type, TABLE_ROWS AS rowEstimate,
  DATA_LENGTH AS tableBytes, INDEX_LENGTH AS indexBytes, TABLE_COMMENT AS comment
FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?`;

const columnsSql = `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, ORDINAL_POSITION AS position,
  COLUMN_TYPE AS type, DATA_TYPE AS dataType, IS_NULLABLE AS nullable, COLUMN_DEFAULT AS defaultValue,
  EXTRA AS extra, GENERATION_EXPRESSION AS generation, COLUMN_COMMENT AS comment
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION`;

const constraintsSql = `SELECT TABLE_NAME AS tableName, CONSTRAINT_NAME AS name, CONSTRAINT_TYPE AS type
FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = ? AND CONSTRAINT_TYPE IN ('UNIQUE', 'CHECK')`;

// Both sides are filtered by schema: information_schema is built on the fly, and a constant
// schema lets the server open only this database's tables instead of every table it has.
const foreignKeysSql = `SELECT k.TABLE_NAME AS tableName, k.CONSTRAINT_NAME AS name, k.COLUMN_NAME AS columnName,
  k.REFERENCED_TABLE_SCHEMA AS referencedSchema, k.REFERENCED_TABLE_NAME AS referencedTable,
  k.REFERENCED_COLUMN_NAME AS referencedColumn, r.UPDATE_RULE AS onUpdate, r.DELETE_RULE AS onDelete
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.TABLE_SCHEMA = ? AND r.CONSTRAINT_SCHEMA = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION`;

const checksSql = `SELECT * FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`;

const indexPartsSql = (
  hasExpressions: boolean,
): string => `SELECT TABLE_NAME AS tableName, INDEX_NAME AS name,
  NON_UNIQUE AS nonUnique, COLUMN_NAME AS columnName, SUB_PART AS subPart, INDEX_TYPE AS method,
  ${hasExpressions ? 'EXPRESSION' : 'NULL'} AS expression
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`;

const viewsSql = `SELECT TABLE_NAME AS name, VIEW_DEFINITION AS definition
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?`;

// InnoDB's persistent statistics: pages per index, refreshed by ANALYZE TABLE and auto-recalc.
const indexSizesSql = `SELECT table_name AS tableName, index_name AS indexName, stat_value AS pages
FROM mysql.innodb_index_stats WHERE database_name = ? AND stat_name = 'size'`;

/** Read every catalog inspect needs for the connection's current database. */
export async function readMysqlCatalog(conn: SqlConnection): Promise<MysqlCatalog> {
  const about = (await conn.query<AboutRow>(aboutSql)).rows[0];
  const db = about?.db;
  if (!about || !db) {
    throw new ConfigError('The MySQL URL names no database, so there is nothing to inspect.', {
      hint: 'Add the database name to the end of the URL, e.g. mysql://user@host:3306/app.',
    });
  }
  const rows = async <Row>(sql: string, params: unknown[] = [db]): Promise<Row[]> =>
    (await conn.query<Row>(sql, params)).rows;
  // Independent reads, so they run side by side on the pool.
  const [tables, columns, constraints, foreignKeys, checks, indexParts, views, indexSizes] =
    await Promise.all([
      rows<TableRow>(tablesSql),
      rows<ColumnRow>(columnsSql),
      rows<TableConstraintRow>(constraintsSql),
      rows<ForeignKeyRow>(foreignKeysSql, [db, db]),
      Number(about.hasCheckConstraints) > 0 ? rows<CheckRow>(checksSql) : Promise.resolve([]),
      rows<IndexPartRow>(indexPartsSql(Number(about.hasIndexExpressions) > 0)),
      rows<ViewRow>(viewsSql),
      rows<IndexSizeRow>(indexSizesSql).catch(unlessNotReadable),
    ]);
  const sequenceNames = tables.filter((t) => t.type === 'SEQUENCE').map((t) => t.name);
  const sequences = sequenceNames.length
    ? await rows<SequenceRow>(sequencesSql(conn, db, sequenceNames), sequenceNames)
    : [];
  return {
    about: { ...about, db },
    tables,
    columns,
    constraints,
    foreignKeys,
    checks,
    indexParts,
    views,
    indexSizes,
    sequences,
  };
}

/**
 * MariaDB sequences are tables of one row; read them all in one UNION ALL. Names go in as
 * parameters (for the name column) and as quoted identifiers (for FROM).
 */
function sequencesSql(conn: SqlConnection, db: string, names: string[]): string {
  return names
    .map(
      (name) => `SELECT ? AS name, next_not_cached_value AS nextNotCached, maximum_value AS maximumValue,
  start_value AS startValue, increment, cycle_count AS cycles FROM ${conn.quoteIdent(db)}.${conn.quoteIdent(name)}`,
    )
    .join('\nUNION ALL\n');
}

/** Index sizes are a nicety: without SELECT on mysql.* (or without InnoDB) inspect reports them as unknown. */
function unlessNotReadable(err: unknown): IndexSizeRow[] {
  // 1142 table access denied, 1143 column access denied, 1146 no such table.
  const errno = mysqlErrno(err);
  if (errno === 1142 || errno === 1143 || errno === 1146) return [];
  throw err;
}
