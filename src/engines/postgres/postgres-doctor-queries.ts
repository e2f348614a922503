/**
 * The catalog queries behind `dbward doctor` on PostgreSQL: one per kind of fact, over every
 * table at once, so their number does not grow with the schema (5,000 tables are as many
 * queries as 5). None takes a parameter; each reads the current database (and, where a fact is
 * server-wide, such as databases and replication slots, the whole server).
 *
 * Relation names come back SQL-ready: quote_ident(schema) || '.' || quote_ident(name), quoted
 * only where PostgreSQL needs it, so a fix can paste them. User schemas are every schema but
 * pg_catalog, information_schema, TOAST and temporary ones (all of which start with pg_).
 *
 * Requires PostgreSQL 14 or later (pg_locks.waitstart, pg_stat_progress_create_index).
 */

const userSchema = (ns: string): string =>
  `${ns}.nspname !~ '^pg_' and ${ns}.nspname <> 'information_schema'`;
const qualified = (ns: string, rel: string): string =>
  `quote_ident(${ns}.nspname) || '.' || quote_ident(${rel}.relname)`;

/** Version, uptime, who and how doctor is connected, recovery state, when statistics were reset. */
export const serverSql = `
select current_setting('server_version') as version,
  current_setting('server_version_num')::int as version_num,
  extract(epoch from now() - pg_postmaster_start_time())::float8 as uptime,
  current_database() as database, current_user as user_name, pg_backend_pid() as pid,
  pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') as read_all_stats,
  pg_is_in_recovery() as in_recovery,
  host(inet_client_addr()) as client_addr,
  (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as own_ssl,
  (select stats_reset from pg_stat_database where datname = current_database()) as stats_reset`;

export interface ServerRow {
  version: string;
  version_num: number;
  uptime: number;
  database: string;
  user_name: string;
  pid: number;
  read_all_stats: boolean;
  in_recovery: boolean;
  client_addr: string | null;
  own_ssl: boolean | null;
  stats_reset: Date | null;
}

/** The settings doctor reads; a setting this login may not see is simply missing. */
export const settingsSql = `
select name, setting from pg_settings
where name in ('max_connections', 'superuser_reserved_connections', 'reserved_connections',
  'autovacuum', 'track_counts', 'autovacuum_freeze_max_age', 'autovacuum_multixact_freeze_max_age',
  'autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor', 'shared_preload_libraries', 'ssl',
  'primary_conninfo', 'block_size')`;

export interface SettingRow {
  name: string;
  setting: string;
}

/**
 * Client connections: counted from pg_stat_activity when this login sees every session's
 * backend type (pg_read_all_stats), else from pg_stat_database.numbackends (which also counts
 * autovacuum workers, a small overcount).
 */
export const connectionsSql = `
select (select count(*) from pg_stat_activity where backend_type = 'client backend')::int as client_backends,
  (select coalesce(sum(numbackends), 0) from pg_stat_database)::int as numbackends`;

export interface ConnectionsRow {
  client_backends: number;
  numbackends: number;
}

/**
 * Non-idle client sessions of this database other than doctor's own, the oldest first.
 * Lock waiters also get whom they wait for (pg_blocking_pids) and since when (pg_locks.waitstart):
 * both only for sessions waiting on a lock, as they take the lock manager's locks.
 */
export const activitySql = `
select a.pid, a.usename as user_name, a.application_name,
  coalesce(host(a.client_addr), case when a.client_port = -1 then 'local socket' end) as client,
  a.state,
  extract(epoch from now() - a.query_start)::float8 as query_seconds,
  extract(epoch from now() - a.state_change)::float8 as state_seconds,
  left(a.query, 200) as query,
  case when a.wait_event_type = 'Lock' then pg_blocking_pids(a.pid) end as blocked_by,
  case when a.wait_event_type = 'Lock' then extract(epoch from now() - (
    select min(l.waitstart) from pg_locks l where l.pid = a.pid and not l.granted))::float8 end as wait_seconds
from pg_stat_activity a
where a.backend_type = 'client backend' and a.pid <> pg_backend_pid()
  and a.datname = current_database() and a.state is not null and a.state <> 'idle'
order by least(a.query_start, a.state_change) nulls last
limit 300`;

