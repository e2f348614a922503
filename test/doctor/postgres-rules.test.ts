/**
 * The PostgreSQL doctor rules from hand-written facts, through judge(): each check's thresholds
 * and severities, its fix, and a healthy server yielding nothing above info.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DoctorFacts } from '../../src/doctor/facts.js';
import type { PostgresFacts } from '../../src/doctor/facts/postgres-facts.js';
import type { Finding } from '../../src/doctor/finding.js';
import { allRules, judge } from '../../src/doctor/run-doctor.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';
import {
  postgresDoctorFactsRole,
  quoteIdent,
  schemaOf,
} from '../../src/engines/postgres/postgres-doctor-facts.js';

function healthyPostgres(): PostgresFacts {
  return {
    wraparound: {
      freezeMaxAge: 200_000_000,
      multixactFreezeMaxAge: 400_000_000,
      databases: [{ name: 'app', xidAge: 5_000, multixactAge: 0 }],
      tables: [{ name: 'public.orders', xidAge: 5_000 }],
    },
    sequences: {
      sequences: [
        {
          name: 'public.orders_id_seq',
          table: 'public.orders',
          column: 'id',
          type: 'integer',
          lastValue: '1000',
          maxValue: '2147483647',
        },
      ],
      unreadable: [],
    },
    notValidatedConstraints: [],
    replicationSlots: [],
    cache: { heapHit: 1_000_000, heapRead: 1_000, indexHit: 2_000_000, indexRead: 500 },
    bloat: {
      tables: [{ name: 'public.orders', bytes: 50_000_000, wastedBytes: 5_000_000 }],
      indexes: [],
      unestimated: [],
    },
    deadTuples: [],
    autovacuum: { enabled: true, trackCounts: true },
    largest: {
      tables: [{ name: 'public.orders', bytes: 50_000_000 }],
      databases: [{ name: 'app', bytes: 60_000_000 }],
    },
    statStatements: {
      installed: true,
      available: true,
      preloaded: true,
      preloadLibraries: 'pg_stat_statements',
    },
    ssl: {
      own: { transport: 'loopback', encrypted: false },
      unencryptedOthers: [],
      networkSessions: 0,
      serverSsl: false,
    },
  };
}

function facts(postgres: Partial<PostgresFacts> = {}): DoctorFacts {
  return {
    server: { engine: 'postgres', version: '16.4', uptimeSeconds: 86_400 * 30, endOfLife: '2028-11-09' },
    connections: { max: 97, current: 5 },
    activity: { longRunning: [], idleInTransaction: [], blocked: [] },
    tables: [{ name: 'public.orders', hasPrimaryKey: true, rows: 1000, totalBytes: 50_000_000 }],
    indexes: [],
    foreignKeys: [],
    statsSince: null,
    replication: { role: 'standalone', replicas: 0 },
    postgres: { ...healthyPostgres(), ...postgres },
    skipped: [],
  };
}

function run(f: DoctorFacts, thresholds: Record<string, number> = {}): Finding[] {
  return judge(f, allRules, {
    thresholds: resolveThresholds(thresholds),
    fixes: postgresDoctorFactsRole.fixes,
  }).findings;
}

function only(f: DoctorFacts, id: string, thresholds: Record<string, number> = {}): Finding[] {
  return run(f, thresholds).filter((x) => x.id === id);
}

describe('postgres doctor rules', () => {
  it('a healthy server yields no warning or critical, and every pg. check reports ok', () => {
    const findings = run(facts());
    assert.deepEqual(
      findings.filter((f) => f.severity === 'warning' || f.severity === 'critical'),
      [],
    );
    for (const id of [
      'pg.wraparound',
      'pg.sequence-overflow',
      'pg.constraints-not-validated',
      'pg.replication-slots',
      'pg.autovacuum',
      'pg.dead-tuples',
      'pg.table-bloat',
      'pg.index-bloat',
      'pg.cache-hit',
      'pg.stat-statements',
      'pg.ssl',
    ]) {
      assert.equal(findings.find((f) => f.id === id)?.severity, 'ok', id);
    }
    assert.equal(findings.find((f) => f.id === 'pg.largest')?.severity, 'info');
  });

  it('pg.wraparound: info past autovacuum_freeze_max_age, warning and critical by share of 2^31', () => {
    const at = (xidAge: number, multixactAge = 0) =>
      only(
        facts({
          wraparound: {
            ...healthyPostgres().wraparound!,
            databases: [{ name: 'app', xidAge, multixactAge }],
          },
        }),
        'pg.wraparound',
      )[0];
    assert.equal(at(100_000_000)?.severity, 'ok');
    assert.equal(at(250_000_000)?.severity, 'info');
    assert.equal(at(700_000_000)?.severity, 'warning');
    assert.equal(at(1_200_000_000)?.severity, 'critical');
    assert.equal(at(1000, 1_200_000_000)?.severity, 'critical', 'multixact age counts too');
    assert.match(at(700_000_000)?.fix ?? '', /VACUUM \(FREEZE, VERBOSE\) public\.orders;/);
  });

  it('pg.sequence-overflow: warning from 90 %, critical from 98 %, unreadable ones as info', () => {
    const seq = (lastValue: string, maxValue = '2147483647') => ({
      name: 'public.t_id_seq',
      table: 'public.t',
      column: 'id',
      type: 'integer',
      lastValue,
      maxValue,
    });
    const bySeverity = (lastValue: string, maxValue?: string) =>
      only(
        facts({ sequences: { sequences: [seq(lastValue, maxValue)], unreadable: [] } }),
        'pg.sequence-overflow',
      ).map((f) => f.severity);
    assert.deepEqual(bySeverity('1900000000'), ['ok']);
    assert.deepEqual(bySeverity('2040109465'), ['warning']);
    assert.deepEqual(bySeverity('32700', '32767'), ['critical']);
    const both = only(
      facts({
        sequences: {
          sequences: [seq('2040109465'), { ...seq('32700', '32767'), name: 'public.s_id_seq' }],
          unreadable: ['public.secret_seq'],
        },
      }),
      'pg.sequence-overflow',
    );
    assert.deepEqual(
      both.map((f) => f.severity),
      ['critical', 'warning', 'info'],
    );
    assert.match(both[1]?.fix ?? '', /ALTER TABLE public\.t ALTER COLUMN id TYPE bigint;/);
    assert.match(both[1]?.fix ?? '', /ALTER SEQUENCE public\.t_id_seq AS bigint;/);
    assert.deepEqual(
      bySeverity('9000000000000000000', '9223372036854775807'),
      ['warning'],
      'bigint values beyond 2^53',
    );
  });

  it('pg.constraints-not-validated: warning with VALIDATE CONSTRAINT', () => {
    const [f] = only(
      facts({ notValidatedConstraints: [{ table: 'public.c', name: 'v_pos', type: 'check' }] }),
      'pg.constraints-not-validated',
    );
    assert.equal(f?.severity, 'warning');
    assert.match(f?.fix ?? '', /^ALTER TABLE public\.c VALIDATE CONSTRAINT v_pos;/);
  });

  it('pg.replication-slots: inactive is a warning, critical past the retained-WAL threshold', () => {
    const slot = (retainedBytes: number, active = false) => ({
      name: "old'slot",
      type: 'logical',
      database: 'app',
      active,
      retainedBytes,
      walStatus: 'extended',
    });
    assert.equal(
      only(facts({ replicationSlots: [slot(1e12, true)] }), 'pg.replication-slots')[0]?.severity,
      'ok',
    );
    const [warn] = only(facts({ replicationSlots: [slot(5e6)] }), 'pg.replication-slots');
    assert.equal(warn?.severity, 'warning');
    assert.match(warn?.fix ?? '', /SELECT pg_drop_replication_slot\('old''slot'\);/);
    assert.equal(
      only(facts({ replicationSlots: [slot(2e10)] }), 'pg.replication-slots')[0]?.severity,
      'critical',
    );
  });

  it('pg.cache-hit: not judged below the minimum reads; info below 99 %, warning below 90 %', () => {
    const at = (heapHit: number, heapRead: number) =>
      only(facts({ cache: { heapHit, heapRead, indexHit: 0, indexRead: 0 } }), 'pg.cache-hit').map(
        (f) => f.severity,
      );
    assert.deepEqual(at(100, 9_000), ['ok'], 'a fresh database with few reads');
    assert.deepEqual(at(1_000_000, 20_000), ['info']);
    assert.deepEqual(at(100_000, 20_000), ['warning']);
  });

  it('pg.table-bloat and pg.index-bloat: warning above the size and share thresholds', () => {
    const bloat = {
      tables: [
        { name: 'public.big', bytes: 100_000_000, wastedBytes: 70_000_000 },
        { name: 'public.small', bytes: 5_000_000, wastedBytes: 4_000_000 },
      ],
      indexes: [{ name: 'public.big_pkey', table: 'public.big', bytes: 20_000_000, wastedBytes: 15_000_000 }],
      unestimated: [],
    };
    const [t] = only(facts({ bloat }), 'pg.table-bloat');
    assert.equal(t?.severity, 'warning');
    assert.equal(t?.evidence.length, 1, 'the small table is under pg.bloatMinBytes');
    assert.match(t?.fix ?? '', /VACUUM FULL public\.big;.*pg_repack/);
    const [i] = only(facts({ bloat }), 'pg.index-bloat');
    assert.equal(i?.severity, 'warning');
    assert.equal(i?.fix, 'REINDEX INDEX CONCURRENTLY public.big_pkey;');
    assert.equal(only(facts({ bloat }), 'pg.table-bloat', { 'pg.bloatWarnPercent': 80 })[0]?.severity, 'ok');
  });

  it('pg.dead-tuples: warning past autovacuum’s trigger; pg.autovacuum: warning when off', () => {
    const dead = (deadRows: number, live: number, trigger: number) => ({
      table: 'public.t',
      live,
      dead: deadRows,
      lastAutovacuum: null,
      lastVacuum: null,
      autovacuumTrigger: trigger,
      autovacuumDisabled: true,
    });
    assert.equal(
      only(facts({ deadTuples: [dead(30_000, 20_000, 50)] }), 'pg.dead-tuples')[0]?.severity,
      'warning',
    );
    assert.equal(
      only(facts({ deadTuples: [dead(5_000, 1_000, 50)] }), 'pg.dead-tuples')[0]?.severity,
      'ok',
      'below the minimum',
    );
    assert.equal(
      only(facts({ deadTuples: [dead(30_000, 1_000_000, 50)] }), 'pg.dead-tuples')[0]?.severity,
      'ok',
      'a small share',
    );
    assert.equal(
      only(facts({ deadTuples: [dead(30_000, 20_000, 50_000)] }), 'pg.dead-tuples')[0]?.severity,
      'ok',
      'autovacuum not due yet',
    );
    assert.match(
      only(facts({ deadTuples: [dead(30_000, 20_000, 50)] }), 'pg.dead-tuples')[0]?.fix ?? '',
      /RESET \(autovacuum_enabled\)/,
    );
    assert.equal(
      only(facts({ autovacuum: { enabled: false, trackCounts: true } }), 'pg.autovacuum')[0]?.severity,
      'warning',
    );
  });

  it('pg.stat-statements: info with the steps that apply', () => {
    const s = (preloaded: boolean | null) =>
      only(
        facts({
          statStatements: {
            installed: false,
            available: true,
            preloaded,
            preloadLibraries: preloaded ? 'pg_stat_statements' : 'auto_explain',
          },
        }),
        'pg.stat-statements',
      )[0];
    assert.equal(s(true)?.severity, 'info');
    assert.match(s(true)?.fix ?? '', /^CREATE EXTENSION pg_stat_statements;/);
    assert.doesNotMatch(s(true)?.fix ?? '', /shared_preload_libraries/);
    assert.match(
      s(false)?.fix ?? '',
      /ALTER SYSTEM SET shared_preload_libraries = 'auto_explain, pg_stat_statements';[\s\S]*restart[\s\S]*CREATE EXTENSION/,
    );
  });

  it('pg.ssl: socket and loopback are not judged; own network connection without TLS warns; others are info', () => {
    const ssl = (transport: 'socket' | 'loopback' | 'network', others = 0) =>
      only(
        facts({
          ssl: {
            own: { transport, encrypted: false },
            unencryptedOthers: Array.from({ length: others }, (_, i) => ({
              id: 100 + i,
              user: 'app',
              client: '10.0.0.5',
            })),
            networkSessions: others + 2,
            serverSsl: true,
          },
        }),
        'pg.ssl',
      ).map((f) => f.severity);
    assert.deepEqual(ssl('socket'), ['ok']);
    assert.deepEqual(ssl('loopback'), ['ok']);
    assert.deepEqual(ssl('network'), ['warning']);
    assert.deepEqual(ssl('loopback', 2), ['info']);
  });

  it('a check the collector skipped is reported as skipped, not judged', () => {
    const f = facts();
    delete f.postgres?.sequences;
    f.skipped.push({
      id: 'pg.sequence-overflow',
      reason: 'cannot read',
      enableWith: 'GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO mon;',
    });
    const { findings, skipped } = judge(f, allRules, {
      thresholds: resolveThresholds(),
      fixes: postgresDoctorFactsRole.fixes,
    });
    assert.equal(
      findings.some((x) => x.id === 'pg.sequence-overflow'),
      false,
    );
    assert.equal(skipped[0]?.id, 'pg.sequence-overflow');
  });

  it('fixes: quoted names, CONCURRENTLY, cancel and terminate', () => {
    const { fixes } = postgresDoctorFactsRole;
    const index = {
      table: '"My Schema"."Orders"',
      name: 'Orders_idx',
      columns: ['a'],
      method: 'btree',
      unique: false,
      primary: false,
      predicate: null,
      valid: true,
      scans: 0,
      sizeBytes: 1,
      constraint: null,
    };
    assert.equal(fixes.dropIndex(index), 'DROP INDEX CONCURRENTLY "My Schema"."Orders_idx";');
    assert.equal(
      fixes.dropIndex({ ...index, table: 'public.orders', name: 'orders_a' }),
      'DROP INDEX CONCURRENTLY public.orders_a;',
    );
    assert.equal(
      fixes.createIndexFor({
        table: 'public.orders',
        name: 'fk',
        columns: ['customer_id', 'user', 'Mixed'],
        referencedTable: 'public.c',
      }),
      'CREATE INDEX CONCURRENTLY ON public.orders (customer_id, "user", "Mixed");',
    );
    const session = { id: 42, user: null, application: null, client: null, seconds: 1, query: null };
    assert.equal(fixes.cancel(session), 'SELECT pg_cancel_backend(42);');
    assert.equal(fixes.terminate(session), 'SELECT pg_terminate_backend(42);');
    assert.equal(quoteIdent('a"b'), '"a""b"');
    assert.equal(schemaOf('"a"".b"."t"'), '"a"".b"');
  });
});
