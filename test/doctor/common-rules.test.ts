/**
 * The engine-neutral doctor rules, judged from hand-written facts (no server): each problem is
 * found with the right severity, and healthy facts give only `ok`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DoctorFacts, IndexFact, SessionFact } from '../../src/doctor/facts.js';
import type { Finding } from '../../src/doctor/finding.js';
import type { DoctorFixes } from '../../src/doctor/rule.js';
import { commonRules } from '../../src/doctor/rules/common-rules.js';
import { judge, selectRules } from '../../src/doctor/run-doctor.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';

const fixes: DoctorFixes = {
  dropIndex: (i) => `DROP INDEX ${i.name};`,
  createIndexFor: (fk) => `CREATE INDEX ON ${fk.table} (${fk.columns.join(', ')});`,
  cancel: (s) => `cancel ${s.id}`,
  terminate: (s) => `terminate ${s.id}`,
};

const index = (name: string, columns: string[], extra: Partial<IndexFact> = {}): IndexFact => ({
  table: 'public.orders',
  name,
  columns,
  method: 'btree',
  unique: false,
  primary: false,
  predicate: null,
  valid: true,
  scans: 5,
  sizeBytes: 8192,
  constraint: null,
  ...extra,
});

const session = (id: number, seconds: number, extra: Partial<SessionFact> = {}): SessionFact => ({
  id,
  user: 'app',
  application: null,
  client: null,
  seconds,
  query: 'SELECT 1',
  ...extra,
});

const healthy = (): DoctorFacts => ({
  server: { engine: 'postgres', version: '15.19', uptimeSeconds: 86_400 * 30, endOfLife: '2099-01-01' },
  connections: { max: 100, current: 12 },
  activity: { longRunning: [session(1, 3)], idleInTransaction: [session(2, 10)], blocked: [] },
  tables: [{ name: 'public.orders', hasPrimaryKey: true, rows: 1000, totalBytes: 100_000 }],
  indexes: [
    index('orders_pkey', ['id'], { unique: true, primary: true, constraint: 'orders_pkey' }),
    index('orders_customer_idx', ['customer_id']),
  ],
  foreignKeys: [
    {
      table: 'public.orders',
      name: 'orders_customer_fk',
      columns: ['customer_id'],
      referencedTable: 'public.customers',
    },
  ],
  statsSince: null,
  replication: { role: 'primary', replicas: 0 },
  skipped: [],
});

function run(facts: DoctorFacts, overrides: Record<string, number> = {}): Finding[] {
  return judge(facts, commonRules, { thresholds: resolveThresholds(overrides), fixes }).findings;
}

const problems = (findings: Finding[]): Finding[] => findings.filter((f) => f.severity !== 'ok');
const byId = (findings: Finding[], id: string): Finding | undefined => findings.find((f) => f.id === id);

describe('common doctor rules', () => {
  it('healthy facts: every check runs and passes', () => {
    const findings = run(healthy());
    assert.deepEqual(problems(findings), []);
    // Replication on a primary has nothing to judge, so that rule does not run.
    assert.deepEqual(
      findings.map((f) => f.id),
      commonRules.map((r) => r.id).filter((id) => id !== 'replication.lag'),
    );
  });

  it('finds an exact duplicate once, and a prefix index as redundant', () => {
    const facts = healthy();
    facts.indexes!.push(
      index('orders_customer_idx2', ['customer_id']),
      index('orders_customer_date_idx', ['customer_id', 'placed_at']),
    );
    const dup = byId(run(facts), 'indexes.duplicate')!;
    assert.equal(dup.severity, 'warning');
    assert.match(dup.title, /^2 duplicate or redundant/);
    // orders_customer_idx2 is covered by its twin (reported once), and orders_customer_idx by the wider one.
    assert.deepEqual(dup.fix!.split('\n').sort(), [
      'DROP INDEX orders_customer_idx2;',
      'DROP INDEX orders_customer_idx;',
    ]);
  });

  it('keeps indexes that differ in method, predicate or uniqueness, and constraint indexes', () => {
    const facts = healthy();
    facts.indexes!.push(
      index('orders_customer_hash', ['customer_id'], { method: 'hash' }),
      index('orders_customer_open', ['customer_id'], { predicate: "status = 'open'" }),
      index('orders_id_unique', ['id', 'customer_id'], { unique: true }),
      index('orders_invalid_twin', ['customer_id'], { valid: false, scans: 0 }),
    );
    const found = run(facts);
    assert.equal(byId(found, 'indexes.duplicate')!.severity, 'ok');
    assert.equal(byId(found, 'indexes.invalid')!.severity, 'warning');
  });

  it('counts the implicit key suffix (InnoDB): (a, id) is redundant next to (a)', () => {
    const facts = healthy();
    facts.indexes = [
      index('PRIMARY', ['id'], { unique: true, primary: true, constraint: 'PRIMARY' }),
      index('a_idx', ['a'], { implicitSuffix: ['id'] }),
      index('a_id_idx', ['a', 'id'], { implicitSuffix: ['id'] }),
    ];
    const dup = byId(run(facts), 'indexes.duplicate')!;
    assert.equal(dup.severity, 'warning');
    assert.equal(dup.fix, 'DROP INDEX a_id_idx;');
  });

  it('reports unused indexes only when large enough, not unique and not backing a constraint', () => {
    const facts = healthy();
    facts.statsSince = '2026-11-01T00:00:00.000Z';
    facts.indexes!.push(
      index('big_unused', ['note'], { scans: 0, sizeBytes: 50_000_000 }),
      index('small_unused', ['memo'], { scans: 0, sizeBytes: 8192 }),
      index('big_unique_unused', ['code'], { scans: 0, sizeBytes: 50_000_000, unique: true }),
    );
    const unused = byId(run(facts), 'indexes.unused')!;
    assert.equal(unused.severity, 'warning');
    assert.match(unused.title, /^1 index\(es\) never used since 2026-11-01/);
    assert.deepEqual(unused.evidence, ['big_unused on public.orders: 0 scans, 48 MB']);
    assert.equal(byId(run(facts, { 'indexes.unusedMinBytes': 1 }), 'indexes.unused')!.evidence.length, 2);
  });

  it('does not judge unused indexes where the engine keeps no scan counts', () => {
    const facts = healthy();
    facts.indexes = facts.indexes!.map((i) => ({ ...i, scans: null }));
    assert.equal(byId(run(facts), 'indexes.unused'), undefined);
  });

  it('a foreign key needs an index whose leading columns are its columns, in any order', () => {
    const facts = healthy();
    facts.foreignKeys!.push(
      { table: 'public.orders', name: 'fk_two', columns: ['a', 'b'], referencedTable: 'public.x' },
      {
        table: 'public.orders',
        name: 'fk_unindexed',
        columns: ['product_id'],
        referencedTable: 'public.products',
      },
    );
    facts.indexes!.push(
      index('ba_idx', ['b', 'a', 'c']),
      index('p_partial', ['product_id'], { predicate: 'x' }),
    );
    const fk = byId(run(facts), 'indexes.foreign-key-without-index')!;
    assert.equal(fk.severity, 'warning');
    assert.deepEqual(fk.evidence, ['public.orders (product_id) → public.products [fk_unindexed]']);
    assert.equal(fk.fix, 'CREATE INDEX ON public.orders (product_id);');
  });

  it('connections: warning from 80 %, critical from 95 %', () => {
    const facts = healthy();
    facts.connections = { max: 100, current: 85 };
    assert.equal(byId(run(facts), 'connections.usage')!.severity, 'warning');
    facts.connections = { max: 100, current: 97 };
    assert.equal(byId(run(facts), 'connections.usage')!.severity, 'critical');
  });

  it('idle in transaction: warning past a minute, critical past an hour, with the sessions to end', () => {
    const facts = healthy();
    facts.activity!.idleInTransaction = [session(7, 120, { query: 'UPDATE accounts SET …' })];
    const warn = byId(run(facts), 'activity.idle-in-transaction')!;
    assert.equal(warn.severity, 'warning');
    assert.match(warn.evidence[0]!, /session 7 \(app\): idle 2 min; last statement: UPDATE accounts/);
    assert.match(warn.fix!, /^terminate 7/);
    facts.activity!.idleInTransaction = [session(7, 7200)];
    assert.equal(byId(run(facts), 'activity.idle-in-transaction')!.severity, 'critical');
  });

  it('lock waits name the root blocker, and long statements get a cancel', () => {
    const facts = healthy();
    facts.activity!.idleInTransaction = [session(10, 30)];
    facts.activity!.blocked = [
      { ...session(11, 20, { query: 'UPDATE t SET x = 1' }), blockedBy: [10] },
      { ...session(12, 8), blockedBy: [11] },
    ];
    facts.activity!.longRunning = [session(13, 90, { query: 'SELECT pg_sleep(100)' })];
    const found = run(facts);
    const waits = byId(found, 'activity.lock-waits')!;
    assert.equal(waits.severity, 'warning');
    assert.match(waits.title, /2 session\(s\) waiting for a lock, blocked by session\(s\) 10$/);
    assert.equal(waits.fix, 'terminate 10');
    assert.equal(byId(found, 'activity.long-running')!.fix, 'cancel 13');
  });

  it('tables without a primary key', () => {
    const facts = healthy();
    facts.tables!.push({ name: 'public.events', hasPrimaryKey: false, rows: 5000, totalBytes: null });
    const pk = byId(run(facts), 'tables.no-primary-key')!;
    assert.equal(pk.severity, 'warning');
    assert.deepEqual(pk.evidence, ['public.events (~5,000 rows)']);
  });

  it('replication: lag thresholds and a broken link', () => {
    const facts = healthy();
    facts.replication = { role: 'replica', lagSeconds: 60, linkUp: true };
    assert.equal(byId(run(facts), 'replication.lag')!.severity, 'warning');
    facts.replication = { role: 'replica', lagSeconds: 600, linkUp: true };
    assert.equal(byId(run(facts), 'replication.lag')!.severity, 'critical');
    facts.replication = { role: 'replica', lagSeconds: null, linkUp: false };
    assert.equal(byId(run(facts), 'replication.lag')!.severity, 'critical');
    facts.replication = { role: 'replica', lagSeconds: 1, linkUp: true };
    assert.equal(byId(run(facts), 'replication.lag')!.severity, 'ok');
  });

  it('server: past end of life is a warning, soon is info, a recent restart is info', () => {
    const facts = healthy();
    facts.server.endOfLife = '2020-01-01';
    assert.equal(byId(run(facts), 'server.version')!.severity, 'warning');
    facts.server.endOfLife = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    assert.equal(byId(run(facts), 'server.version')!.severity, 'info');
    facts.server.uptimeSeconds = 120;
    assert.equal(byId(run(facts), 'server.uptime')!.severity, 'info');
  });

  it('worst findings come first; skipped checks are not run', () => {
    const facts = healthy();
    facts.connections = { max: 100, current: 99 };
    facts.tables!.push({ name: 'public.events', hasPrimaryKey: false, rows: null, totalBytes: null });
    facts.skipped = [
      { id: 'indexes.unused', reason: 'no access to statistics', enableWith: 'GRANT pg_monitor TO app;' },
    ];
    const result = judge(facts, commonRules, { thresholds: resolveThresholds(), fixes });
    assert.deepEqual(
      result.findings.slice(0, 2).map((f) => f.severity),
      ['critical', 'warning'],
    );
    assert.equal(byId(result.findings, 'indexes.unused'), undefined);
    assert.deepEqual(result.skipped, facts.skipped);
  });

  it('--only / --skip accept ids and group prefixes, and refuse unknown ones', () => {
    assert.deepEqual(
      selectRules({ only: ['indexes.'] })
        .map((r) => r.id)
        .every((id) => id.startsWith('indexes.')),
      true,
    );
    assert.ok(!selectRules({ skip: ['indexes.unused'] }).some((r) => r.id === 'indexes.unused'));
    assert.throws(() => selectRules({ only: ['indexes.nope'] }), /No doctor check is called "indexes.nope"/);
    assert.throws(() => resolveThresholds({ 'connections.nope': 1 }), /Unknown doctor threshold/);
  });
});