export interface ActivityRow {
  pid: number;
  user_name: string | null;
  application_name: string | null;
  client: string | null;
  state: string;
  query_seconds: number | null;
  state_seconds: number | null;
  query: string | null;
  blocked_by: number[] | null;
  wait_seconds: number | null;
}

/**
 * User tables, partitioned parents included, partitions left out (a partition's key and
 * indexes come from its parent, so judging each one would repeat the parent's finding).
 *
 * Sizes here and in indexesSql are estimates from pg_class.relpages (as of the last VACUUM,
 * ANALYZE or CREATE INDEX, which autovacuum keeps recent), not pg_relation_size: measuring opens
 * every relation, which on 5,000 tables and 15,000 indexes costs more than all the rest of
 * doctor together. The collector adds a table's index estimates to it; largestTablesSql measures
 * the few largest exactly.
 */
export const tablesSql = `
select ${qualified('n', 'c')} as name, c.relkind,
  exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary) as has_pk,
  c.reltuples::float8 as reltuples,
  (c.relpages + coalesce(t.relpages, 0))::float8 * current_setting('block_size')::float8 as table_bytes
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_class t on t.oid = c.reltoastrelid
where c.relkind in ('r', 'p') and not c.relispartition and ${userSchema('n')}`;

export interface TableRow {
  name: string;
  relkind: string;
  has_pk: boolean;
  reltuples: number;
  table_bytes: number;
}

/**
 * Every index on a user table or materialized view. Key parts (INCLUDE columns left out) are
 * column names, or the expression text for expression parts; a part with an operator class that
 * is not its type's default gets the class appended (`email text_pattern_ops`), so an index for
 * LIKE is never taken for a duplicate of a plain one. An invalid index that a running CREATE
 * INDEX CONCURRENTLY or REINDEX CONCURRENTLY is building is flagged `building`. Sizes are
 * relpages estimates (see tablesSql), measured only for the unused-index candidates of 1 MB or more.
 */
export const indexesSql = `
select ${qualified('n', 'c')} as table_name, ic.relname as name, am.amname as method,
  i.indisunique as is_unique, i.indisprimary as is_primary, i.indisvalid as is_valid,
  pg_get_expr(i.indpred, i.indrelid, true) as predicate,
  array(
    select case when k.attnum = 0 then pg_get_indexdef(i.indexrelid, k.i::int, true)
        else (select a.attname::text from pg_attribute a where a.attrelid = i.indrelid and a.attnum = k.attnum) end
      || coalesce((select ' ' || oc.opcname from pg_opclass oc where oc.oid = k.opclass and not oc.opcdefault), '')
    from unnest(i.indkey::int2[], i.indclass::oid[]) with ordinality k(attnum, opclass, i)
    where k.i <= i.indnkeyatts
    order by k.i) as columns,
  pg_stat_get_numscans(i.indexrelid)::float8 as scans,
  case when not i.indisunique and pg_stat_get_numscans(i.indexrelid) = 0
      and ic.relpages::float8 * current_setting('block_size')::float8 >= 1000000
    then pg_relation_size(i.indexrelid) else ic.relpages::float8 * current_setting('block_size')::float8
  end::float8 as bytes,
  con.conname as constraint_name,
  case when not i.indisvalid then exists (
    select 1 from pg_stat_progress_create_index p
    where p.index_relid = i.indexrelid or (p.relid = i.indrelid and p.command = 'REINDEX CONCURRENTLY')
  ) else false end as building
from pg_index i
join pg_class ic on ic.oid = i.indexrelid
join pg_class c on c.oid = i.indrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_am am on am.oid = ic.relam
left join pg_constraint con
  on con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype in ('p', 'u', 'x')
where c.relkind in ('r', 'p', 'm') and ${userSchema('n')}`;

