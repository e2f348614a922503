/**
 * Catalog queries of PostgreSQL backups: exact row counts of every table (in the dump's
 * snapshot, or in a restored copy), what a database already holds, and the integrity facts a
 * restored copy is checked for.
 */
import type { BackupTableCount } from '../backup-role.js';
import type { SqlSession } from '../contract.js';

/** Schemas that belong to the server, not to the application. */
const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

/** Not created by an extension (CREATE EXTENSION makes those again; pg_dump dumps only the extension). */
const notExtensionMember = (classid: string, oid: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${classid}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

/**
 * Tables with rows: ordinary tables and the leaves of partitioned ones (relkind `r`; a
 * partitioned parent has no storage of its own), named `schema.table`.
 */
const tablesSql = `
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND ${userSchemas} AND ${notExtensionMember('pg_class', 'c.oid')}
ORDER BY 1, 2`;

/** Tables per counting query: one round trip per batch, not per table. */
const countBatch = 100;

/** Exact row counts of every user table, as the session's snapshot sees them. */
export async function countRows(
  session: SqlSession,
  quoteIdent: (name: string) => string,
): Promise<BackupTableCount[]> {
  const { rows: tables } = await session.query<{ schema: string; name: string }>(tablesSql);
  const counts: BackupTableCount[] = [];
  for (let start = 0; start < tables.length; start += countBatch) {
    const batch = tables.slice(start, start + countBatch);
    const sql = batch
      .map((t, i) => `SELECT ${i} AS i, count(*) AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`)
      .join('\nUNION ALL\n');
    const { rows } = await session.query<{ i: number; n: string }>(sql);
    const byIndex = new Map(rows.map((r) => [Number(r.i), Number(r.n)]));
    batch.forEach((t, i) => counts.push({ name: `${t.schema}.${t.name}`, rows: byIndex.get(i) ?? 0 }));
  }
  return counts;
}

const relationKinds: Record<string, string> = {
  r: 'table',
  p: 'partitioned table',
  v: 'view',
  m: 'materialized view',
  S: 'sequence',
  f: 'foreign table',
};

/**
 * Relations and user-defined types in user schemas (not extension members), as
 * `schema.name (kind)`. Row types of tables and the array and multirange types PostgreSQL makes
 * by itself are left out: they come and go with their table or type.
 */
const contentsSql = `
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
  AND ${userSchemas} AND ${notExtensionMember('pg_class', 'c.oid')}
UNION ALL
SELECT n.nspname, t.typname, 'type'
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE ${userSchemas} AND ${notExtensionMember('pg_type', 't.oid')}
  AND t.typcategory <> 'A' AND t.typtype <> 'm'
  AND (t.typrelid = 0 OR EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = t.typrelid AND r.relkind = 'c'))
ORDER BY 1, 2, 3`;

export async function databaseContents(session: SqlSession): Promise<string[]> {
  const { rows } = await session.query<{ schema: string; name: string; kind: string }>(contentsSql);
  return rows.map((r) => `${r.schema}.${r.name} (${relationKinds[r.kind] ?? r.kind})`);
}

/** What a restored copy is checked for beyond row counts. */
export interface IntegrityFacts {
  /** Indexes a failed build left invalid or not ready: a real problem. */
  invalidIndexes: string[];
  /** `NOT VALID` constraints: pg_dump keeps them as they were in the source. */
  notValidated: string[];
}

export async function integrityFacts(session: SqlSession): Promise<IntegrityFacts> {
  const { rows: indexes } = await session.query<{ name: string }>(`
    SELECT n.nspname || '.' || c.relname AS name
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE (NOT i.indisvalid OR NOT i.indisready) AND ${userSchemas}
    ORDER BY 1`);
  const { rows: constraints } = await session.query<{ name: string }>(`
    SELECT con.conname || ' on ' || n.nspname || '.' || c.relname AS name
    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT con.convalidated AND ${userSchemas}
    ORDER BY 1`);
  return { invalidIndexes: indexes.map((r) => r.name), notValidated: constraints.map((r) => r.name) };
}
