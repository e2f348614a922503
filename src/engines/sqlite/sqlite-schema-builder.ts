/**
 * Turn the rows of {@link readSqliteCatalog} into the engine-neutral SchemaModel. Pure: no
 * queries here, so every mapping rule (rowid aliases, autoindexes, implicit FK targets) can be
 * tested from plain rows.
 */
import { groupBy, referentialActionFromSql } from '../../core/model-building.js';
import type {
  ColumnInfo,
  ForeignKeyInfo,
  IndexInfo,
  SchemaModel,
  SequenceInfo,
  TableInfo,
} from '../../core/schema-model.js';
import type { ColumnRow, ForeignKeyRow, IndexColumnRow, ObjectRow, SqliteCatalog } from './sqlite-catalog.js';
import { parseCreateIndex, parseCreateTable, viewSelectText } from './sqlite-ddl.js';

// SQLite's sequence counter is a signed 64-bit integer; JSON numbers round it, which is fine here.
const sqliteMaxInteger = Number(2n ** 63n - 1n);

/** Assemble the schema model of one SQLite database from its catalog rows. */
export function buildSqliteSchema(catalog: SqliteCatalog, targetName: string): SchemaModel {
  const columnsByTable = groupBy(catalog.columns, (r) => r.table_name);
  const fksByTable = groupBy(catalog.foreignKeys, (r) => r.table_name);
  const indexColumnsByTable = groupBy(catalog.indexColumns, (r) => r.table_name);
  const indexSql = new Map(catalog.objects.filter((o) => o.type === 'index').map((o) => [o.name, o.sql]));
  const primaryKeys = new Map<string, string[]>();
  for (const [table, rows] of columnsByTable) primaryKeys.set(table, primaryKeyColumns(rows));

  const tables = catalog.objects
    .filter((o) => o.type === 'table')
    .map((o) =>
      buildTable(o, {
        columns: columnsByTable.get(o.name) ?? [],
        foreignKeys: fksByTable.get(o.name) ?? [],
        indexColumns: indexColumnsByTable.get(o.name) ?? [],
        indexSql,
        primaryKeys,
        catalog,
      }),
    );

  return {
    engine: 'sqlite',
    target: targetName,
    serverVersion: catalog.version,
    database: catalog.file || ':memory:',
    inspectedAt: new Date().toISOString(),
    schemas: [{ name: 'main', owner: null }],
    tables,
    views: catalog.objects
      .filter((o) => o.type === 'view')
      .map((o) => ({
        schema: 'main',
        name: o.name,
        materialized: false,
        definition: o.sql === null ? null : viewSelectText(o.sql),
      })),
    sequences: [...catalog.sequences].map(([table, seq]) => sequence(table, seq, primaryKeys.get(table))),
    keyspaces: [],
    keyPatterns: [],
  };
}

interface TableFacts {
  columns: ColumnRow[];
  foreignKeys: ForeignKeyRow[];
  indexColumns: IndexColumnRow[];
  indexSql: Map<string, string | null>;
  primaryKeys: Map<string, string[]>;
  catalog: SqliteCatalog;
}

