/**
 * The PostgreSQL collector for `dbward doctor`: the facts of src/doctor/facts.ts (shared
 * sections plus the `postgres` section) from a fixed set of catalog queries
 * (postgres-doctor-queries.ts), all on one session that is read-only and under the statement
 * timeout. A query that fails (no privilege, timed out, missing on this server) costs only the
 * checks that need it: they are listed in `skipped` with the reason and, for privileges, the
 * GRANT that would let them run. Works under a login that has only `pg_monitor`.
 */
import type {
  ActivityFacts,
  DoctorFacts,
  IndexFact,
  ReplicationFacts,
  SessionFact,
} from '../../doctor/facts.js';
import type { PostgresFacts, SequenceFact } from '../../doctor/facts/postgres-facts.js';
import type { SkippedCheck } from '../../doctor/finding.js';
import type { DoctorFixes } from '../../doctor/rule.js';
import { QueryError } from '../../core/errors.js';
import type { DoctorCollectContext, DoctorFactsRole, EngineConnection, SqlSession } from '../contract.js';
import { trimServerVersion } from './postgres-connection.js';
import {
  activitySql,
  cacheSql,
  connectionsSql,
  databaseAgesSql,
  databaseSizesSql,
  deadTuplesSql,
  foreignKeysSql,
  indexBloatSql,
  indexesSql,
  largestTablesSql,
  networkSessionsSql,
  notValidatedSql,
  replicationSlotsSql,
  replicationSql,
  sequencesSql,
  serverSql,
  settingsSql,
  statStatementsSql,
  tableAgesSql,
  tableBloatSql,
  tablesSql,
  type ActivityRow,
  type BloatRow,
  type CacheRow,
  type ConnectionsRow,
  type DatabaseAgeRow,
  type DatabaseSizeRow,
  type DeadTupleRow,
  type ForeignKeyRow,
  type IndexRow,
  type LargestTableRow,
  type NetworkSessionRow,
  type NotValidatedRow,
  type ReplicationRow,
  type ReplicationSlotRow,
  type SequenceRow,
  type ServerRow,
  type SettingRow,
  type StatStatementsRow,
  type TableAgeRow,
  type TableRow,
} from './postgres-doctor-queries.js';

/** End of community support per major version (https://www.postgresql.org/support/versioning/). */
const endOfLife: Record<number, string> = {
  13: '2025-11-13',
  14: '2026-11-12',
  15: '2027-11-11',
  16: '2028-11-09',
  17: '2029-11-08',
  18: '2030-11-14',
};

/** Lists of sessions are cut to this many (the oldest first). */
const maxSessions = 50;

export const postgresDoctorFactsRole: DoctorFactsRole = {
  async collect(conn: EngineConnection, ctx: DoctorCollectContext): Promise<DoctorFacts> {
    if (conn.kind !== 'sql') throw new TypeError('postgres doctor needs a SQL connection');
    return conn.withSession((session) => collect(session, ctx));
  },
  fixes: {
    dropIndex: (index) => `DROP INDEX CONCURRENTLY ${schemaOf(index.table)}.${quoteIdent(index.name)};`,
    createIndexFor: (fk) =>
      `CREATE INDEX CONCURRENTLY ON ${fk.table} (${fk.columns.map(quoteIdent).join(', ')});`,
    cancel: (session) => `SELECT pg_cancel_backend(${session.id});`,
    terminate: (session) => `SELECT pg_terminate_backend(${session.id});`,
  } satisfies DoctorFixes,
};

