/**
 * The PostgreSQL inspect role: the schema model from a fixed set of catalog queries (see
 * postgres-catalog-queries.ts), run on three sessions side by side and stitched together here
 * by oid. Ten queries whether the database has three tables or fifty thousand.
 */
import { toNumberOrNull } from '../../core/model-building.js';
import type {
  ColumnInfo,
  IndexInfo,
  ReferentialAction,
  SchemaModel,
  TableInfo,
} from '../../core/schema-model.js';
import type { Target } from '../../core/target.js';
import type {
  EngineConnection,
  InspectOptions,
  InspectRole,
  SqlConnection,
  SqlSession,
} from '../contract.js';
import {
  columnsSql,
  constraintsSql,
  indexesSql,
  indexSizesSql,
  schemasSql,
  sequencesSql,
  tablesSql,
  viewsSql,
  type ColumnRow,
  type ConstraintRow,
  type IndexRow,
  type IndexSizeRow,
  type SchemaRow,
  type SequenceRow,
  type TableRow,
  type ViewRow,
} from './postgres-catalog-queries.js';

/** Reads every user schema (or `options.schemas`) into the engine-neutral SchemaModel. */
export const postgresInspectRole: InspectRole = {
  async inspect(conn: EngineConnection, target: Target, options: InspectOptions): Promise<SchemaModel> {
    if (conn.kind !== 'sql') throw new TypeError('postgres inspect needs a SQL connection');
    const facts = await collect(conn, [options.schemas ?? null]);
    return {
      engine: 'postgres',
      target: target.name,
      serverVersion: await conn.serverVersion(),
      database: facts.database,
      inspectedAt: new Date().toISOString(),
      schemas: facts.schemas.map((s) => ({ name: s.name, owner: s.owner })),
      tables: assembleTables(facts),
      views: facts.views.map((v) => ({
        schema: v.schema,
        name: v.name,
        materialized: v.materialized,
        definition: v.definition === null ? null : v.definition.trim().replace(/;$/, ''),
      })),
      sequences: facts.sequences.map((s) => ({
        schema: s.schema,
        name: s.name,
        dataType: s.data_type,
        lastValue: toNumberOrNull(s.last_value),
        maxValue: toNumberOrNull(s.max_value),
        increment: Number(s.increment),
        ownedBy: s.owned_by,
      })),
      keyspaces: [],
      keyPatterns: [],
    };
  },
};

interface CatalogFacts {
  database: string;
  schemas: SchemaRow[];
  tables: TableRow[];
  columns: ColumnRow[];
  constraints: ConstraintRow[];
  indexes: IndexRow[];
  indexSizes: IndexSizeRow[];
  views: ViewRow[];
  sequences: SequenceRow[];
}

/**
 * Run the catalog queries on three sessions side by side. What makes them slow on big schemas
 * is not the catalogs but each backend opening every relation it sizes or deparses (a relcache
 * entry: tens of microseconds each), so the grouping follows the relations opened: the session
 * that sizes the tables (table, TOAST) also deparses index and check expressions, which open the
 * same tables; another sizes the indexes; a third does the work that opens nothing but sequences.
 * Each session sees its own snapshot; rows of objects created or dropped meanwhile are dropped
 * when the pieces are joined by oid.
 */
async function collect(conn: SqlConnection, params: unknown[]): Promise<CatalogFacts> {
  const [a, b, c] = await Promise.all([
    conn.withSession(async (s) => ({
      tables: await rows<TableRow>(s, tablesSql, params),
      indexes: await rows<IndexRow>(s, indexesSql, params),
      constraints: await rows<ConstraintRow>(s, constraintsSql, params),
    })),
    conn.withSession(async (s) => ({
      indexSizes: await rows<IndexSizeRow>(s, indexSizesSql, params),
      views: await rows<ViewRow>(s, viewsSql, params),
      schemas: await rows<SchemaRow>(s, schemasSql, params),
    })),
    conn.withSession(async (s) => ({
      columns: await rows<ColumnRow>(s, columnsSql, params),
      sequences: await rows<SequenceRow>(s, sequencesSql, params),
      database:
        (await rows<{ database: string }>(s, 'select current_database() as database', []))[0]?.database ?? '',
    })),
  ]);
  return { ...a, ...b, ...c };
}

async function rows<Row>(session: SqlSession, sql: string, params: unknown[]): Promise<Row[]> {
  return (await session.query<Row>(sql, params)).rows;
}

