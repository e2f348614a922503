/**
 * The catalog queries `inspect` runs: one per kind of object (indexes take two), over every table
 * at once, so the count stays fixed however large the schema is. They read pg_catalog directly
 * and join on oids; information_schema views are avoided because their per-row privilege checks
 * and casts make them much slower on big catalogs. Every query takes one parameter: a text[] of
 * schema names, or null for every user schema.
 *
 * On large schemas the cost is not the catalog scans but the functions that open relations
 * (sizes, and deparsing expressions that name columns): each opened relation costs a relcache
 * entry in that backend. The comments below say where a query avoids opening something.
 *
 * Requires PostgreSQL 12 or later (pg_attribute.attgenerated, pg_sequence).
 */

/** SQL predicate on a pg_namespace alias choosing the schemas to inspect. */
// Names starting with pg_ are reserved (pg_catalog, pg_toast*, pg_temp*), so one pattern covers them.
const inScope = (ns: string): string => `(case when $1::text[] is null
    then ${ns}.nspname !~ '^pg_' and ${ns}.nspname <> 'information_schema'
    else ${ns}.nspname = any($1::text[]) end)`;
const schemaFilter = inScope('n');

export const schemasSql = `
select n.nspname as name, pg_get_userbyid(n.nspowner) as owner
from pg_namespace n
where ${schemaFilter}
order by n.nspname`;

export interface SchemaRow {
  name: string;
  owner: string | null;
}

// Index sizes are added up from indexSizesSql, which opens every index anyway; calling
// pg_indexes_size here would open each index a second time in another session.
export const tablesSql = `
select c.oid, n.nspname as schema, c.relname as name, c.reltuples,
  pg_table_size(c.oid) as table_bytes, d.description as comment
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_description d on d.objoid = c.oid and d.classoid = 'pg_class'::regclass and d.objsubid = 0
where c.relkind in ('r', 'p') and ${schemaFilter}
order by n.nspname, c.relname`;

export interface TableRow {
  oid: number;
  schema: string;
  name: string;
  /** -1: never vacuumed or analyzed (PostgreSQL 14+). */
  reltuples: number;
  table_bytes: string;
  comment: string | null;
}

// Defaults cannot refer to columns, so they are deparsed without their table: passing the table
// makes pg_get_expr open it, which costs more than everything else here together. Generated
// columns do refer to columns and need it. Comments are joined from pg_description rather than
// fetched with col_description(), which would run one catalog lookup per column.
export const columnsSql = `
select a.attrelid as table_oid, a.attname as name, a.attnum as position,
  format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
  pg_get_expr(ad.adbin, case when a.attgenerated = '' then 0 else ad.adrelid end) as expression,
  a.attidentity as identity, a.attgenerated as generated, d.description as comment
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
left join pg_description d
  on d.objoid = a.attrelid and d.classoid = 'pg_class'::regclass and d.objsubid = a.attnum
where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped and ${schemaFilter}
order by a.attrelid, a.attnum`;

export interface ColumnRow {
  table_oid: number;
  name: string;
  position: number;
  type: string;
  not_null: boolean;
  /** The default, or for a generated column its generation expression. */
  expression: string | null;
  /** '' | 'a' (always) | 'd' (by default) */
  identity: string;
  /** '' | 's' (stored) */
  generated: string;
  comment: string | null;
}

// Key columns come back as attnums and are named from the columns query in JS; a per-row
// lookup in SQL costs more than the rest of this query. Only a foreign key into a schema that
// is not being inspected has its referenced columns named here.
// A foreign key that references a partitioned table gets one extra pg_constraint row per
// partition on the referencing table (conparentid set, same conrelid); only the parent is real.
export const constraintsSql = `
select con.conrelid as table_oid, con.conname as name, con.contype as type, con.conkey as keys,
  con.confrelid as ref_oid, fn.nspname as ref_schema, fc.relname as ref_table, con.confkey as ref_keys,
  case when con.contype = 'f' and not ${inScope('fn')} then array(
    select a.attname::text from unnest(con.confkey) with ordinality k(attnum, i)
    join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum
    order by k.i) end as ref_columns,
  con.confupdtype as on_update, con.confdeltype as on_delete,
  case when con.contype = 'c' then pg_get_expr(con.conbin, con.conrelid, true) end as expression
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_class fc on fc.oid = con.confrelid
left join pg_namespace fn on fn.oid = fc.relnamespace
where con.contype in ('p', 'u', 'f', 'c') and c.relkind in ('r', 'p') and ${schemaFilter}
  and not (con.contype = 'f' and con.conparentid <> 0 and exists (
    select 1 from pg_constraint parent where parent.oid = con.conparentid and parent.conrelid = con.conrelid))
order by con.conrelid, con.conname`;

