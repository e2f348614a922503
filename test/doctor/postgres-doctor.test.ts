/**
 * `doctor` on a real PostgreSQL: plant each problem in a fresh database and check doctor reports
 * it with the right id and severity; a healthy fresh database yields no warning or critical; a
 * login with only pg_monitor gets a report whose unreadable parts are skipped with the GRANT;
 * and the number of catalog queries does not grow with the number of tables.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { targetFromInput } from '../../src/config/load-config.js';
import { open } from '../../src/connect/open.js';
import type { DoctorReport, Finding } from '../../src/doctor/finding.js';
import { doctor } from '../../src/doctor/run-doctor.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';
import type { SqlConnection, SqlSession } from '../../src/engines/contract.js';
import { postgresDoctorFactsRole } from '../../src/engines/postgres/postgres-doctor-facts.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { withCredentials } from '../helpers/engine-connect.js';

const skip = skipReason('postgres');

async function runDoctor(url: string, thresholds: Record<string, number> = {}): Promise<DoctorReport> {
  const target = targetFromInput(url);
  const db = await open(target);
  try {
    return await doctor(db, target, { thresholds });
  } finally {
    await db.close();
  }
}

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Run statements one by one on a new client. */
async function exec(url: string, statements: string[]): Promise<void> {
  const c = await client(url);
  try {
    for (const sql of statements) await c.query(sql);
  } finally {
    await c.end();
  }
}

function found(report: DoctorReport, id: string, severity?: Finding['severity']): Finding[] {
  return report.findings.filter((f) => f.id === id && (severity === undefined || f.severity === severity));
}

function the(report: DoctorReport, id: string, severity: Finding['severity']): Finding {
  const matches = found(report, id, severity);
  assert.equal(
    matches.length,
    1,
    `expected one ${severity} ${id}; got: ${JSON.stringify(found(report, id), null, 1)}`,
  );
  return matches[0] as Finding;
}

const serious = (report: DoctorReport): Finding[] =>
  report.findings.filter((f) => f.severity === 'warning' || f.severity === 'critical');