/** Tables in catalog order (schema, name), each with its columns, constraints and indexes attached. */
function assembleTables(facts: CatalogFacts): TableInfo[] {
  const { tables: tableRows, columns: columnRows, constraints: constraintRows, indexes: indexRows } = facts;
  const byOid = new Map<number, TableInfo>();
  for (const t of tableRows) byOid.set(t.oid, toTable(t));
  // attnum -> name per table, to name the keys of constraints and indexes.
  const names = new Map<number, Map<number, string>>();
  for (const c of columnRows) {
    const table = byOid.get(c.table_oid);
    if (!table) continue;
    table.columns.push(toColumn(c));
    let byNum = names.get(c.table_oid);
    if (!byNum) names.set(c.table_oid, (byNum = new Map()));
    byNum.set(c.position, c.name);
  }
  const columnName: ColumnName = (oid, attnum) => names.get(oid)?.get(attnum) ?? `#${attnum}`;
  for (const c of constraintRows) {
    const table = byOid.get(c.table_oid);
    if (table) addConstraint(table, c, columnName);
  }
  const sizes = new Map(facts.indexSizes.map((r) => [r.oid, r]));
  // By name, as psql lists them; the catalog returns them in no useful order.
  indexRows.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  for (const i of indexRows) {
    const table = byOid.get(i.table_oid);
    if (!table) continue;
    const size = sizes.get(i.oid);
    table.indexes.push(toIndex(i, size, columnName));
    // Summed over all forks, this is what pg_indexes_size reports, without opening every index twice.
    table.indexBytes = (table.indexBytes ?? 0) + Number(size?.all_forks_bytes ?? 0);
  }
  for (const table of byOid.values()) table.totalBytes = (table.tableBytes ?? 0) + (table.indexBytes ?? 0);
  return [...byOid.values()];
}

/** The name of column `attnum` of table `oid`. */
type ColumnName = (oid: number, attnum: number) => string;

function toTable(t: TableRow): TableInfo {
  const tableBytes = Number(t.table_bytes);
  return {
    schema: t.schema,
    name: t.name,
    // -1 means "never analyzed" (PostgreSQL 14+): unknown, not empty.
    rowEstimate: t.reltuples < 0 ? null : Math.round(t.reltuples),
    tableBytes,
    // Added up from the indexes; totalBytes is then what pg_total_relation_size reports.
    indexBytes: 0,
    totalBytes: tableBytes,
    comment: t.comment,
    columns: [],
    primaryKey: null,
    foreignKeys: [],
    uniqueConstraints: [],
    checkConstraints: [],
    indexes: [],
  };
}

function toIndex(i: IndexRow, size: IndexSizeRow | undefined, columnName: ColumnName): IndexInfo {
  const keys = i.keys.split(' ').slice(0, i.key_count).map(Number);
  return {
    name: i.name,
    // Attnum 0 marks an expression part; its text comes from pg_get_indexdef at the same position.
    columns: keys.map((k, pos) => (k === 0 ? (i.expressions?.[pos] ?? '') : columnName(i.table_oid, k))),
    method: i.method,
    unique: i.is_unique,
    primary: i.is_primary,
    predicate: i.predicate,
    bytes: size ? Number(size.bytes) : null,
    scans: size ? Number(size.scans) : null,
    valid: i.is_valid,
  };
}

function toColumn(c: ColumnRow): ColumnInfo {
  const generated = c.generated === '' ? null : c.expression;
  const identity = c.identity === 'a' ? 'always' : c.identity === 'd' ? 'by default' : null;
  const defaultExpr = generated === null ? c.expression : null;
  return {
    name: c.name,
    position: c.position,
    type: c.type,
    nullable: !c.not_null,
    default: defaultExpr,
    identity,
    // serial and friends are a nextval() default on a sequence the column owns.
    autoIncrement: identity !== null || (defaultExpr?.startsWith('nextval(') ?? false),
    generated,
    comment: c.comment,
  };
}

function addConstraint(table: TableInfo, c: ConstraintRow, columnName: ColumnName): void {
  const columns = c.keys.map((k) => columnName(c.table_oid, k));
  switch (c.type) {
    case 'p':
      table.primaryKey = { name: c.name, columns };
      return;
    case 'u':
      table.uniqueConstraints.push({ name: c.name, columns });
      return;
    case 'c':
      table.checkConstraints.push({ name: c.name, expression: c.expression ?? '' });
      return;
    case 'f':
      table.foreignKeys.push({
        name: c.name,
        columns,
        referencedSchema: c.ref_schema ?? '',
        referencedTable: c.ref_table ?? '',
        referencedColumns: c.ref_columns ?? (c.ref_keys ?? []).map((k) => columnName(c.ref_oid, k)),
        onUpdate: referentialAction(c.on_update),
        onDelete: referentialAction(c.on_delete),
      });
  }
}

const actions: Record<string, ReferentialAction> = {
  a: 'no action',
  r: 'restrict',
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

function referentialAction(code: string): ReferentialAction {
  return actions[code] ?? 'no action';
}