export interface IndexRow {
  table_name: string;
  name: string;
  method: string;
  is_unique: boolean;
  is_primary: boolean;
  is_valid: boolean;
  predicate: string | null;
  columns: string[];
  scans: number | null;
  bytes: number | null;
  constraint_name: string | null;
  building: boolean;
}

/**
 * Foreign keys, as declared: the copies PostgreSQL makes on partitions and for referenced
 * partitions (conparentid set) are left out.
 */
export const foreignKeysSql = `
select ${qualified('n', 'c')} as table_name, con.conname as name,
  array(select a.attname::text from unnest(con.conkey) with ordinality k(attnum, i)
    join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.i) as columns,
  ${qualified('fn', 'fc')} as referenced_table
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_class fc on fc.oid = con.confrelid
join pg_namespace fn on fn.oid = fc.relnamespace
where con.contype = 'f' and con.conparentid = 0 and ${userSchema('n')}`;

export interface ForeignKeyRow {
  table_name: string;
  name: string;
  columns: string[];
  referenced_table: string;
}

/**
 * Replication: role and lag as PgHero computes it (0 when the replica has replayed all it
 * received), whether a WAL receiver is streaming, and how many standbys stream from here.
 */
export const replicationSql = `
select pg_is_in_recovery() as in_recovery,
  case when not pg_is_in_recovery() or pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
    else extract(epoch from now() - pg_last_xact_replay_timestamp()) end::float8 as lag_seconds,
  (select count(*) from pg_stat_wal_receiver)::int as receivers,
  (select count(*) from pg_stat_wal_receiver where status = 'streaming')::int as streaming,
  (select count(*) from pg_stat_replication)::int as replicas`;

export interface ReplicationRow {
  in_recovery: boolean;
  lag_seconds: number | null;
  receivers: number;
  streaming: number;
  replicas: number;
}

/** Transaction-ID and multixact age of every database that accepts connections. */
export const databaseAgesSql = `
select datname as name, age(datfrozenxid)::float8 as xid_age, mxid_age(datminmxid)::float8 as multixact_age
from pg_database where datallowconn order by age(datfrozenxid) desc`;

export interface DatabaseAgeRow {
  name: string;
  xid_age: number;
  multixact_age: number;
}

/** The 10 tables of this database (any schema, catalogs and TOAST included) with the oldest relfrozenxid. */
export const tableAgesSql = `
select ${qualified('n', 'c')} as name,
  greatest(age(c.relfrozenxid), age(t.relfrozenxid))::float8 as xid_age
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_class t on t.oid = c.reltoastrelid
where c.relkind in ('r', 'm')
order by 2 desc
limit 10`;

export interface TableAgeRow {
  name: string;
  xid_age: number;
}

/**
 * Ascending sequences in user schemas, with the column each one feeds, as PgHero finds them:
 * owned by a column (serial, identity, OWNED BY), else named by a column default (nextval).
 * The limit is the lower of the sequence's MAXVALUE and the column type's maximum.
 * last_value needs SELECT or USAGE on the sequence: without it the row says unreadable.
 */
export const sequencesSql = `
with links as (
  select d.objid as seq_oid, d.refobjid as rel_oid, d.refobjsubid as attnum, 1 as pref
  from pg_depend d
  where d.classid = 'pg_class'::regclass and d.objsubid = 0 and d.refclassid = 'pg_class'::regclass
    and d.refobjsubid > 0 and d.deptype in ('a', 'i')
  union all
  select d.refobjid, ad.adrelid, ad.adnum, 2
  from pg_depend d
  join pg_attrdef ad on ad.oid = d.objid
  where d.classid = 'pg_attrdef'::regclass and d.refclassid = 'pg_class'::regclass and d.refobjsubid = 0
), feeds as (
  select distinct on (seq_oid) seq_oid, rel_oid, attnum from links order by seq_oid, pref
)
select ${qualified('n', 'c')} as name, n.nspname as schema_name,
  ${qualified('tn', 'tc')} as table_name, quote_ident(ta.attname) as column_name,
  coalesce(format_type(ta.atttypid, null), format_type(s.seqtypid, null)) as type_name,
  has_sequence_privilege(c.oid, 'SELECT,USAGE') as readable,
  case when has_sequence_privilege(c.oid, 'SELECT,USAGE')
    then pg_sequence_last_value(c.oid::regclass)::text end as last_value,
  least(s.seqmax::numeric, case ty.typname when 'int2' then 32767 when 'int4' then 2147483647
    else 9223372036854775807 end)::text as max_value
from pg_sequence s
join pg_class c on c.oid = s.seqrelid
join pg_namespace n on n.oid = c.relnamespace
left join feeds f on f.seq_oid = s.seqrelid
left join pg_class tc on tc.oid = f.rel_oid
left join pg_namespace tn on tn.oid = tc.relnamespace
left join pg_attribute ta on ta.attrelid = f.rel_oid and ta.attnum = f.attnum
left join pg_type ty on ty.oid = ta.atttypid
where s.seqincrement > 0 and ${userSchema('n')}`;

