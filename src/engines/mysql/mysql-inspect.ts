/**
 * The MySQL/MariaDB inspect role: catalog rows (see mysql-catalog-queries.ts) turned into the
 * engine-neutral SchemaModel. MySQL has no schemas inside a database, so the database named in
 * the URL is the model's one schema; `options.schemas` does not apply.
 */
import { groupBy, referentialActionFromSql, toNumberOrNull } from '../../core/model-building.js';
import type {
  CheckConstraintInfo,
  ColumnInfo,
  ConstraintInfo,
  ForeignKeyInfo,
  IndexInfo,
  SchemaModel,
  SequenceInfo,
  TableInfo,
  ViewInfo,
} from '../../core/schema-model.js';
import type { Target } from '../../core/target.js';
import type { EngineConnection, InspectRole } from '../contract.js';
import type { ColumnRow, IndexPartRow, MysqlCatalog } from './mysql-catalog-queries.js';
import { readMysqlCatalog } from './mysql-catalog-queries.js';

/** Reads the current database with a fixed number of catalog queries, whatever its size. */
export const mysqlInspectRole: InspectRole = {
  async inspect(conn: EngineConnection, target: Target): Promise<SchemaModel> {
    if (conn.kind !== 'sql') throw new TypeError('mysql inspect needs a SQL connection');
    const catalog = await readMysqlCatalog(conn);
    return buildModel(catalog, target.name, new Date());
  },
};

/** Assemble the model from catalog rows; pure, so every mapping rule is testable from rows. */
export function buildModel(catalog: MysqlCatalog, target: string, now: Date): SchemaModel {
  const db = catalog.about.db;
  const mariadb = /mariadb/i.test(catalog.about.version);
  const columns = groupBy(catalog.columns, (c) => c.tableName);
  const indexes = buildIndexes(catalog);
  const foreignKeys = buildForeignKeys(catalog);
  const checks = buildChecks(catalog);
  const uniques = groupBy(
    catalog.constraints.filter((c) => c.type === 'UNIQUE'),
    (c) => c.tableName,
  );
  const tables = catalog.tables
    .filter((t) => t.type === 'BASE TABLE' || t.type === 'SYSTEM VERSIONED')
    .map((t): TableInfo => {
      const tableIndexes = indexes.get(t.name) ?? [];
      const primary = tableIndexes.find((i) => i.primary);
      const tableBytes = toNumberOrNull(t.tableBytes);
      const indexBytes = toNumberOrNull(t.indexBytes);
      return {
        schema: db,
        name: t.name,
        rowEstimate: toNumberOrNull(t.rowEstimate),
        tableBytes,
        indexBytes,
        totalBytes: tableBytes === null && indexBytes === null ? null : (tableBytes ?? 0) + (indexBytes ?? 0),
        comment: t.comment || null,
        columns: (columns.get(t.name) ?? []).map((c) => buildColumn(c, mariadb)),
        primaryKey: primary ? { name: primary.name, columns: primary.columns.map(stripPrefix) } : null,
        foreignKeys: foreignKeys.get(t.name) ?? [],
        uniqueConstraints: (uniques.get(t.name) ?? [])
          .map((u): ConstraintInfo => {
            const backing = tableIndexes.find((i) => i.name === u.name);
            return { name: u.name, columns: (backing?.columns ?? []).map(stripPrefix) };
          })
          .sort(byName),
        checkConstraints: checks.get(t.name) ?? [],
        indexes: tableIndexes,
      };
    })
    .sort(byName);
  return {
    engine: 'mysql',
    target,
    serverVersion: catalog.about.version,
    database: db,
    inspectedAt: now.toISOString(),
    schemas: [{ name: db, owner: null }],
    tables,
    views: catalog.views
      .map((v): ViewInfo => ({
        schema: db,
        name: v.name,
        materialized: false,
        definition: v.definition || null,
      }))
      .sort(byName),
    sequences: buildSequences(catalog),
    keyspaces: [],
    keyPatterns: [],
  };
}

function buildColumn(c: ColumnRow, mariadb: boolean): ColumnInfo {
  const generated = /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.test(c.extra) ? c.generation || null : null;
  return {
    name: c.name,
    position: Number(c.position),
    type: c.type,
    nullable: c.nullable === 'YES',
    default: generated === null ? normalizeDefault(c, mariadb) : null,
    identity: null,
    autoIncrement: /\bauto_increment\b/i.test(c.extra),
    generated,
    comment: c.comment || null,
  };
}

const numericTypes =
  /^(tinyint|smallint|mediumint|int|integer|bigint|decimal|numeric|float|double|real|bit|year)$/i;

/**
 * COLUMN_DEFAULT as an SQL expression, or null when the column has none. MariaDB (10.2.7+)
 * already reports expressions: string literals quoted, and the text `NULL` for "no default"
 * on nullable columns. MySQL reports literals bare, so we quote them unless the column is
 * numeric or EXTRA marks the default as an expression (DEFAULT_GENERATED, MySQL 8.0.13+).
 */
export function normalizeDefault(
  c: Pick<ColumnRow, 'defaultValue' | 'extra' | 'dataType'>,
  mariadb: boolean,
): string | null {
  const raw = c.defaultValue;
  if (raw === null) return null;
  if (mariadb) return raw === 'NULL' ? null : raw;
  if (/DEFAULT_GENERATED/i.test(c.extra) || numericTypes.test(c.dataType)) return raw;
  if (/^current_timestamp(\(\d*\))?$/i.test(raw)) return raw;
  return `'${raw.replace(/'/g, "''")}'`;
}