function buildTable(table: ObjectRow, facts: TableFacts): TableInfo {
  // Only CHECK constraints and generated columns (`AS (…)`) need the statement read.
  const ddl =
    table.sql && /\b(?:CHECK|AS)\b/i.test(table.sql)
      ? parseCreateTable(table.sql)
      : { generated: new Map<string, string>(), checks: [] };
  const pk = facts.primaryKeys.get(table.name) ?? [];
  const withoutRowid = table.wr === 1;
  // An INTEGER PRIMARY KEY (exactly that type name) of a rowid table is the rowid itself:
  // it auto-assigns and can never be NULL. https://sqlite.org/lang_createtable.html#rowid
  const rowidAlias = (c: ColumnRow): boolean =>
    table.table_type === 'table' &&
    !withoutRowid &&
    pk.length === 1 &&
    c.pk === 1 &&
    /^integer$/i.test(c.type);

  const columns: ColumnInfo[] = facts.columns.map((c) => ({
    name: c.name,
    position: c.cid + 1,
    type: c.type,
    nullable: c.not_null === 0 && !rowidAlias(c) && !(withoutRowid && c.pk > 0),
    default: c.dflt_value,
    identity: null,
    autoIncrement: rowidAlias(c),
    generated:
      c.hidden === 2 || c.hidden === 3 ? (ddl.generated.get(c.name.toLowerCase()) ?? 'GENERATED') : null,
    comment: null,
  }));

  const indexes = buildIndexes(facts.indexColumns, facts.indexSql, facts.catalog.sizes);
  const sizes = facts.catalog.sizes;
  const tableBytes = sizes?.get(table.name) ?? null;
  const indexBytes = tableBytes === null ? null : indexes.reduce((sum, i) => sum + (i.bytes ?? 0), 0);
  return {
    schema: 'main',
    name: table.name,
    rowEstimate: facts.catalog.rowCounts.get(table.name) ?? null,
    tableBytes,
    indexBytes,
    totalBytes: tableBytes === null ? null : tableBytes + (indexBytes ?? 0),
    comment: null,
    columns,
    primaryKey: pk.length ? { name: null, columns: pk } : null,
    foreignKeys: buildForeignKeys(facts.foreignKeys, facts.primaryKeys),
    uniqueConstraints: indexes
      .filter((i) => facts.indexColumns.some((r) => r.index_name === i.name && r.origin === 'u'))
      .map((i) => ({ name: null, columns: i.columns })),
    checkConstraints: ddl.checks,
    indexes,
  };
}

function buildIndexes(
  rows: IndexColumnRow[],
  indexSql: Map<string, string | null>,
  sizes: Map<string, number> | null,
): IndexInfo[] {
  return [...groupBy(rows, (r) => r.index_name)].map(([name, parts]) => {
    const first = parts[0] as IndexColumnRow;
    const sql = indexSql.get(name) ?? null;
    // Expression terms and predicates live only in the CREATE INDEX text.
    const needsSql = first.partial === 1 || parts.some((p) => p.cid === -2);
    const ddl = needsSql && sql ? parseCreateIndex(sql) : { terms: [], predicate: null };
    return {
      name,
      columns: parts.map((p) =>
        p.cid === -2 ? (ddl.terms[p.seqno] ?? '<expression>') : (p.column_name ?? 'rowid'),
      ),
      method: 'btree',
      unique: first.is_unique === 1,
      primary: first.origin === 'pk',
      predicate: first.partial === 1 ? ddl.predicate : null,
      // A WITHOUT ROWID table's primary-key index is the table's own b-tree: no size of its own.
      bytes: sizes?.get(name) ?? null,
      scans: null,
      valid: true,
    };
  });
}

function buildForeignKeys(rows: ForeignKeyRow[], primaryKeys: Map<string, string[]>): ForeignKeyInfo[] {
  return [...groupBy(rows, (r) => String(r.id))].map(([, parts]) => {
    const first = parts[0] as ForeignKeyRow;
    // `REFERENCES parent` without columns means the parent's primary key.
    const implicit = parts.some((p) => p.to_col === null);
    return {
      name: null,
      columns: parts.map((p) => p.from_col),
      referencedSchema: 'main',
      referencedTable: first.ref_table,
      referencedColumns: implicit
        ? (primaryKeys.get(first.ref_table) ?? [])
        : parts.map((p) => p.to_col as string),
      onUpdate: referentialActionFromSql(first.on_update),
      onDelete: referentialActionFromSql(first.on_delete),
    };
  });
}

function sequence(table: string, lastValue: number, pk: string[] | undefined): SequenceInfo {
  return {
    schema: 'main',
    name: table,
    dataType: 'integer',
    lastValue,
    maxValue: sqliteMaxInteger,
    increment: 1,
    ownedBy: pk?.length === 1 ? `${table}.${pk[0]}` : null,
  };
}

function primaryKeyColumns(rows: ColumnRow[]): string[] {
  return rows
    .filter((r) => r.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((r) => r.name);
}