export interface SequenceRow {
  name: string;
  schema_name: string;
  table_name: string | null;
  column_name: string | null;
  type_name: string;
  readable: boolean;
  last_value: string | null;
  max_value: string;
}

/** CHECK and FOREIGN KEY constraints on user tables that were added NOT VALID. */
export const notValidatedSql = `
select ${qualified('n', 'c')} as table_name, con.conname as name, con.contype as type
from pg_constraint con
join pg_class c on c.oid = con.conrelid
join pg_namespace n on n.oid = c.relnamespace
where not con.convalidated and con.contype in ('c', 'f') and con.conparentid = 0 and ${userSchema('n')}
order by 1, 2`;

export interface NotValidatedRow {
  table_name: string;
  name: string;
  type: string;
}

/** Every replication slot, with the WAL it holds back (from restart_lsn). */
export const replicationSlotsSql = `
select slot_name as name, slot_type as type, database, active, wal_status,
  case when restart_lsn is null then null
    when pg_is_in_recovery() then pg_wal_lsn_diff(pg_last_wal_receive_lsn(), restart_lsn)
    else pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) end::float8 as retained_bytes
from pg_replication_slots
order by slot_name`;

export interface ReplicationSlotRow {
  name: string;
  type: string;
  database: string | null;
  active: boolean;
  wal_status: string | null;
  retained_bytes: number | null;
}

/** Buffer hits and reads of this database's user tables and indexes since statistics were reset. */
export const cacheSql = `
select (select coalesce(sum(heap_blks_hit), 0) from pg_statio_user_tables)::float8 as heap_hit,
  (select coalesce(sum(heap_blks_read), 0) from pg_statio_user_tables)::float8 as heap_read,
  (select coalesce(sum(idx_blks_hit), 0) from pg_statio_user_indexes)::float8 as index_hit,
  (select coalesce(sum(idx_blks_read), 0) from pg_statio_user_indexes)::float8 as index_read`;

export interface CacheRow {
  heap_hit: number;
  heap_read: number;
  index_hit: number;
  index_read: number;
}

/** Relations smaller than this are not estimated at all (bytes). */
export const bloatMinRelationBytes = 1_000_000;

/**
 * Table bloat estimated from catalog statistics, after ioguix's table_bloat.sql (the estimate
 * pgwatch and check_pgactivity use): the pages the live rows should need (average row width from
 * pg_stats, tuple header and alignment, fill factor, TOAST) against the pages the table has. No
 * table is read. Tables whose columns lack statistics (never analyzed, or pg_stats hides them
 * from this login) cannot be estimated and come back with `estimated = false`.
 * Assumes 8-byte alignment (every 64-bit platform).
 */
