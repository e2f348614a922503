/**
 * The SQLite doctor rules, judged from hand-written facts (no database): each problem is found
 * with the right severity and fix, thresholds move the lines, and healthy facts give only `ok`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DoctorFacts, IndexFact } from '../../src/doctor/facts.js';
import type { SqliteFacts } from '../../src/doctor/facts/sqlite-facts.js';
import type { Finding } from '../../src/doctor/finding.js';
import { sqliteCollectorLimits, sqliteRules, sqliteThresholds } from '../../src/doctor/rules/sqlite-rules.js';
import { allRules, judge } from '../../src/doctor/run-doctor.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';
import { sqliteDoctorFixes } from '../../src/engines/sqlite/sqlite-doctor-facts.js';

const sqlite = (extra: Partial<SqliteFacts> = {}): SqliteFacts => ({
  file: '/srv/app.db',
  pageSize: 4096,
  pageCount: 10_000,
  freelistCount: 12,
  autoVacuum: 'none',
  journalMode: 'wal',
  foreignKeysEnforced: true,
  integrity: { check: 'integrity_check', fullCheckSkipped: null, errors: [] },
  foreignKeyViolations: [],
  walBytes: 4_000_000,
  statistics: [{ table: 'orders', indexes: 2, rows: 50_000, rowsEstimated: false, analyzedRows: 48_000 }],
  ...extra,
});

const index = (name: string, columns: string[], extra: Partial<IndexFact> = {}): IndexFact => ({
  table: 'orders',
  name,
  columns,
  method: 'btree',
  unique: false,
  primary: false,
  predicate: null,
  valid: true,
  scans: null,
  sizeBytes: 40_960,
  constraint: null,
  implicitSuffix: ['id'],
  ...extra,
});

const healthy = (extra: Partial<SqliteFacts> = {}): DoctorFacts => ({
  server: { engine: 'sqlite', version: '3.53.2' },
  tables: [{ name: 'orders', hasPrimaryKey: true, rows: 50_000, totalBytes: 5_000_000 }],
  indexes: [index('orders_customer_idx', ['customer_id']), index('orders_at_idx', ['placed_at'])],
  foreignKeys: [{ table: 'orders', name: 'fk0', columns: ['customer_id'], referencedTable: 'customers' }],
  sqlite: sqlite(extra),
  skipped: [],
});

function run(facts: DoctorFacts, overrides: Record<string, number> = {}): Finding[] {
  return judge(facts, allRules, { thresholds: resolveThresholds(overrides), fixes: sqliteDoctorFixes })
    .findings;
}

function one(findings: Finding[], id: string): Finding {
  const found = findings.filter((f) => f.id === id);
  assert.equal(found.length, 1, `expected one ${id}: ${JSON.stringify(findings, null, 2)}`);
  return found[0] as Finding;
}

describe('sqlite doctor rules', () => {
  it('healthy facts: every check ok, nothing to report', () => {
    const findings = run(healthy());
    assert.deepEqual(
      findings.filter((f) => f.severity !== 'ok'),
      [],
    );
    for (const rule of sqliteRules) assert.equal(one(findings, rule.id).severity, 'ok', rule.id);
    // Embedded: no server-side checks (no uptime, no end of life, no sessions, no scan counters).
    for (const id of [
      'server.version',
      'server.uptime',
      'connections.usage',
      'activity.long-running',
      'indexes.unused',
    ]) {
      assert.ok(!findings.some((f) => f.id === id), id);
    }
  });

  it('thresholds are documented defaults with the sqlite. prefix', () => {
    for (const key of Object.keys(sqliteThresholds)) assert.match(key, /^sqlite\.[a-zA-Z]+$/);
    assert.equal(resolveThresholds()['sqlite.walMaxBytes'], 64 * 1024 * 1024);
    assert.deepEqual(sqliteCollectorLimits(undefined), {
      integrityCheckMaxBytes: 1024 ** 3,
      scanMaxBytes: 1024 ** 3,
    });
    assert.equal(sqliteCollectorLimits({ 'sqlite.scanMaxBytes': 5 }).scanMaxBytes, 5);
  });

  describe('sqlite.integrity', () => {
    it('errors from integrity_check → critical with the messages, a backup/.recover fix', () => {
      const f = one(
        run(
          healthy({
            integrity: {
              check: 'integrity_check',
              fullCheckSkipped: null,
              errors: ['Tree 3 (t) page 16: bad'],
            },
          }),
        ),
        'sqlite.integrity',
      );
      assert.equal(f.severity, 'critical');
      assert.match(f.title, /integrity_check reports a problem/);
      assert.ok(f.evidence.includes('Tree 3 (t) page 16: bad'));
      assert.ok(f.evidence.includes('file: /srv/app.db'));
      assert.match(f.fix ?? '', /backup/);
      assert.match(f.fix ?? '', /sqlite3 '\/srv\/app\.db' "\.recover" \| sqlite3 '\/srv\/app-recovered\.db'/);
    });

    it('quick_check only (large file): says so in the evidence', () => {
      const f = one(
        run(
          healthy({
            integrity: { check: 'quick_check', fullCheckSkipped: 'file too large', errors: ['a', 'b'] },
          }),
        ),
        'sqlite.integrity',
      );
      assert.equal(f.severity, 'critical');
      assert.match(f.title, /quick_check reports 2 problems/);
      assert.ok(f.evidence.some((e) => /integrity_check did not run: file too large/.test(e)));
    });

    it('an unreadable schema → critical, worded as such', () => {
      const f = one(
        run(
          healthy({
            integrity: { check: 'none', fullCheckSkipped: null, errors: ['reading the schema: malformed'] },
          }),
        ),
        'sqlite.integrity',
      );
      assert.equal(f.severity, 'critical');
      assert.match(f.title, /schema cannot be read/);
    });

    it('comes first in the report', () => {
      const findings = run(
        healthy({
          integrity: { check: 'integrity_check', fullCheckSkipped: null, errors: ['x'] },
          journalMode: 'delete',
          freelistCount: 9_000,
        }),
      );
      assert.equal(findings[0]?.id, 'sqlite.integrity');
    });
  });

  describe('sqlite.foreign-key-violations', () => {
    it('orphans → warning per child table, with the listing query and a rowid delete', () => {
      const f = one(
        run(
          healthy({
            foreignKeyViolations: [
              { table: 'order_items', parent: 'orders', rows: 1234, hasRowid: true },
              { table: "it's", parent: 'orders', rows: 1, hasRowid: false },
            ],
          }),
        ),
        'sqlite.foreign-key-violations',
      );
      assert.equal(f.severity, 'warning');
      assert.match(f.title, /^1,235 row\(s\) in 2 table\(s\)/);
      assert.deepEqual(f.evidence, [
        'order_items → orders: 1,234 orphan row(s)',
        "it's → orders: 1 orphan row(s)",
      ]);
      assert.match(f.fix ?? '', /SELECT \* FROM pragma_foreign_key_check\('order_items'\);/);
      assert.match(
        f.fix ?? '',
        /DELETE FROM "order_items" WHERE rowid IN \(SELECT rowid FROM pragma_foreign_key_check\('order_items'\) WHERE parent = 'orders'\);/,
      );
      assert.match(f.fix ?? '', /pragma_foreign_key_check\('it''s'\)/);
      assert.match(f.fix ?? '', /WITHOUT ROWID/);
    });

    it('a foreign key to non-key columns (check cannot run) → warning naming the parent', () => {
      const f = one(
        run(
          healthy({
            foreignKeyViolations: [],
            foreignKeyMismatch: 'foreign key mismatch - "c2" referencing "p"',
          }),
        ),
        'sqlite.foreign-key-violations',
      );
      assert.equal(f.severity, 'warning');
      assert.match(f.title, /not a key of p$/);
      assert.match(f.fix ?? '', /CREATE UNIQUE INDEX "p_key" ON "p"/);
    });

    it('not checked (null) → the rule does not run', () => {
      assert.ok(
        !run(healthy({ foreignKeyViolations: null })).some((f) => f.id === 'sqlite.foreign-key-violations'),
      );
    });
  });

  describe('sqlite.foreign-keys-pragma', () => {
    it('declared foreign keys, enforcement off on the connection → info', () => {
      const f = one(run(healthy({ foreignKeysEnforced: false })), 'sqlite.foreign-keys-pragma');
      assert.equal(f.severity, 'info');
      assert.match(f.fix ?? '', /PRAGMA foreign_keys = ON;/);
    });

    it('no foreign keys declared → does not apply', () => {
      const facts = { ...healthy({ foreignKeysEnforced: false }), foreignKeys: [] };
      assert.ok(!run(facts).some((f) => f.id === 'sqlite.foreign-keys-pragma'));
    });
  });

  describe('sqlite.journal-mode', () => {
    it('delete → info with PRAGMA journal_mode = WAL', () => {
      const f = one(run(healthy({ journalMode: 'delete' })), 'sqlite.journal-mode');
      assert.equal(f.severity, 'info');
      assert.equal(f.fix, 'PRAGMA journal_mode = WAL;  -- stored in the file: once is enough');
    });

    it('an in-memory database → does not apply', () => {
      const findings = run(healthy({ file: null, journalMode: 'memory' }));
      assert.ok(!findings.some((f) => f.id === 'sqlite.journal-mode' || f.id === 'sqlite.wal-size'));
    });
  });

  describe('sqlite.free-pages', () => {
    it('above the share and the minimum size → warning with VACUUM', () => {
      const f = one(run(healthy({ freelistCount: 3_000 })), 'sqlite.free-pages');
      assert.equal(f.severity, 'warning');
      assert.equal(f.title, '30.0 % of the file is free pages (12 MB)');
      assert.match(f.fix ?? '', /^VACUUM;.*free disk space/);
    });

    it('incremental auto_vacuum → PRAGMA incremental_vacuum instead', () => {
      const f = one(run(healthy({ freelistCount: 3_000, autoVacuum: 'incremental' })), 'sqlite.free-pages');
      assert.match(f.fix ?? '', /^PRAGMA incremental_vacuum;/);
    });

    it('a high share of a small file, or a small share, is fine', () => {
      // 90 % free, but only 90 pages × 4 kB = 360 kB: below sqlite.freeMinBytes.
      assert.equal(
        one(run(healthy({ pageCount: 100, freelistCount: 90 })), 'sqlite.free-pages').severity,
        'ok',
      );
      assert.equal(one(run(healthy({ freelistCount: 1_900 })), 'sqlite.free-pages').severity, 'ok');
      // …unless the thresholds say otherwise.
      assert.equal(
        one(run(healthy({ freelistCount: 1_900 }), { 'sqlite.freePagesPercent': 10 }), 'sqlite.free-pages')
          .severity,
        'warning',
      );
    });
  });

  describe('sqlite.statistics', () => {
    const stats = (rows: number, analyzedRows: number | null, rowsEstimated = false) =>
      healthy({ statistics: [{ table: 'events', indexes: 3, rows, rowsEstimated, analyzedRows }] });

    it('an indexed table without sqlite_stat1 rows → info, warning when large', () => {
      const small = one(run(stats(5_000, null)), 'sqlite.statistics');
      assert.equal(small.severity, 'info');
      assert.deepEqual(small.evidence, ['events: 5,000 rows, 3 index(es), not in sqlite_stat1']);
      assert.match(small.fix ?? '', /^PRAGMA optimize;/);
      const big = one(run(stats(2_000_000, null, true)), 'sqlite.statistics');
      assert.equal(big.severity, 'warning');
      assert.deepEqual(big.evidence, ['events: ~2,000,000 rows, 3 index(es), not in sqlite_stat1']);
    });

    it('few rows, or unknown rows → nothing to say', () => {
      assert.equal(one(run(stats(999, null)), 'sqlite.statistics').severity, 'ok');
      const unknown = healthy({
        statistics: [{ table: 'events', indexes: 1, rows: null, rowsEstimated: false, analyzedRows: null }],
      });
      assert.equal(one(run(unknown), 'sqlite.statistics').severity, 'ok');
    });

    it('a table grown far past its statistics → info (stale)', () => {
      const f = one(run(stats(200_000, 1_000)), 'sqlite.statistics');
      assert.equal(f.severity, 'info');
      assert.match(f.title, /grown far past/);
      assert.deepEqual(f.evidence, ['events: 200,000 rows now, 1,000 when last analyzed']);
      assert.equal(one(run(stats(9_000, 1_000)), 'sqlite.statistics').severity, 'ok');
    });
  });

  describe('sqlite.wal-size', () => {
    it('a -wal file over the limit → warning with a TRUNCATE checkpoint', () => {
      const f = one(run(healthy({ walBytes: 300_000_000 })), 'sqlite.wal-size');
      assert.equal(f.severity, 'warning');
      assert.equal(f.title, 'The write-ahead log is 286 MB');
      assert.ok(f.evidence.includes('/srv/app.db-wal: 286 MB'));
      assert.match(f.fix ?? '', /^PRAGMA wal_checkpoint\(TRUNCATE\);/);
    });

    it('no -wal file, or not in WAL mode → ok / does not apply', () => {
      assert.equal(one(run(healthy({ walBytes: null })), 'sqlite.wal-size').severity, 'ok');
      assert.ok(
        !run(healthy({ journalMode: 'delete', walBytes: 1e9 })).some((f) => f.id === 'sqlite.wal-size'),
      );
    });
  });

  describe('shared rules on SQLite facts', () => {
    it('(a, id) is redundant next to (a) when id is the rowid SQLite appends to every index', () => {
      const facts = healthy();
      facts.indexes = [index('orders_a', ['a']), index('orders_a_id', ['a', 'id'])];
      const f = one(run(facts), 'indexes.duplicate');
      assert.equal(f.severity, 'warning');
      assert.equal(f.fix, 'DROP INDEX "orders_a_id";');
    });

    it('fixes in SQLite dialect', () => {
      assert.equal(
        sqliteDoctorFixes.createIndexFor({
          table: 'order "items"',
          name: 'fk0',
          columns: ['a', 'b'],
          referencedTable: 'x',
        }),
        'CREATE INDEX "order ""items""_a_b_idx" ON "order ""items""" ("a", "b");',
      );
      assert.equal(sqliteDoctorFixes.dropIndex(index('i', ['a'])), 'DROP INDEX "i";');
      const session = { id: 1, user: null, application: null, client: null, seconds: 1, query: null };
      assert.match(sqliteDoctorFixes.cancel(session), /^-- SQLite has no server sessions/);
      assert.match(sqliteDoctorFixes.terminate(session), /^-- SQLite has no server sessions/);
    });

    it('a skipped check is reported as skipped, not ok', () => {
      const facts = healthy();
      facts.skipped = [{ id: 'sqlite.foreign-key-violations', reason: 'file too large' }];
      const { findings, skipped } = judge(facts, allRules, {
        thresholds: resolveThresholds(),
        fixes: sqliteDoctorFixes,
      });
      assert.ok(!findings.some((f) => f.id === 'sqlite.foreign-key-violations'));
      assert.deepEqual(skipped, facts.skipped);
    });
  });
});
