/**
 * `doctor` on real SQLite files: each scenario plants one problem with the driver directly (the
 * way an application or another tool would leave it) and asserts doctor reports it with the
 * right id and severity; a healthy database, freshly created, yields no warning or critical.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type BetterSqlite3 from 'better-sqlite3';
import { targetFromInput } from '../../src/config/load-config.js';
import { open } from '../../src/connect/open.js';
import type { DoctorReport, Finding } from '../../src/doctor/finding.js';
import { doctor, type DoctorOptions } from '../../src/doctor/run-doctor.js';
import { createDemoDatabase } from '../../src/demo/create-demo-database.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { sqliteDoctorFactsRole } from '../../src/engines/sqlite/sqlite-doctor-facts.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { sqliteEngine } from '../../src/engines/sqlite/sqlite-engine.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';

const { Database: Driver } = await loadSqliteDriver();

/** Run doctor on `url` through the public API (open + doctor), closing the handle after. */
async function examine(url: string, options: DoctorOptions = {}, config: Record<string, number> = {}) {
  const target = targetFromInput(url);
  if (Object.keys(config).length > 0) target.doctor = { thresholds: config };
  const db = await open(target);
  try {
    return await doctor(db, target, options);
  } finally {
    await db.close();
  }
}

const problems = (report: DoctorReport): Finding[] =>
  report.findings.filter((f) => f.severity === 'warning' || f.severity === 'critical');

function only(report: DoctorReport, id: string): Finding {
  const found = report.findings.filter((f) => f.id === id);
  assert.equal(
    found.length,
    1,
    `expected one ${id} finding, got ${JSON.stringify(report.findings, null, 2)}`,
  );
  return found[0] as Finding;
}

const describeLine = (report: DoctorReport): string =>
  report.findings.map((f) => `${f.severity} ${f.id}: ${f.title}`).join('\n');