function buildIndexes(catalog: MysqlCatalog): Map<string, IndexInfo[]> {
  const pageSize = toNumberOrNull(catalog.about.pageSize);
  const bytes = new Map<string, number>();
  for (const s of catalog.indexSizes) {
    // Partitions appear as `t#P#p0` (MariaDB) or `t#p#p0` (MySQL 8); an index's size is their sum.
    const key = `${s.tableName.replace(/#p#.*$/i, '')}\0${s.indexName}`;
    bytes.set(key, (bytes.get(key) ?? 0) + (toNumberOrNull(s.pages) ?? 0) * (pageSize ?? 0));
  }
  const out = new Map<string, IndexInfo[]>();
  for (const [key, parts] of groupBy(catalog.indexParts, (p) => `${p.tableName}\0${p.name}`)) {
    const first = parts[0] as IndexPartRow;
    const list = out.get(first.tableName) ?? [];
    list.push({
      name: first.name,
      columns: parts.map(indexPart),
      method: first.method.toLowerCase(),
      unique: Number(first.nonUnique) === 0,
      primary: first.name === 'PRIMARY',
      predicate: null,
      bytes: pageSize === null ? null : (bytes.get(key) ?? null),
      scans: null,
      valid: true,
    });
    out.set(first.tableName, list);
  }
  for (const list of out.values()) list.sort(byName);
  return out;
}

/** `col`, `col(10)` for a prefix part, or the expression text of a functional part. */
function indexPart(p: IndexPartRow): string {
  if (p.columnName === null) return p.expression ?? '';
  const prefix = toNumberOrNull(p.subPart);
  return prefix === null ? p.columnName : `${p.columnName}(${prefix})`;
}

function stripPrefix(column: string): string {
  return column.replace(/\(\d+\)$/, '');
}

function buildForeignKeys(catalog: MysqlCatalog): Map<string, ForeignKeyInfo[]> {
  const out = new Map<string, ForeignKeyInfo[]>();
  for (const parts of groupBy(catalog.foreignKeys, (f) => `${f.tableName}\0${f.name}`).values()) {
    const first = parts[0];
    if (!first) continue;
    const list = out.get(first.tableName) ?? [];
    list.push({
      name: first.name,
      columns: parts.map((p) => p.columnName),
      referencedSchema: first.referencedSchema,
      referencedTable: first.referencedTable,
      referencedColumns: parts.map((p) => p.referencedColumn),
      onUpdate: referentialActionFromSql(first.onUpdate),
      onDelete: referentialActionFromSql(first.onDelete),
    });
    out.set(first.tableName, list);
  }
  for (const list of out.values()) list.sort(byName);
  return out;
}

/**
 * CHECK constraints per table. MariaDB's CHECK_CONSTRAINTS names the table (its check names are
 * unique per table only); MySQL's does not, but there names are unique per schema, so
 * TABLE_CONSTRAINTS maps each name to its table. MariaDB's automatic `json_valid()` checks on
 * JSON columns are real constraints and are kept.
 */
function buildChecks(catalog: MysqlCatalog): Map<string, CheckConstraintInfo[]> {
  const tableOf = new Map(
    catalog.constraints.filter((c) => c.type === 'CHECK').map((c) => [c.name, c.tableName]),
  );
  const out = new Map<string, CheckConstraintInfo[]>();
  for (const c of catalog.checks) {
    const table = c.TABLE_NAME ?? tableOf.get(c.CONSTRAINT_NAME);
    if (table === undefined) continue;
    const list = out.get(table) ?? [];
    list.push({ name: c.CONSTRAINT_NAME, expression: c.CHECK_CLAUSE });
    out.set(table, list);
  }
  for (const list of out.values()) list.sort(byName);
  return out;
}

/**
 * MariaDB sequences. `lastValue` is the last value reserved on disk (next_not_cached_value minus
 * one increment), like PostgreSQL's pg_sequences.last_value it can run ahead of the values handed
 * out when caching is on; null while the sequence is unused. Values beyond 2^53 lose precision.
 */
function buildSequences(catalog: MysqlCatalog): SequenceInfo[] {
  const db = catalog.about.db;
  const dataTypes = new Map(
    catalog.columns.filter((c) => c.name === 'next_not_cached_value').map((c) => [c.tableName, c.dataType]),
  );
  return catalog.sequences
    .map((s): SequenceInfo => {
      const next = toNumberOrNull(s.nextNotCached);
      const increment = toNumberOrNull(s.increment) ?? 1;
      const unused = next === toNumberOrNull(s.startValue) && toNumberOrNull(s.cycles) === 0;
      return {
        schema: db,
        name: s.name,
        dataType: dataTypes.get(s.name) ?? 'bigint',
        lastValue: unused || next === null ? null : next - increment,
        maxValue: toNumberOrNull(s.maximumValue),
        increment,
        ownedBy: null,
      };
    })
    .sort(byName);
}

/** Code-point order, so the result does not depend on the server's collation or the locale. */
function byName(a: { name: string | null }, b: { name: string | null }): number {
  const x = a.name ?? '';
  const y = b.name ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}