async function collect(session: SqlSession, ctx: DoctorCollectContext): Promise<DoctorFacts> {
  const timeoutMs = Math.max(1, Math.floor(ctx.statementTimeoutMs));
  await session.query(`SET statement_timeout = ${timeoutMs}`);
  await session.query('SET default_transaction_read_only = on');

  const skipped: SkippedCheck[] = [];
  const server = one((await session.query<ServerRow>(serverSql)).rows);
  const grantMonitor = `GRANT pg_monitor TO ${quoteIdent(server.user_name)};`;

  /** Run one fact query; if it fails, the checks in `ids` are skipped with the reason. */
  const attempt = async <T>(ids: string[], run: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof QueryError)) throw err;
      const denied = err.sqlState === '42501';
      const reason =
        err.sqlState === '57014'
          ? `the query timed out after ${timeoutMs} ms (statement timeout)`
          : denied
            ? `permission denied: ${err.message}`
            : `the query failed: ${err.message}`;
      for (const id of ids) skipped.push({ id, reason, ...(denied ? { enableWith: grantMonitor } : {}) });
      return undefined;
    }
  };
  const rows = <Row>(ids: string[], sql: string): Promise<Row[] | undefined> =>
    attempt(ids, async () => (await session.query<Row>(sql)).rows);

  const settings = new Map(
    ((await rows<SettingRow>(['connections.usage'], settingsSql)) ?? []).map((s) => [s.name, s.setting]),
  );
  const setting = (name: string): number | undefined => {
    const value = settings.get(name);
    return value === undefined || value === '' ? undefined : Number(value);
  };
  const major = Math.floor(server.version_num / 10_000);
  const facts: DoctorFacts = {
    server: {
      engine: 'postgres',
      version: trimServerVersion(server.version),
      uptimeSeconds: Math.max(0, server.uptime),
      endOfLife: endOfLife[major] ?? null,
    },
    statsSince: server.stats_reset ? server.stats_reset.toISOString() : null,
    skipped,
  };

  // Connections: the limit applications hit is max_connections less the reserved slots.
  const counts = await rows<ConnectionsRow>(['connections.usage'], connectionsSql);
  const maxConnections = setting('max_connections');
  if (counts && maxConnections !== undefined) {
    const reserved =
      (setting('superuser_reserved_connections') ?? 0) + (setting('reserved_connections') ?? 0);
    const count = one(counts);
    facts.connections = {
      max: Math.max(1, maxConnections - reserved),
      current: server.read_all_stats ? count.client_backends : count.numbackends,
    };
  }

  // Activity: without pg_read_all_stats, other roles' sessions show no state, query or times.
  const activityIds = ['activity.long-running', 'activity.idle-in-transaction', 'activity.lock-waits'];
  if (!server.read_all_stats) {
    for (const id of activityIds) {
      skipped.push({
        id,
        reason: `${server.user_name} sees only its own sessions in pg_stat_activity (it lacks pg_read_all_stats)`,
        enableWith: grantMonitor,
      });
    }
  } else {
    const active = await rows<ActivityRow>(activityIds, activitySql);
    if (active) facts.activity = toActivity(active);
  }

  const indexIds = [
    'indexes.invalid',
    'indexes.duplicate',
    'indexes.unused',
    'indexes.foreign-key-without-index',
  ];
  const indexes = await rows<IndexRow>(indexIds, indexesSql);
  if (indexes) facts.indexes = indexes.map(toIndexFact);

  const tables = await rows<TableRow>(['tables.no-primary-key', 'pg.largest'], tablesSql);
  if (tables) {
    const indexBytes = new Map<string, number>();
    for (const i of indexes ?? []) {
      indexBytes.set(i.table_name, (indexBytes.get(i.table_name) ?? 0) + (i.bytes ?? 0));
    }
    facts.tables = tables.map((t) => ({
      name: t.name,
      hasPrimaryKey: t.has_pk,
      rows: t.relkind === 'p' || t.reltuples < 0 ? null : Math.round(t.reltuples),
      // Estimates, with its indexes (when their query ran; else table and TOAST only).
      totalBytes: t.table_bytes + (indexBytes.get(t.name) ?? 0),
    }));
  }

  const fks = await rows<ForeignKeyRow>(['indexes.foreign-key-without-index'], foreignKeysSql);
  if (fks) {
    facts.foreignKeys = fks.map((f) => ({
      table: f.table_name,
      name: f.name,
      columns: f.columns,
      referencedTable: f.referenced_table,
    }));
  }

  const replication = await rows<ReplicationRow>(['replication.lag'], replicationSql);
  if (replication) facts.replication = toReplication(one(replication), settings.get('primary_conninfo'));

  facts.postgres = await collectPostgres(rows, server, settings, skipped);
  return facts;
}

type RowsFn = <Row>(ids: string[], sql: string) => Promise<Row[] | undefined>;