export interface ConstraintRow {
  table_oid: number;
  name: string;
  /** p | u | f | c */
  type: string;
  keys: number[];
  ref_oid: number;
  ref_schema: string | null;
  ref_table: string | null;
  ref_keys: number[] | null;
  /** Set only for a foreign key into a schema outside the inspected ones. */
  ref_columns: string[] | null;
  /** a | r | c | n | d, or ' ' for non-foreign keys */
  on_update: string;
  on_delete: string;
  expression: string | null;
}

// Key columns come back as attnums (int2vector text, "1 2") and are named in JS; only
// expression parts pay for pg_get_indexdef. INCLUDE columns (past indnkeyatts) are not part of
// the key. Sizes are a separate query (indexSizesSql): see inspect for why.
export const indexesSql = `
select i.indexrelid as oid, i.indrelid as table_oid, ic.relname as name, am.amname as method,
  i.indisunique as is_unique, i.indisprimary as is_primary, i.indisvalid as is_valid,
  pg_get_expr(i.indpred, i.indrelid, true) as predicate,
  i.indkey::text as keys, i.indnkeyatts as key_count,
  case when i.indexprs is not null then array(
    select case when k.attnum = 0 then pg_get_indexdef(i.indexrelid, k.i::int, true) end
    from unnest(i.indkey::int2[]) with ordinality k(attnum, i)
    where k.i <= i.indnkeyatts
    order by k.i) end as expressions
from pg_index i
join pg_class ic on ic.oid = i.indexrelid
join pg_class c on c.oid = i.indrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_am am on am.oid = ic.relam
where c.relkind in ('r', 'p') and ${schemaFilter}`;

export interface IndexRow {
  oid: number;
  table_oid: number;
  name: string;
  method: string;
  is_unique: boolean;
  is_primary: boolean;
  is_valid: boolean;
  predicate: string | null;
  keys: string;
  key_count: number;
  /** Per key position: the expression text where the attnum is 0, else null; null when no expressions. */
  expressions: (string | null)[] | null;
}

// An index always lives in its table's schema, so pg_class alone finds them. pg_table_size of an
// index (all its forks) is what pg_indexes_size adds up per table. Scan counts are read with
// pg_stat_get_numscans, the function behind pg_stat_user_indexes.idx_scan, without the view's joins.
export const indexSizesSql = `
select c.oid, pg_relation_size(c.oid) as bytes, pg_table_size(c.oid) as all_forks_bytes,
  pg_stat_get_numscans(c.oid) as scans
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('i', 'I') and ${schemaFilter}`;

export interface IndexSizeRow {
  oid: number;
  bytes: string;
  all_forks_bytes: string;
  scans: string;
}

export const viewsSql = `
select n.nspname as schema, c.relname as name, c.relkind = 'm' as materialized,
  pg_get_viewdef(c.oid, true) as definition
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('v', 'm') and ${schemaFilter}
order by n.nspname, c.relname`;

export interface ViewRow {
  schema: string;
  name: string;
  materialized: boolean;
  definition: string | null;
}

// The owning column comes from pg_depend: 'a' for serial / OWNED BY, 'i' for identity columns.
// last_value is read as pg_sequences does, null without the privilege to read the sequence.
export const sequencesSql = `
select n.nspname as schema, c.relname as name, format_type(s.seqtypid, null) as data_type,
  case when has_sequence_privilege(c.oid, 'SELECT,USAGE') then pg_sequence_last_value(c.oid::regclass) end
    as last_value,
  s.seqmax as max_value, s.seqincrement as increment,
  (select oc.relname || '.' || oa.attname
    from pg_depend dep
    join pg_class oc on oc.oid = dep.refobjid
    join pg_attribute oa on oa.attrelid = dep.refobjid and oa.attnum = dep.refobjsubid
    where dep.classid = 'pg_class'::regclass and dep.objid = s.seqrelid and dep.objsubid = 0
      and dep.refclassid = 'pg_class'::regclass and dep.refobjsubid > 0 and dep.deptype in ('a', 'i')
    limit 1) as owned_by
from pg_sequence s
join pg_class c on c.oid = s.seqrelid
join pg_namespace n on n.oid = c.relnamespace
where ${schemaFilter}
order by n.nspname, c.relname`;

export interface SequenceRow {
  schema: string;
  name: string;
  data_type: string;
  last_value: string | null;
  max_value: string;
  increment: string;
  owned_by: string | null;
}