export const tableBloatSql = `
with tbl as (
  select c.oid, ${qualified('n', 'c')} as name, c.reltuples, c.relpages::float8 as heap_pages,
    coalesce(t.relpages, 0)::float8 as toast_pages, coalesce(t.reltuples, 0)::float8 as toast_tuples,
    coalesce(substring(array_to_string(c.reloptions, ' ') from 'fillfactor=([0-9]+)')::int, 100) as fillfactor,
    current_setting('block_size')::float8 as bs, n.nspname, c.relname
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_class t on t.oid = c.reltoastrelid
  where c.relkind in ('r', 'm') and ${userSchema('n')}
    and (c.relpages + coalesce(t.relpages, 0))::float8 * current_setting('block_size')::float8 >= ${bloatMinRelationBytes}
), widths as (
  select tbl.oid, count(*) as natts, count(s.attname) as nstats,
    coalesce(max(s.null_frac), 0) as max_null_frac,
    sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) as data_width
  from tbl
  join pg_attribute a on a.attrelid = tbl.oid and a.attnum > 0 and not a.attisdropped
  left join pg_stats s on s.schemaname = tbl.nspname and s.tablename = tbl.relname
    and s.attname = a.attname and not s.inherited
  group by tbl.oid
), sized as (
  select tbl.*, w.natts, w.nstats,
    4 + ceil((23 + case when w.max_null_frac > 0 then (7 + w.natts) / 8 else 0 end) / 8.0) * 8
      + ceil(ceil(w.data_width) / 8.0) * 8 as tuple_bytes
  from tbl join widths w on w.oid = tbl.oid
)
select name, (heap_pages + toast_pages) * bs as bytes,
  greatest(0, heap_pages + toast_pages
    - ceil(reltuples / ((bs - 24) * fillfactor / (tuple_bytes * 100))) - ceil(toast_tuples / 4)) * bs as wasted_bytes,
  reltuples >= 0 and nstats = natts as estimated
from sized
order by wasted_bytes desc
limit 100`;

export interface BloatRow {
  name: string;
  table_name?: string;
  bytes: number;
  wasted_bytes: number;
  estimated: boolean;
}

/**
 * B-tree index bloat estimated from catalog statistics, after ioguix's btree_bloat.sql: leaf
 * tuples of the key's average width (pg_stats of the table's columns, or of the index itself for
 * expression parts), item pointers, page header and special space, fill factor 90 unless set.
 */
export const indexBloatSql = `
with idx as (
  select i.indexrelid, i.indrelid, ic.relname, ${qualified('n', 'ic')} as name,
    ${qualified('n', 'c')} as table_name,
    ic.reltuples, ic.relpages::float8 as pages, n.nspname, c.relname as table_relname,
    coalesce(substring(array_to_string(ic.reloptions, ' ') from 'fillfactor=([0-9]+)')::int, 90) as fillfactor,
    current_setting('block_size')::float8 as bs, i.indkey::int2[] as indkey, i.indnatts
  from pg_index i
  join pg_class ic on ic.oid = i.indexrelid
  join pg_class c on c.oid = i.indrelid
  join pg_namespace n on n.oid = c.relnamespace
  join pg_am am on am.oid = ic.relam
  where am.amname = 'btree' and ${userSchema('n')}
    and ic.relpages::float8 * current_setting('block_size')::float8 >= ${bloatMinRelationBytes}
), parts as (
  select idx.indexrelid, s.null_frac, s.avg_width, s.attname is not null as has_stats
  from idx
  cross join generate_series(1, idx.indnatts) as k(pos)
  left join pg_attribute ta on idx.indkey[k.pos - 1] <> 0 and ta.attrelid = idx.indrelid
    and ta.attnum = idx.indkey[k.pos - 1]
  left join pg_attribute xa on idx.indkey[k.pos - 1] = 0 and xa.attrelid = idx.indexrelid and xa.attnum = k.pos
  left join pg_stats s on s.schemaname = idx.nspname
    and s.tablename = case when ta.attname is not null then idx.table_relname else idx.relname end
    and s.attname = coalesce(ta.attname, xa.attname) and not s.inherited
), widths as (
  select indexrelid, bool_and(has_stats) as all_stats, coalesce(max(null_frac), 0) as max_null_frac,
    sum((1 - coalesce(null_frac, 0)) * coalesce(avg_width, 1024)) as data_width
  from parts group by indexrelid
), sized as (
  select idx.*, w.all_stats,
    ceil((case when w.max_null_frac > 0 then 12 else 8 end) / 8.0) * 8
      + ceil(floor(w.data_width) / 8.0) * 8 as tuple_bytes
  from idx join widths w on w.indexrelid = idx.indexrelid
)
select name, table_name, pages * bs as bytes,
  greatest(0, pages - 1
    - ceil(reltuples / floor((bs - 24 - 16) * fillfactor / (100 * (4 + tuple_bytes))))) * bs as wasted_bytes,
  reltuples >= 0 and all_stats as estimated
from sized
order by wasted_bytes desc
limit 100`;

