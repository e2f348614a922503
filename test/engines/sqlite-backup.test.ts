/**
 * The SQLite backup role on real files: a dump taken while another handle writes is one
 * consistent snapshot; a dump loads back with the same counts and data; a damaged source or
 * backup fails with E_BACKUP_* rather than a crash; restore replaces an existing (open) file's
 * contents, and creates a target that does not exist yet.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { DbwardError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { BackupContext, BackupRole, DumpOutcome, LoadContext } from '../../src/engines/backup-role.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { sqliteEngine } from '../../src/engines/sqlite/sqlite-engine.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

const { Database } = await loadSqliteDriver();

let dir: string;
let role: BackupRole;
// Connections a test opened, closed after it.
const opened: SqlConnection[] = [];

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dbward-sqlite-backup-'));
  role = await sqliteEngine.roles.backup!();
});
after(async () => {
  for (const conn of opened) await conn.close();
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
const newPath = (name: string): string => path.join(dir, `${++counter}-${name}`);

function backupContext(file: string): BackupContext {
  const url = `sqlite:${file}`;
  const tempDir = mkdtempSync(path.join(dir, 'tmp-'));
  return {
    target: testTarget(url),
    spec: sqliteEngine.parseUrl(url),
    logger: silentLogger,
    tempDir,
    jobs: 1,
  };
}

function loadContext(file: string, extra: Partial<LoadContext> = {}): LoadContext {
  return { ...backupContext(file), extension: 'sqlite', ...extra };
}

async function connect(file: string): Promise<SqlConnection> {
  const conn = await connectSql(sqliteEngine, `sqlite:${file}?mode=rwc`);
  opened.push(conn);
  return conn;
}

/** A file database with a parent/child pair of tables, a view and a blob. */
function seed(file: string, rows = 500): void {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT REFERENCES customers(id), note TEXT, data BLOB);
    CREATE VIEW big_orders AS SELECT * FROM orders WHERE id > 10;
  `);
  const customer = db.prepare('INSERT INTO customers (id, name) VALUES (?, ?)');
  const order = db.prepare('INSERT INTO orders (customer_id, note, data) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= 50; i++) customer.run(i, `customer ${i}`);
    for (let i = 0; i < rows; i++)
      order.run((i % 50) + 1, `order ${i} ’ünïcode’`, Buffer.from([i % 256, 0, 255]));
  })();
  db.close();
}

/** Run a dump of `file` to `out`; resolves with what done resolved with. */
async function dumpTo(file: string, out: string): Promise<DumpOutcome> {
  const ctx = backupContext(file);
  const conn = await connect(file);
  const plan = await role.plan(conn, ctx);
  const running = await role.dump(conn, ctx, plan);
  await pipeline(running.stream!, createWriteStream(out));
  return running.done;
}

/** Overwrite the first `bytes` bytes of the orders table's root page with garbage. */
function damagePage(file: string, bytes: number): void {
  const [where] = readAll<{ rootpage: number; page_size: number }>(
    file,
    "SELECT rootpage, (SELECT page_size FROM pragma_page_size) AS page_size FROM sqlite_schema WHERE name = 'orders'",
  );
  assert.ok(where);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(bytes, 0xa5), 0, bytes, (where.rootpage - 1) * where.page_size);
  closeSync(fd);
}

function readAll<Row>(file: string, sql: string): Row[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all() as Row[];
  } finally {
    db.close();
  }
}

async function expectRoleError(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<DbwardError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    assert.ok(err.hint, 'the error has a hint');
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('sqlite backup: plan and dump', () => {
  it('plans with the SQLite library version and the .sqlite extension', async () => {
    const file = newPath('plan.db');
    seed(file, 1);
    const conn = await connect(file);
    const plan = await role.plan(conn, backupContext(file));
    assert.match(plan.serverVersion, /^3\.\d+\.\d+/);
    assert.deepEqual(plan.tool, { name: 'sqlite-backup-api', version: plan.serverVersion });
    assert.equal(plan.extension, 'sqlite');
  });

  it('takes a consistent snapshot while another handle keeps writing', async () => {
    const file = newPath('busy.db');
    const writer = new Database(file);
    writer.pragma('journal_mode = WAL');
    writer.exec(
      'CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)',
    );
    const insertA = writer.prepare('INSERT INTO a (v) VALUES (?)');
    const insertB = writer.prepare('INSERT INTO b (v) VALUES (?)');
    // Every transaction adds one row to each table: a copy that mixes two moments differs.
    const pair = writer.transaction((v: string) => {
      insertA.run(v);
      insertB.run(v);
    });
    // Enough pages (~15 MB) that the backup takes many steps, with writes in between.
    writer.transaction(() => {
      for (let i = 0; i < 100_000; i++) pair('x'.repeat(60));
    })();
    let writes = 0;
    const timer = setInterval(() => {
      pair('during the dump');
      writes++;
    }, 1);
    let outcome: DumpOutcome;
    const out = newPath('busy.sqlite');
    try {
      outcome = await dumpTo(file, out);
    } finally {
      clearInterval(timer);
      writer.close();
    }
    assert.ok(writes > 0, 'the writer wrote while the dump ran');
    const counts = Object.fromEntries(outcome.tables.map((t) => [t.name, t.rows]));
    assert.equal(counts.a, counts.b, 'both tables come from the same moment');
    assert.ok(counts.a! >= 100_000);
    const [copy] = readAll<{ a: number; b: number }>(
      out,
      'SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM b) AS b',
    );
    assert.deepEqual(copy, { a: counts.a, b: counts.b }, 'the counts describe the streamed file');
  });

  it('refuses a damaged source with E_BACKUP_DUMP, and leaves no temporary file', async () => {
    const file = newPath('damaged.db');
    seed(file, 5_000);
    // Overwrite the orders table's root page header: its b-tree no longer makes sense.
    damagePage(file, 64);

    const ctx = backupContext(file);
    const conn = await connect(file);
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    const streamed = pipeline(running.stream!, createWriteStream(newPath('damaged.sqlite')));
    const [streamResult] = await Promise.allSettled([streamed, running.done]);
    const err = await expectRoleError(running.done, 'E_BACKUP_DUMP', /integrity check/);
    assert.doesNotMatch(err.message, /\n\s+at /, 'no stack trace in the message');
    assert.deepEqual(
      streamResult,
      { status: 'rejected', reason: err },
      'the stream fails with the same error',
    );
    assert.deepEqual(readdirSync(ctx.tempDir), []);
  });

  it('abort() stops the dump and removes the copy', async () => {
    const file = newPath('abort.db');
    seed(file, 20_000);
    const ctx = backupContext(file);
    const conn = await connect(file);
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    running.abort();
    await expectRoleError(running.done, 'E_BACKUP_DUMP');
    assert.deepEqual(readdirSync(ctx.tempDir), []);
  });

  it('refuses an in-memory target', async () => {
    const conn = await connectSql(sqliteEngine, 'sqlite::memory:');
    opened.push(conn);
    const ctx = { ...backupContext(newPath('unused.db')), spec: sqliteEngine.parseUrl('sqlite::memory:') };
    await expectRoleError(role.dump(conn, ctx, await role.plan(conn, ctx)), 'E_BACKUP_DUMP', /in-memory/);
  });
});

describe('sqlite backup: verification copy', () => {
  let dumpFile: string;
  let outcome: DumpOutcome;

  before(async () => {
    const file = newPath('source.db');
    seed(file, 500);
    dumpFile = newPath('source.sqlite');
    outcome = await dumpTo(file, dumpFile);
  });

  it('counts every table exactly in the dump', () => {
    assert.deepEqual(outcome.tables, [
      { name: 'customers', rows: 50 },
      { name: 'orders', rows: 500 },
    ]);
  });

  it('loads the dump and finds the same counts, with integrity and foreign keys ok', async () => {
    const ctx = loadContext(newPath('unused.db'));
    let progress = 0;
    const copy = await role.loadCopy(createReadStream(dumpFile), await connect(newPath('any.db')), {
      ...ctx,
      onProgress: (bytes) => (progress = bytes),
    });
    try {
      const check = await copy.check();
      assert.deepEqual(check.problems, []);
      assert.deepEqual(check.tables, outcome.tables);
      assert.deepEqual(check.checks, ['PRAGMA integrity_check: ok', 'PRAGMA foreign_key_check: ok']);
      assert.ok(progress > 0, 'progress was reported');
    } finally {
      await copy.dispose();
    }
    assert.deepEqual(readdirSync(ctx.tempDir), [], 'dispose removed the copy');
  });

  it('reports foreign-key violations as problems', async () => {
    const file = newPath('orphans.db');
    seed(file, 10);
    const db = new Database(file);
    // An application that never turned foreign keys on can leave orphans behind.
    db.pragma('foreign_keys = OFF');
    db.exec('INSERT INTO orders (customer_id, note) VALUES (999, NULL)');
    db.close();
    const copy = await role.loadCopy(
      createReadStream(file),
      await connect(newPath('any.db')),
      loadContext(file),
    );
    try {
      const check = await copy.check();
      assert.equal(check.problems.length, 1);
      assert.match(check.problems[0]!, /orders row 11 refers to a missing row in customers/);
      assert.match(check.checks.join('\n'), /foreign_key_check: 1 violation/);
    } finally {
      await copy.dispose();
    }
  });

  it('reports a damaged backup as problems, not a crash', async () => {
    const damaged = newPath('damaged-copy.sqlite');
    rmSync(damaged, { force: true });
    await pipeline(createReadStream(dumpFile), createWriteStream(damaged));
    damagePage(damaged, 32);
    const copy = await role.loadCopy(
      createReadStream(damaged),
      await connect(newPath('any.db')),
      loadContext(damaged),
    );
    try {
      const check = await copy.check();
      assert.ok(check.problems.length > 0, 'integrity_check found the damage');
      assert.match(check.checks[0]!, /integrity_check: \d+ problem/);
    } finally {
      await copy.dispose();
    }
  });

  it('rejects a stream that is not a SQLite file, or is empty, with E_BACKUP_RESTORE', async () => {
    const conn = await connect(newPath('any.db'));
    const ctx = loadContext(newPath('unused.db'));
    await expectRoleError(
      role.loadCopy(Readable.from([Buffer.from('PGDMP not sqlite at all')]), conn, ctx),
      'E_BACKUP_RESTORE',
      /not a SQLite database.*header/,
    );
    await expectRoleError(role.loadCopy(Readable.from([]), conn, ctx), 'E_BACKUP_RESTORE', /empty/);
    assert.deepEqual(readdirSync(ctx.tempDir), []);
  });
});

describe('sqlite backup: restore', () => {
  let dumpFile: string;

  before(async () => {
    const file = newPath('restore-source.db');
    seed(file, 300);
    dumpFile = newPath('restore-source.sqlite');
    await dumpTo(file, dumpFile);
  });

  it('lists what a target holds, and nothing for an empty one', async () => {
    const empty = newPath('empty.db');
    assert.deepEqual(await role.existingContents(await connect(empty), loadContext(empty)), []);
    const full = newPath('full.db');
    seed(full, 1);
    assert.deepEqual(await role.existingContents(await connect(full), loadContext(full)), [
      'view big_orders',
      'table customers',
      'table orders',
    ]);
  });

  it('replaces the contents of an existing, open target', async () => {
    const target = newPath('existing.db');
    const conn = await connect(target);
    await conn.query('CREATE TABLE old_stuff (x INT)');
    await conn.query('INSERT INTO old_stuff VALUES (1), (2)');
    await role.restore(createReadStream(dumpFile), conn, loadContext(target));
    // The connection that had the file open sees the restored database, not the old one.
    assert.deepEqual(await role.existingContents(conn, loadContext(target)), [
      'view big_orders',
      'table customers',
      'table orders',
    ]);
    const { rows } = await conn.query<{ n: number; note: string; data: Buffer }>(
      'SELECT (SELECT count(*) FROM orders) AS n, note, data FROM orders WHERE id = 3',
    );
    assert.equal(rows[0]!.n, 300);
    assert.equal(rows[0]!.note, 'order 2 ’ünïcode’');
    assert.deepEqual([...rows[0]!.data], [2, 0, 255]);
  });

  it('creates a target file that does not exist yet', async () => {
    const target = newPath('brand-new.db');
    const conn = await connect(newPath('elsewhere.db'));
    await role.restore(createReadStream(dumpFile), conn, loadContext(target));
    const [row] = readAll<{ n: number }>(target, 'SELECT count(*) AS n FROM customers');
    assert.equal(row!.n, 50);
  });

  it('leaves the target alone when the backup is damaged', async () => {
    const target = newPath('keep.db');
    const conn = await connect(target);
    await conn.query('CREATE TABLE precious (x INT)');
    await expectRoleError(
      role.restore(Readable.from([Buffer.from('garbage')]), conn, loadContext(target)),
      'E_BACKUP_RESTORE',
    );
    assert.deepEqual(await role.existingContents(conn, loadContext(target)), ['table precious']);
  });

  it('refuses --tables with a clear E_BACKUP_RESTORE', async () => {
    const target = newPath('tables.db');
    await expectRoleError(
      role.restore(Readable.from([]), await connect(target), loadContext(target, { tables: ['orders'] })),
      'E_BACKUP_RESTORE',
      /--tables is not supported for SQLite/,
    );
  });
});