async function collectPostgres(
  rows: RowsFn,
  server: ServerRow,
  settings: Map<string, string>,
  skipped: SkippedCheck[],
): Promise<PostgresFacts> {
  const pg: PostgresFacts = {};
  const onOff = (name: string): boolean | null => (settings.has(name) ? settings.get(name) === 'on' : null);

  const databaseAges = await rows<DatabaseAgeRow>(['pg.wraparound'], databaseAgesSql);
  const tableAges = databaseAges && (await rows<TableAgeRow>(['pg.wraparound'], tableAgesSql));
  if (databaseAges && tableAges) {
    pg.wraparound = {
      freezeMaxAge: Number(settings.get('autovacuum_freeze_max_age') ?? 200_000_000),
      multixactFreezeMaxAge: Number(settings.get('autovacuum_multixact_freeze_max_age') ?? 400_000_000),
      databases: databaseAges.map((d) => ({
        name: d.name,
        xidAge: d.xid_age,
        multixactAge: d.multixact_age,
      })),
      tables: tableAges.map((t) => ({ name: t.name, xidAge: t.xid_age })),
    };
  }

  const sequences = await rows<SequenceRow>(['pg.sequence-overflow'], sequencesSql);
  if (sequences) {
    const readable: SequenceFact[] = sequences
      .filter((s) => s.readable && s.last_value !== null)
      .map((s) => ({
        name: s.name,
        table: s.table_name,
        column: s.column_name,
        type: s.type_name,
        lastValue: s.last_value ?? '0',
        maxValue: s.max_value,
      }));
    const unreadable = sequences.filter((s) => !s.readable);
    if (unreadable.length > 0 && sequences.every((s) => !s.readable)) {
      const schemas = [...new Set(unreadable.map((s) => quoteIdent(s.schema_name)))];
      skipped.push({
        id: 'pg.sequence-overflow',
        reason: `${server.user_name} may not read the ${unreadable.length} sequence(s) (last_value needs SELECT or USAGE on each)`,
        enableWith: `GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${schemas.join(', ')} TO ${quoteIdent(server.user_name)};`,
      });
    } else {
      pg.sequences = { sequences: readable, unreadable: unreadable.map((s) => s.name) };
    }
  }

  const notValidated = await rows<NotValidatedRow>(['pg.constraints-not-validated'], notValidatedSql);
  if (notValidated) {
    pg.notValidatedConstraints = notValidated.map((c) => ({
      table: c.table_name,
      name: c.name,
      type: c.type === 'f' ? 'foreign key' : 'check',
    }));
  }

  const slots = await rows<ReplicationSlotRow>(['pg.replication-slots'], replicationSlotsSql);
  if (slots) {
    pg.replicationSlots = slots.map((s) => ({
      name: s.name,
      type: s.type,
      database: s.database,
      active: s.active,
      retainedBytes: s.retained_bytes,
      walStatus: s.wal_status,
    }));
  }

  const cache = await rows<CacheRow>(['pg.cache-hit'], cacheSql);
  if (cache) {
    const c = one(cache);
    pg.cache = { heapHit: c.heap_hit, heapRead: c.heap_read, indexHit: c.index_hit, indexRead: c.index_read };
  }

  const tableBloat = await rows<BloatRow>(['pg.table-bloat'], tableBloatSql);
  const indexBloat = await rows<BloatRow>(['pg.index-bloat'], indexBloatSql);
  if (tableBloat || indexBloat) {
    const estimate = (r: BloatRow) => ({
      name: r.name,
      ...(r.table_name ? { table: r.table_name } : {}),
      bytes: r.bytes,
      wastedBytes: r.wasted_bytes,
    });
    const all = [...(tableBloat ?? []), ...(indexBloat ?? [])];
    pg.bloat = {
      tables: (tableBloat ?? []).filter((r) => r.estimated).map(estimate),
      indexes: (indexBloat ?? []).filter((r) => r.estimated).map(estimate),
      unestimated: all
        .filter((r) => !r.estimated)
        .map((r) => (r.table_name ? `${r.name} on ${r.table_name}` : r.name)),
    };
  }

  const dead = await rows<DeadTupleRow>(['pg.dead-tuples'], deadTuplesSql);
  if (dead) {
    pg.deadTuples = dead.map((d) => ({
      table: d.name,
      live: d.live,
      dead: d.dead,
      lastAutovacuum: d.last_autovacuum ? d.last_autovacuum.toISOString() : null,
      lastVacuum: d.last_vacuum ? d.last_vacuum.toISOString() : null,
      autovacuumTrigger: d.trigger,
      autovacuumDisabled: d.autovacuum_off,
    }));
  }

  if (settings.size > 0) pg.autovacuum = { enabled: onOff('autovacuum'), trackCounts: onOff('track_counts') };

  const largestTables = await rows<LargestTableRow>(['pg.largest'], largestTablesSql);
  const databases = largestTables && (await rows<DatabaseSizeRow>(['pg.largest'], databaseSizesSql));
  if (largestTables && databases) {
    pg.largest = {
      tables: largestTables,
      databases: databases
        .filter((d): d is { name: string; bytes: number } => d.bytes !== null)
        .map((d) => ({ name: d.name, bytes: d.bytes })),
    };
  }

  const statements = await rows<StatStatementsRow>(['pg.stat-statements'], statStatementsSql);
  if (statements) {
    const s = one(statements);
    const preload = settings.get('shared_preload_libraries');
    pg.statStatements = {
      installed: s.installed,
      available: s.available,
      preloaded:
        preload === undefined
          ? null
          : preload
              .split(',')
              .map((l) => l.trim().replace(/^"|"$/g, ''))
              .includes('pg_stat_statements'),
      preloadLibraries: preload ?? null,
    };
  }

  const network = await rows<NetworkSessionRow>(['pg.ssl'], networkSessionsSql);
  if (network) {
    const own =
      server.client_addr === null ? 'socket' : isLoopback(server.client_addr) ? 'loopback' : 'network';
    // doctor's own session is judged on its own.
    const others = network.filter((s) => s.pid !== server.pid);
    pg.ssl = {
      own: { transport: own, encrypted: server.own_ssl === true },
      unencryptedOthers: others
        .filter((s) => !s.ssl)
        .slice(0, 20)
        .map((s) => ({ id: s.pid, user: s.user_name, client: s.client })),
      networkSessions: others.length,
      serverSsl: onOff('ssl'),
    };
  }
  return pg;
}