/**
 * The tables with the most dead rows (at least 1,000), with the dead-row count at which
 * autovacuum should have started on each (its reloptions win over the server settings).
 */
export const deadTuplesSql = `
select ${qualified('n', 'c')} as name, s.n_live_tup::float8 as live, s.n_dead_tup::float8 as dead,
  s.last_autovacuum, s.last_vacuum,
  coalesce(substring(array_to_string(c.reloptions, ' ') from 'autovacuum_vacuum_threshold=([0-9]+)')::float8,
    current_setting('autovacuum_vacuum_threshold')::float8)
  + coalesce(substring(array_to_string(c.reloptions, ' ') from 'autovacuum_vacuum_scale_factor=([0-9.]+)')::float8,
    current_setting('autovacuum_vacuum_scale_factor')::float8) * greatest(c.reltuples, 0) as trigger,
  coalesce(array_to_string(c.reloptions, ' ') ~ 'autovacuum_enabled=(false|off|no|0)\\M', false) as autovacuum_off
from pg_stat_user_tables s
join pg_class c on c.oid = s.relid
join pg_namespace n on n.oid = c.relnamespace
where s.n_dead_tup >= 1000
order by s.n_dead_tup desc
limit 20`;

export interface DeadTupleRow {
  name: string;
  live: number;
  dead: number;
  last_autovacuum: Date | null;
  last_vacuum: Date | null;
  trigger: number;
  autovacuum_off: boolean;
}

/** The five largest tables of this database, measured (the ten largest by estimate are measured). */
export const largestTablesSql = `
with estimated as (
  select c.oid, ${qualified('n', 'c')} as name
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_class t on t.oid = c.reltoastrelid
  where c.relkind in ('r', 'm') and ${userSchema('n')}
  order by c.relpages + coalesce(t.relpages, 0)
    + coalesce((select sum(ic.relpages) from pg_index i join pg_class ic on ic.oid = i.indexrelid
      where i.indrelid = c.oid), 0) desc
  limit 10
)
select name, pg_total_relation_size(oid)::float8 as bytes from estimated order by bytes desc limit 5`;

export interface LargestTableRow {
  name: string;
  bytes: number;
}

/** The five largest databases (size only where this login may see it). */
export const databaseSizesSql = `
select datname as name,
  case when has_database_privilege(oid, 'CONNECT') or pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
    then pg_database_size(oid)::float8 end as bytes
from pg_database
where datallowconn
order by bytes desc nulls last
limit 5`;

export interface DatabaseSizeRow {
  name: string;
  bytes: number | null;
}

/** pg_stat_statements in this database, and on the server. */
export const statStatementsSql = `
select exists (select 1 from pg_extension where extname = 'pg_stat_statements') as installed,
  exists (select 1 from pg_available_extensions where name = 'pg_stat_statements') as available`;

export interface StatStatementsRow {
  installed: boolean;
  available: boolean;
}

/**
 * Client sessions connected over the network (not a Unix socket, not a loopback address) and
 * whether each uses TLS. pg_stat_ssl shows other roles' sessions only to pg_read_all_stats.
 */
export const networkSessionsSql = `
select a.pid, a.usename as user_name, host(a.client_addr) as client, coalesce(s.ssl, false) as ssl
from pg_stat_activity a
left join pg_stat_ssl s on s.pid = a.pid
where a.backend_type = 'client backend' and a.client_addr is not null
  and not (a.client_addr <<= inet '127.0.0.0/8' or a.client_addr = inet '::1')
order by s.ssl nulls first, a.pid`;

export interface NetworkSessionRow {
  pid: number;
  user_name: string | null;
  client: string;
  ssl: boolean;
}