/** Wait until `check` holds, polling. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const healthySchema = [
  'CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE)',
  `CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total numeric(10, 2) NOT NULL CHECK (total >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  'CREATE INDEX orders_customer_id_idx ON orders (customer_id)',
  `CREATE TABLE order_lines (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no int NOT NULL,
    sku text NOT NULL,
    PRIMARY KEY (order_id, line_no)
  )`,
  "INSERT INTO customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 200) g",
  'INSERT INTO orders (customer_id, total) SELECT 1 + g % 200, g FROM generate_series(1, 2000) g',
  "INSERT INTO order_lines SELECT 1 + g % 2000, g, 'sku' || g FROM generate_series(1, 4000) g",
  'ANALYZE',
];

describe('postgres doctor on a real server', { skip }, () => {
  it('a healthy, freshly created database yields no warning or critical', async () => {
    const db = await freshDatabase('postgres');
    try {
      await exec(db.url, healthySchema);
      const report = await runDoctor(db.url);
      assert.equal(report.engine, 'postgres');
      assert.match(report.serverVersion ?? '', /^\d+\.\d+/);
      assert.deepEqual(serious(report), []);
      assert.deepEqual(report.skipped, []);
      for (const id of [
        'connections.usage',
        'tables.no-primary-key',
        'indexes.invalid',
        'indexes.duplicate',
        'indexes.unused',
        'indexes.foreign-key-without-index',
        'pg.wraparound',
        'pg.sequence-overflow',
        'pg.constraints-not-validated',
        'pg.dead-tuples',
        'pg.table-bloat',
        'pg.index-bloat',
      ]) {
        assert.equal(found(report, id, 'ok').length, 1, `${id} ran and found nothing`);
      }
    } finally {
      await db.cleanup();
    }
  });

  describe('planted problems in one database', () => {
    let db: TestDatabase;
    let report: DoctorReport;
    const planted = [
      // Unused (events_kind) next to a used one (events_note).
      'CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind int, note text)',
      "INSERT INTO events (kind, note) SELECT g % 100, 'n' || g FROM generate_series(1, 20000) g",
      'CREATE INDEX events_kind ON events (kind)',
      'CREATE INDEX events_note ON events (note)',
      'ANALYZE events',
      // Duplicate and redundant prefix.
      'CREATE TABLE dup (id int PRIMARY KEY, a int)',
      'CREATE INDEX dup_a_1 ON dup (a)',
      'CREATE INDEX dup_a_2 ON dup (a)',
      'CREATE TABLE pre (id int PRIMARY KEY, a int, b int)',
      'CREATE INDEX pre_a ON pre (a)',
      'CREATE INDEX pre_a_b ON pre (a, b)',
      // No primary key; foreign key without an index.
      'CREATE TABLE audit_log (msg text)',
      'CREATE TABLE owners (id int PRIMARY KEY)',
      'CREATE TABLE pets (id int PRIMARY KEY, owner_id int REFERENCES owners (id))',
      // Sequences at 95 % (integer) and 99.8 % (smallint).
      'CREATE TABLE tickets (id serial PRIMARY KEY)',
      "SELECT setval('tickets_id_seq', 2040109465)",
      'CREATE TABLE small (id smallserial PRIMARY KEY)',
      "SELECT setval('small_id_seq', 32700)",
      // A constraint added NOT VALID.
      'CREATE TABLE prices (id int PRIMARY KEY, amount int)',
      'INSERT INTO prices VALUES (1, -5)',
      'ALTER TABLE prices ADD CONSTRAINT prices_amount_positive CHECK (amount > 0) NOT VALID',
      // Dead rows autovacuum may not clean (it is off for the table).
      'CREATE TABLE churn (id int PRIMARY KEY) WITH (autovacuum_enabled = false)',
      'INSERT INTO churn SELECT generate_series(1, 50000)',
      'DELETE FROM churn WHERE id <= 30000',
      // Bloat: 80 % of the rows deleted evenly, vacuumed, analyzed.
      'CREATE TABLE bloated (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)',
      "INSERT INTO bloated SELECT g, repeat('x', 80) FROM generate_series(1, 200000) g",
      'DELETE FROM bloated WHERE id % 5 <> 0',
      'SELECT pg_stat_force_next_flush()',
      'VACUUM ANALYZE bloated',
    ];

    before(async () => {
      db = await freshDatabase('postgres');
      await exec(db.url, planted);
      // An invalid index: a unique CREATE INDEX CONCURRENTLY that fails on duplicates.
      await exec(db.url, [
        'CREATE TABLE inv (id int PRIMARY KEY, v int)',
        'INSERT INTO inv VALUES (1, 1), (2, 1)',
      ]);
      await assert.rejects(
        exec(db.url, ['CREATE UNIQUE INDEX CONCURRENTLY inv_v ON inv (v)']),
        /duplicate|could not create/i,
      );
      // Use events_note, and flush the statistics before the session ends.
      await exec(db.url, [
        'SET enable_seqscan = off',
        "SELECT * FROM events WHERE note = 'n5'",
        'SELECT pg_stat_force_next_flush()',
      ]);
      report = await runDoctor(db.url, { 'indexes.unusedMinBytes': 1, 'pg.bloatMinBytes': 1_000_000 });
    });
    after(async () => {
      await db?.cleanup();
    });

    it('collects everything without skipping', () => {
      assert.deepEqual(report.skipped, []);
    });

    it('indexes.unused: the never-scanned index, not the used one', () => {
      const f = the(report, 'indexes.unused', 'warning');
      assert.ok(
        f.evidence.some((e) => e.startsWith('events_kind on public.events')),
        f.evidence.join('\n'),
      );
      assert.ok(!f.evidence.some((e) => e.startsWith('events_note ')), 'events_note was used');
      assert.match(f.fix ?? '', /DROP INDEX CONCURRENTLY public\.events_kind;/);
    });

    it('indexes.duplicate: the duplicate and the redundant prefix', () => {
      const f = the(report, 'indexes.duplicate', 'warning');
      assert.ok(
        f.evidence.includes('dup_a_2 (a) on public.dup is covered by dup_a_1 (a)'),
        f.evidence.join('\n'),
      );
      assert.ok(
        f.evidence.includes('pre_a (a) on public.pre is covered by pre_a_b (a, b)'),
        f.evidence.join('\n'),
      );
      assert.equal(f.evidence.length, 2);
      assert.match(f.fix ?? '', /DROP INDEX CONCURRENTLY public\.dup_a_2;/);
    });

    it('indexes.invalid: the index a failed CREATE INDEX CONCURRENTLY left', () => {
      const f = the(report, 'indexes.invalid', 'warning');
      assert.deepEqual(f.evidence, ['inv_v on public.inv']);
      assert.match(f.fix ?? '', /^DROP INDEX CONCURRENTLY public\.inv_v;/);
    });

    it('tables.no-primary-key', () => {
      const f = the(report, 'tables.no-primary-key', 'warning');
      assert.deepEqual(f.evidence, ['public.audit_log']);
    });

    it('indexes.foreign-key-without-index, with a CREATE INDEX CONCURRENTLY fix', () => {
      const f = the(report, 'indexes.foreign-key-without-index', 'warning');
      assert.deepEqual(f.evidence, ['public.pets (owner_id) → public.owners [pets_owner_id_fkey]']);
      assert.equal(f.fix, 'CREATE INDEX CONCURRENTLY ON public.pets (owner_id);');
    });

    it('pg.sequence-overflow: 95 % is a warning, 99.8 % critical', () => {
      const warning = the(report, 'pg.sequence-overflow', 'warning');
      assert.deepEqual(warning.evidence, [
        'public.tickets_id_seq → public.tickets.id (integer): 2040109465 of 2147483647 (95.0 %)',
      ]);
      const critical = the(report, 'pg.sequence-overflow', 'critical');
      assert.match(
        critical.evidence[0] ?? '',
        /^public\.small_id_seq → public\.small\.id \(smallint\): 32700 of 32767/,
      );
      assert.match(critical.fix ?? '', /ALTER TABLE public\.small ALTER COLUMN id TYPE bigint;/);
    });

    it('pg.constraints-not-validated', () => {
      const f = the(report, 'pg.constraints-not-validated', 'warning');
      assert.deepEqual(f.evidence, ['check prices_amount_positive on public.prices']);
      assert.match(f.fix ?? '', /^ALTER TABLE public\.prices VALIDATE CONSTRAINT prices_amount_positive;/);
    });

    it('pg.dead-tuples: the table autovacuum does not clean', () => {
      const f = the(report, 'pg.dead-tuples', 'warning');
      assert.ok(
        f.evidence.some((e) => e.startsWith('public.churn: 30,000 dead vs 20,000 live rows')),
        f.evidence.join('\n'),
      );
      assert.ok(!f.evidence.some((e) => e.startsWith('public.bloated')), 'bloated was vacuumed');
    });

    it('pg.table-bloat and pg.index-bloat: the table with 80 % of its rows deleted, and its key', () => {
      const t = the(report, 'pg.table-bloat', 'warning');
      assert.match(t.evidence[0] ?? '', /^public\.bloated: /);
      assert.equal(t.evidence.length, 1);
      const i = the(report, 'pg.index-bloat', 'warning');
      assert.match(i.evidence[0] ?? '', /^public\.bloated_pkey on public\.bloated: /);
      assert.equal(i.fix, 'REINDEX INDEX CONCURRENTLY public.bloated_pkey;');
    });

    it('pg.largest and pg.stat-statements are info', () => {
      assert.match(the(report, 'pg.largest', 'info').title, /public\.bloated/);
      // The harness preloads pg_stat_statements but creates it only in the postgres database.
      assert.match(
        the(report, 'pg.stat-statements', 'info').fix ?? '',
        /^CREATE EXTENSION pg_stat_statements;/,
      );
    });

    describe('least privilege', () => {
      const suffix = randomBytes(4).toString('hex');
      const monitor = `dbward_mon_${suffix}`;
      const plain = `dbward_plain_${suffix}`;
      const password = randomBytes(12).toString('hex');

      before(async () => {
        await exec(adminUrl('postgres') as string, [
          `CREATE ROLE ${monitor} LOGIN PASSWORD '${password}'`,
          `GRANT pg_monitor TO ${monitor}`,
          `CREATE ROLE ${plain} LOGIN PASSWORD '${password}'`,
        ]);
        await exec(db.url, [`GRANT CONNECT ON DATABASE ${db.name} TO ${monitor}, ${plain}`]);
      });
      after(async () => {
        await exec(db.url, [`REVOKE CONNECT ON DATABASE ${db.name} FROM ${monitor}, ${plain}`]).catch(
          () => {},
        );
        await exec(adminUrl('postgres') as string, [
          `DROP ROLE IF EXISTS ${monitor}`,
          `DROP ROLE IF EXISTS ${plain}`,
        ]);
      });

      it('a pg_monitor login gets the report; the sequences it may not read are skipped with the GRANT', async () => {
        const r = await runDoctor(withCredentials(db.url, monitor, password), {
          'indexes.unusedMinBytes': 1,
        });
        assert.equal(r.error, undefined);
        assert.deepEqual(
          r.skipped.map((s) => s.id),
          ['pg.sequence-overflow'],
        );
        assert.equal(
          r.skipped[0]?.enableWith,
          `GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO ${monitor};`,
        );
        // What the catalogs and statistics show is all there.
        the(r, 'indexes.invalid', 'warning');
        the(r, 'indexes.duplicate', 'warning');
        the(r, 'indexes.unused', 'warning');
        the(r, 'pg.constraints-not-validated', 'warning');
        the(r, 'pg.dead-tuples', 'warning');
        the(r, 'activity.long-running', 'ok');
        // pg_stats hides the columns of tables it may not SELECT: bloat is not guessed.
        assert.equal(found(r, 'pg.table-bloat', 'warning').length, 0);
        assert.match(the(r, 'pg.table-bloat', 'info').evidence.join('\n'), /public\.bloated/);
      });

      it('a login without pg_monitor: session checks are skipped with GRANT pg_monitor', async () => {
        const r = await runDoctor(withCredentials(db.url, plain, password));
        assert.equal(r.error, undefined);
        for (const id of ['activity.long-running', 'activity.idle-in-transaction', 'activity.lock-waits']) {
          const s = r.skipped.find((x) => x.id === id);
          assert.equal(s?.enableWith, `GRANT pg_monitor TO ${plain};`, id);
        }
        the(r, 'connections.usage', 'ok');
        the(r, 'indexes.invalid', 'warning');
      });
    });
  });

  describe('sessions', () => {
    let db: TestDatabase;
    const clients: pg.Client[] = [];
    const session = async (): Promise<{ c: pg.Client; pid: number }> => {
      const c = await client(db.url);
      clients.push(c);
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      return { c, pid: rows[0]?.pid as number };
    };
    const state = async (pid: number): Promise<{ state: string | null; wait: string | null } | undefined> => {
      const c = await client(db.url);
      try {
        const { rows } = await c.query<{ state: string | null; wait: string | null }>(
          'SELECT state, wait_event_type AS wait FROM pg_stat_activity WHERE pid = $1',
          [pid],
        );
        return rows[0];
      } finally {
        await c.end();
      }
    };

    before(async () => {
      db = await freshDatabase('postgres');
      await exec(db.url, [
        'CREATE TABLE t (id int PRIMARY KEY, v int)',
        'INSERT INTO t VALUES (1, 1), (2, 2)',
      ]);
    });
    after(async () => {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await db?.cleanup();
    });

    it('activity.idle-in-transaction: warning past the threshold, critical past the critical one', async () => {
      const { c, pid } = await session();
      await c.query('BEGIN');
      await c.query('SELECT 1');
      await sleep(1200);
      const r = await runDoctor(db.url, { 'activity.idleInTransactionSeconds': 1 });
      const f = the(r, 'activity.idle-in-transaction', 'warning');
      assert.ok(
        f.evidence.some((e) => e.startsWith(`session ${pid} `)),
        f.evidence.join('\n'),
      );
      assert.match(f.fix ?? '', new RegExp(`SELECT pg_terminate_backend\\(${pid}\\);`));
      const r2 = await runDoctor(db.url, {
        'activity.idleInTransactionSeconds': 0.5,
        'activity.idleInTransactionCriticalSeconds': 1,
      });
      the(r2, 'activity.idle-in-transaction', 'critical');
      await c.query('ROLLBACK');
    });

    it('activity.lock-waits: an UPDATE waiting for a row lock, with its blocker', async () => {
      const holder = await session();
      const waiter = await session();
      await holder.c.query('BEGIN');
      await holder.c.query('UPDATE t SET v = 10 WHERE id = 1');
      const waiting = waiter.c.query('UPDATE t SET v = 20 WHERE id = 1');
      await until(async () => (await state(waiter.pid))?.wait === 'Lock', 'the UPDATE to wait for the lock');
      const r = await runDoctor(db.url, { 'activity.lockWaitSeconds': 0 });
      const f = the(r, 'activity.lock-waits', 'warning');
      assert.match(f.title, new RegExp(`blocked by session\\(s\\) ${holder.pid}$`));
      assert.match(
        f.evidence[0] ?? '',
        new RegExp(`^session ${waiter.pid} waits .* for ${holder.pid}: UPDATE t SET v = 20`),
      );
      assert.equal(f.fix, `SELECT pg_terminate_backend(${holder.pid});`);
      await holder.c.query('ROLLBACK');
      await waiting;
    });

    it('activity.long-running: a statement past the threshold, with pg_cancel_backend', async () => {
      const { c, pid } = await session();
      const sleeping = c.query('SELECT pg_sleep(60)').catch((err: Error) => err);
      await until(async () => (await state(pid))?.state === 'active', 'pg_sleep to start');
      await sleep(1200);
      const r = await runDoctor(db.url, { 'activity.longRunningSeconds': 1 });
      const f = the(r, 'activity.long-running', 'warning');
      assert.match(f.evidence[0] ?? '', new RegExp(`^session ${pid} .*SELECT pg_sleep\\(60\\)`));
      assert.equal(f.fix, `SELECT pg_cancel_backend(${pid});`);
      // Without the lowered threshold, a one-second statement is no finding.
      the(await runDoctor(db.url), 'activity.long-running', 'ok');
      await exec(db.url, [`SELECT pg_cancel_backend(${pid})`]);
      assert.match(String(await sleeping), /cancel/i);
    });
  });

  it('issues the same number of queries for 2 tables as for 62', async () => {
    const db = await freshDatabase('postgres');
    const target = targetFromInput(db.url);
    const handle = await open(target);
    try {
      const conn = handle.connection as SqlConnection;
      let count = 0;
      const counting = new Proxy(conn, {
        get(t, key) {
          if (key === 'withSession') {
            return <T>(fn: (s: SqlSession) => Promise<T>) =>
              t.withSession((s) =>
                fn({
                  query: (sql, params) => {
                    count++;
                    return s.query(sql, params);
                  },
                }),
              );
          }
          const value: unknown = Reflect.get(t, key);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
        },
      });
      const queries = async (): Promise<number> => {
        count = 0;
        const facts = await postgresDoctorFactsRole.collect(counting, {
          target,
          spec: postgresEngine.parseUrl(db.url),
          statementTimeoutMs: 5000,
          sampleKeys: 0,
          thresholds: resolveThresholds(),
        });
        assert.deepEqual(facts.skipped, []);
        return count;
      };
      const table = (i: number): string[] => [
        `CREATE TABLE p${i} (id serial PRIMARY KEY, name text UNIQUE)`,
        `CREATE TABLE c${i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, p_id int REFERENCES p${i} (id), note text)`,
        `CREATE INDEX ON c${i} (p_id, note)`,
      ];
      await exec(db.url, table(0));
      const few = await queries();
      await exec(db.url, Array.from({ length: 30 }, (_, i) => table(i + 10)).flat());
      assert.equal(await queries(), few);
    } finally {
      await handle.close();
      await db.cleanup();
    }
  });
});