function toActivity(active: ActivityRow[]): ActivityFacts {
  const session = (r: ActivityRow, seconds: number | null): SessionFact => ({
    id: r.pid,
    user: r.user_name,
    application: r.application_name || null,
    client: r.client,
    seconds: Math.max(0, seconds ?? 0),
    query: r.query === null || r.query === '<insufficient privilege>' ? null : r.query,
  });
  const idleStates = new Set(['idle in transaction', 'idle in transaction (aborted)']);
  return {
    longRunning: active
      .filter((r) => r.state === 'active' && r.query_seconds !== null)
      .sort((a, b) => (b.query_seconds ?? 0) - (a.query_seconds ?? 0))
      .slice(0, maxSessions)
      .map((r) => session(r, r.query_seconds)),
    idleInTransaction: active
      .filter((r) => idleStates.has(r.state))
      .sort((a, b) => (b.state_seconds ?? 0) - (a.state_seconds ?? 0))
      .slice(0, maxSessions)
      .map((r) => session(r, r.state_seconds)),
    blocked: active
      .filter((r) => r.blocked_by !== null && r.blocked_by.length > 0)
      .slice(0, maxSessions)
      .map((r) => ({ ...session(r, r.wait_seconds ?? r.query_seconds), blockedBy: r.blocked_by ?? [] })),
  };
}

function toIndexFact(r: IndexRow): IndexFact {
  return {
    table: r.table_name,
    name: r.name,
    columns: r.columns,
    method: r.method,
    unique: r.is_unique,
    primary: r.is_primary,
    predicate: r.predicate,
    // An index a running CREATE INDEX CONCURRENTLY is building is invalid until it finishes.
    valid: r.is_valid || r.building,
    scans: r.scans,
    sizeBytes: r.bytes,
    constraint: r.constraint_name,
  };
}

function toReplication(r: ReplicationRow, primaryConninfo: string | undefined): ReplicationFacts {
  if (r.in_recovery) {
    // No WAL receiver: a standby restoring from an archive only (no primary_conninfo) has no link to judge.
    const linkUp = r.streaming > 0 ? true : r.receivers > 0 || primaryConninfo ? false : undefined;
    return { role: 'replica', lagSeconds: r.lag_seconds, ...(linkUp === undefined ? {} : { linkUp }) };
  }
  return r.replicas > 0 ? { role: 'primary', replicas: r.replicas } : { role: 'standalone', replicas: 0 };
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

function one<Row>(rows: Row[]): Row {
  const row = rows[0];
  if (row === undefined) throw new Error('postgres doctor: a one-row query returned no rows');
  return row;
}

/** PostgreSQL's reserved (and type/function-name) keywords: as identifiers they must be quoted. */
const reserved = new Set(
  `all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
  collation column concurrently constraint create cross current_catalog current_date current_role
  current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
  except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
  is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
  only or order outer overlaps placing primary references returning right select session_user similar some
  symmetric table tablesample then to trailing true union unique user using variadic verbose when where
  window with`.split(/\s+/),
);

/** An identifier as PostgreSQL's quote_ident writes it: bare when it can be, else double-quoted. */
export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) && !reserved.has(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** The (SQL-quoted) schema part of a qualified name as the collector writes them: `s.t`, `"S x"."t"`. */
export function schemaOf(qualifiedName: string): string {
  if (!qualifiedName.startsWith('"')) return qualifiedName.slice(0, Math.max(0, qualifiedName.indexOf('.')));
  let i = 1;
  while (i < qualifiedName.length) {
    if (qualifiedName[i] === '"') {
      if (qualifiedName[i + 1] === '"') i += 2;
      else return qualifiedName.slice(0, i + 1);
    } else i++;
  }
  return qualifiedName;
}