/** Plant with the driver itself: no dbward pragmas (foreign_keys stays as the test sets it). */
function withFile(file: string, fn: (db: BetterSqlite3.Database) => void): void {
  const db = new Driver(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

const fill = (table: string, rows: number, expr = `hex(randomblob(16))`): string =>
  `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows})
   INSERT INTO ${table} SELECT i, ${expr} FROM n;`;

// A database nothing is wrong with: keys everywhere, foreign keys indexed, statistics gathered.
const healthySchema = `
  CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
  CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    note TEXT
  );
  CREATE INDEX orders_customer_idx ON orders (customer_id);
  CREATE TABLE tags (name TEXT PRIMARY KEY, customer_id INTEGER REFERENCES customers) WITHOUT ROWID;
  CREATE INDEX tags_customer_idx ON tags (customer_id);
  ${fill('customers', 3000, `'c' || i || '@example.com'`)}
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
    INSERT INTO orders SELECT i, 1 + i % 3000, 'note' FROM n;
  ANALYZE;
`;

describe('sqlite doctor (scenarios on real files)', { skip: skipReason('sqlite') }, () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase('sqlite');
  });
  after(async () => {
    await db?.cleanup();
  });

  /** A new database file per scenario, in the fresh database's directory. */
  let counter = 0;
  const newFile = (): string => path.join(path.dirname(db.name), `scenario-${++counter}.db`);

  it('a healthy database created by dbward (?mode=rwc: WAL) gets no warnings or criticals', async () => {
    const file = newFile();
    // dbward creates it (and turns WAL on), then the schema is applied through dbward.
    const handle = await open(`sqlite:${file}?mode=rwc`);
    if (handle.kind !== 'sql') throw new Error('expected SQL');
    await handle.query(healthySchema);
    await handle.close();

    const report = await examine(`sqlite:${file}`);
    assert.deepEqual(problems(report), [], describeLine(report));
    assert.equal(report.engine, 'sqlite');
    assert.match(report.serverVersion ?? '', /^3\.\d+/);
    for (const id of [
      'sqlite.integrity',
      'sqlite.foreign-key-violations',
      'sqlite.journal-mode',
      'sqlite.free-pages',
      'sqlite.statistics',
      'sqlite.wal-size',
      'sqlite.foreign-keys-pragma',
      'tables.no-primary-key',
      'indexes.duplicate',
      'indexes.foreign-key-without-index',
    ]) {
      assert.equal(only(report, id).severity, 'ok', `${id}\n${describeLine(report)}`);
    }
    assert.ok(!report.findings.some((f) => f.severity === 'info'), describeLine(report));
    // No server: none of the server-side checks apply.
    for (const id of ['server.uptime', 'server.version', 'connections.usage', 'activity.long-running']) {
      assert.ok(!report.findings.some((f) => f.id === id), id);
    }
  });

  it('an empty database from freshDatabase() is healthy apart from the journal-mode info', async () => {
    const report = await examine((await freshDatabase('sqlite')).url);
    assert.deepEqual(problems(report), [], describeLine(report));
    const journal = only(report, 'sqlite.journal-mode');
    assert.equal(journal.severity, 'info');
    assert.match(journal.fix ?? '', /PRAGMA journal_mode = WAL;/);
  });

  it('a corrupted table page → sqlite.integrity critical, not a crash', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.pragma('journal_mode = DELETE');
      d.exec(`CREATE TABLE payload (id INTEGER PRIMARY KEY, body TEXT);
              CREATE INDEX payload_body_idx ON payload (body);
              ${fill('payload', 2000, `hex(randomblob(100))`)}`);
    });
    // Overwrite the middle of a leaf page of the table b-tree: find one through dbstat first.
    let pageNo = 0;
    let pageSize = 0;
    withFile(file, (d) => {
      pageSize = d.pragma('page_size', { simple: true }) as number;
      const row = d
        .prepare(
          `SELECT pageno FROM dbstat WHERE name = 'payload' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 5`,
        )
        .get() as { pageno: number };
      pageNo = row.pageno;
    });
    const fd = openSync(file, 'r+');
    try {
      const offset = (pageNo - 1) * pageSize;
      const header = Buffer.alloc(16);
      readSync(fd, header, 0, 16, offset);
      assert.equal(header[0], 0x0d, 'a table leaf page');
      // Keep the page header, trash its cell pointers and cells.
      writeSync(fd, Buffer.alloc(pageSize - 64, 0xa5), 0, pageSize - 64, offset + 8);
    } finally {
      closeSync(fd);
    }

    const report = await examine(`sqlite:${file}`);
    const integrity = only(report, 'sqlite.integrity');
    assert.equal(integrity.severity, 'critical');
    assert.equal(report.findings[0]?.id, 'sqlite.integrity', 'worst first');
    assert.ok(
      integrity.evidence.some((e) => /integrity_check/.test(e)),
      integrity.evidence.join('\n'),
    );
    assert.match(integrity.fix ?? '', /\.recover/);
    assert.match(integrity.fix ?? '', /backup/);
    // The damaged b-tree is named, and the catalog checks still ran.
    assert.ok(
      integrity.evidence.some((e) => /^Tree \d+ \(payload\) page \d+/.test(e)),
      integrity.evidence.join('\n'),
    );
    assert.equal(only(report, 'indexes.duplicate').severity, 'ok');
    // The whole-file reads did not run over the damage, and say so.
    assert.ok(report.skipped.length === 0 || report.skipped.every((s) => /corrupt/.test(s.reason)));
  });

  it('a damaged schema page (header intact) → sqlite.integrity critical, nothing else', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.pragma('journal_mode = DELETE');
      d.exec('CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY);');
    });
    // Page 1: the 100-byte file header, then sqlite_schema's b-tree page header and cells.
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(2000, 0xa5), 0, 2000, 108);
    closeSync(fd);

    const report = await examine(`sqlite:${file}`);
    const integrity = only(report, 'sqlite.integrity');
    assert.equal(integrity.severity, 'critical');
    assert.match(integrity.title, /schema cannot be read/);
    assert.deepEqual(
      problems(report).map((f) => f.id),
      ['sqlite.integrity'],
    );
    assert.ok(report.skipped.some((s) => s.id === 'sqlite.statistics'));
  });

  it('a corrupted file above the integrity_check limit still gets quick_check → critical', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(
        `CREATE TABLE payload (id INTEGER PRIMARY KEY, body TEXT); ${fill('payload', 2000, `hex(randomblob(100))`)}`,
      );
    });
    let pageNo = 0;
    let pageSize = 0;
    withFile(file, (d) => {
      pageSize = d.pragma('page_size', { simple: true }) as number;
      pageNo = (
        d
          .prepare(`SELECT pageno FROM dbstat WHERE name = 'payload' AND pagetype = 'leaf' LIMIT 1 OFFSET 3`)
          .get() as {
          pageno: number;
        }
      ).pageno;
    });
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(pageSize - 64, 0x5a), 0, pageSize - 64, (pageNo - 1) * pageSize + 8);
    closeSync(fd);

    const report = await examine(`sqlite:${file}`, {}, { 'sqlite.integrityCheckMaxBytes': 1000 });
    const integrity = only(report, 'sqlite.integrity');
    assert.equal(integrity.severity, 'critical');
    assert.ok(
      integrity.evidence.some((e) => /quick_check/.test(e)),
      integrity.evidence.join('\n'),
    );
    assert.ok(
      integrity.evidence.some((e) => /integrity_check did not run/.test(e)),
      integrity.evidence.join('\n'),
    );
  });

  it('orphan rows written with foreign_keys off → sqlite.foreign-key-violations warning', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.pragma('foreign_keys = OFF');
      d.exec(`CREATE TABLE parents (id INTEGER PRIMARY KEY);
              CREATE TABLE children (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parents (id));
              CREATE INDEX children_parent_idx ON children (parent_id);
              INSERT INTO parents VALUES (1);
              INSERT INTO children VALUES (1, 1), (2, 7), (3, 8), (4, NULL);`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'sqlite.foreign-key-violations');
    assert.equal(found.severity, 'warning');
    assert.deepEqual(found.evidence, ['children → parents: 2 orphan row(s)']);
    assert.match(found.fix ?? '', /pragma_foreign_key_check\('children'\)/);

    // The listing query in the fix really lists the orphans.
    withFile(file, (d) => {
      const listed = d.prepare(`SELECT * FROM pragma_foreign_key_check('children')`).all();
      assert.equal(listed.length, 2);
    });
  });

  it('a foreign key to non-key parent columns → sqlite.foreign-key-violations warning (mismatch)', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.pragma('foreign_keys = OFF');
      d.exec(`CREATE TABLE parents (id INTEGER PRIMARY KEY, code TEXT);
              CREATE TABLE children (id INTEGER PRIMARY KEY, code TEXT REFERENCES parents (code));
              CREATE INDEX children_code_idx ON children (code);`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'sqlite.foreign-key-violations');
    assert.equal(found.severity, 'warning');
    assert.match(found.title, /not a key of parents/);
    assert.match(found.evidence[0] ?? '', /foreign key mismatch - "children" referencing "parents"/);
    // The suggested unique index (with the columns filled in) makes the check run again.
    withFile(file, (d) => d.exec('CREATE UNIQUE INDEX parents_key ON parents (code)'));
    assert.equal(only(await examine(`sqlite:${file}`), 'sqlite.foreign-key-violations').severity, 'ok');
  });

  it('a duplicate index and a redundant prefix index → indexes.duplicate warning', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, at TEXT, body TEXT);
              CREATE INDEX events_kind_at ON events (kind, at);
              CREATE INDEX events_kind_at_copy ON events (kind, at);
              CREATE INDEX events_kind ON events (kind);
              CREATE INDEX events_at_id ON events (at, id);
              CREATE INDEX events_at ON events (at);
              CREATE INDEX events_lower_body ON events (lower(body));
              CREATE INDEX events_body_nocase ON events (body COLLATE NOCASE);
              CREATE INDEX events_body ON events (body);`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'indexes.duplicate');
    assert.equal(found.severity, 'warning');
    const evidence = found.evidence.join('\n');
    assert.match(evidence, /events_kind_at_copy \(kind, at\) on events is covered by events_kind_at/);
    assert.match(evidence, /events_kind \(kind\) on events is covered by events_kind_at/);
    // (at, id) holds nothing more than (at): SQLite appends the rowid, and id is the rowid.
    assert.match(evidence, /events_at(_id)? \(at(, id)?\) on events is covered by events_at/);
    // An expression index and a NOCASE index are different keys from the plain column.
    assert.doesNotMatch(evidence, /lower|nocase|events_body/i);
    assert.equal(found.fix?.split('\n').length, 3, found.fix ?? '');
    assert.match(found.fix ?? '', /^DROP INDEX "events_kind_at_copy";$/m);
  });

  it('a table without a declared primary key → tables.no-primary-key warning', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(`CREATE TABLE audit_log (at TEXT, message TEXT);
              CREATE TABLE keyed (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
              INSERT INTO audit_log VALUES ('now', 'x');`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'tables.no-primary-key');
    assert.equal(found.severity, 'warning');
    assert.equal(found.evidence.length, 1);
    assert.match(found.evidence[0] ?? '', /^audit_log \(~1 rows\)$/);
  });

  it('a foreign key without an index → indexes.foreign-key-without-index warning with CREATE INDEX', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(`CREATE TABLE authors (id INTEGER PRIMARY KEY);
              CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES authors (id),
                                  editor_id INTEGER REFERENCES authors (id));
              CREATE INDEX books_editor_idx ON books (editor_id, id);`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'indexes.foreign-key-without-index');
    assert.equal(found.severity, 'warning');
    assert.equal(found.evidence.length, 1, found.evidence.join('\n'));
    assert.match(found.evidence[0] ?? '', /^books \(author_id\) → authors/);
    assert.equal(found.fix, 'CREATE INDEX "books_author_id_idx" ON "books" ("author_id");');
    // The fix is valid SQL that makes the finding go away.
    withFile(file, (d) => d.exec(found.fix ?? ''));
    assert.equal(only(await examine(`sqlite:${file}`), 'indexes.foreign-key-without-index').severity, 'ok');
  });

  it('a big table dropped without VACUUM → sqlite.free-pages warning', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(`CREATE TABLE keep (id INTEGER PRIMARY KEY, v TEXT);
              INSERT INTO keep VALUES (1, 'x');
              CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);
              ${fill('big', 20000, `hex(randomblob(100))`)}
              DROP TABLE big;`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'sqlite.free-pages');
    assert.equal(found.severity, 'warning');
    assert.match(found.title, /of the file is free pages/);
    assert.match(found.fix ?? '', /^VACUUM;/);
    // The fix works: after VACUUM the check passes.
    withFile(file, (d) => d.exec('VACUUM'));
    assert.equal(only(await examine(`sqlite:${file}`), 'sqlite.free-pages').severity, 'ok');
  });

  it('an indexed table with many rows and no ANALYZE → sqlite.statistics info', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(`CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor TEXT);
              CREATE INDEX readings_sensor_idx ON readings (sensor);
              ${fill('readings', 5000, `'s' || (i % 50)`)}`);
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'sqlite.statistics');
    assert.equal(found.severity, 'info');
    assert.deepEqual(found.evidence, ['readings: 5,000 rows, 1 index(es), not in sqlite_stat1']);
    assert.match(found.fix ?? '', /PRAGMA optimize;/);
    // Above the warning threshold (lowered here), the same gap is a warning.
    const strict = await examine(`sqlite:${file}`, { thresholds: { 'sqlite.statsWarnRows': 4000 } });
    assert.equal(only(strict, 'sqlite.statistics').severity, 'warning');
    // The fix works.
    withFile(file, (d) => d.exec('PRAGMA optimize; ANALYZE;'));
    assert.equal(only(await examine(`sqlite:${file}`), 'sqlite.statistics').severity, 'ok');
  });

  it('without dbstat (file above sqlite.scanMaxBytes) row counts are estimated from max(rowid)', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.exec(`CREATE TABLE readings (id INTEGER PRIMARY KEY, sensor TEXT);
              CREATE INDEX readings_sensor_idx ON readings (sensor);
              ${fill('readings', 3000, `'s' || (i % 50)`)}`);
    });
    const report = await examine(`sqlite:${file}`, {}, { 'sqlite.scanMaxBytes': 1000 });
    assert.deepEqual(only(report, 'sqlite.statistics').evidence, [
      'readings: ~3,000 rows, 1 index(es), not in sqlite_stat1',
    ]);
    const skipped = report.skipped.find((s) => s.id === 'sqlite.foreign-key-violations');
    assert.equal(skipped, undefined, 'no foreign keys: nothing to skip');
  });

  it('a database in rollback-journal mode → sqlite.journal-mode info', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.pragma('journal_mode = DELETE');
      d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    });
    const report = await examine(`sqlite:${file}`);
    const found = only(report, 'sqlite.journal-mode');
    assert.equal(found.severity, 'info');
    assert.deepEqual(found.evidence, ['journal_mode = delete']);
    assert.deepEqual(problems(report), [], describeLine(report));
  });

  it('a -wal file over the limit (checkpoints off) → sqlite.wal-size warning', async () => {
    const file = newFile();
    // The test's own connection stays open with automatic checkpoints off, so the log grows.
    const writer = new Driver(file);
    try {
      writer.pragma('journal_mode = WAL');
      writer.pragma('wal_autocheckpoint = 0');
      writer.exec(
        `CREATE TABLE log (id INTEGER PRIMARY KEY, body TEXT); ${fill('log', 5000, `hex(randomblob(200))`)}`,
      );
      const report = await examine(`sqlite:${file}`, { thresholds: { 'sqlite.walMaxBytes': 1_000_000 } });
      const found = only(report, 'sqlite.wal-size');
      assert.equal(found.severity, 'warning');
      assert.match(found.fix ?? '', /PRAGMA wal_checkpoint\(TRUNCATE\);/);
      assert.match(found.why, /long-lived reader/);
      // At the default limit (64 MB) the same log is fine.
      assert.equal(only(await examine(`sqlite:${file}`), 'sqlite.wal-size').severity, 'ok');
    } finally {
      writer.close();
    }
  });

  it('the dbward demo database: only the intended foreign-key-without-index warning', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-doctor-demo-'));
    try {
      const demo = await createDemoDatabase(path.join(dir, 'demo.db'));
      const report = await examine(demo.url);
      assert.deepEqual(
        problems(report).map((f) => `${f.severity} ${f.id}: ${f.evidence.join('; ')}`),
        ['warning indexes.foreign-key-without-index: order_items (product_id) → products [fk0]'],
        describeLine(report),
      );
      // A few hundred seeded rows: below the statistics threshold, so not even an info.
      assert.deepEqual(
        report.findings.filter((f) => f.severity === 'info').map((f) => f.id),
        [],
        describeLine(report),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the number of statements does not grow with the number of tables', async () => {
    /** Statements the collector sends for a database with `n` indexed tables. */
    async function statementsFor(n: number): Promise<number> {
      const file = newFile();
      withFile(file, (d) => {
        d.exec('BEGIN');
        for (let i = 0; i < n; i++) {
          d.exec(`CREATE TABLE t${i} (id INTEGER PRIMARY KEY, p INTEGER REFERENCES t0 (id), v TEXT);
                  CREATE INDEX t${i}_p ON t${i} (p); CREATE INDEX t${i}_v ON t${i} (lower(v)) WHERE v IS NOT NULL;`);
        }
        d.exec('COMMIT');
      });
      const target = targetFromInput(`sqlite:${file}`);
      const handle = await open(target);
      try {
        const conn = handle.connection as SqlConnection;
        let count = 0;
        const counting = Object.create(conn) as SqlConnection;
        counting.withSession = (fn) =>
          conn.withSession((session) =>
            fn({
              query: (sql, params) => {
                count++;
                return session.query(sql, params);
              },
            }),
          );
        const facts = await sqliteDoctorFactsRole.collect(counting, {
          target,
          spec: sqliteEngine.parseUrl(target.url),
          statementTimeoutMs: 5_000,
          sampleKeys: 0,
          thresholds: resolveThresholds(),
        });
        assert.equal(facts.indexes?.length, 2 * n);
        assert.equal(facts.foreignKeys?.length, n);
        return count;
      } finally {
        await handle.close();
      }
    }
    const few = await statementsFor(3);
    assert.equal(await statementsFor(300), few);
    assert.ok(few <= 10, `${few} statements`);
  });

  it('reads only: the file is byte-for-byte the same after doctor', async () => {
    const file = newFile();
    withFile(file, (d) => {
      d.pragma('journal_mode = DELETE');
      d.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); ${fill('t', 100)}`);
    });
    const { readFileSync } = await import('node:fs');
    const before = readFileSync(file);
    await examine(`sqlite:${file}`);
    assert.ok(before.equals(readFileSync(file)));
  });
});
