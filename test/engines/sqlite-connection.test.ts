import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { QueryError, type ConnectionError } from '../../src/core/errors.js';
import type { TargetOptions } from '../../src/core/target.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { sqliteEngine } from '../../src/engines/sqlite/sqlite-engine.js';
import { diagnoseSqliteOpenError } from '../../src/engines/sqlite/sqlite-errors.js';
import { freshDatabase, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, expectConnectionError } from '../helpers/engine-connect.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';

// The build of better-sqlite3 that is safe on this Node version (see sqlite-driver.ts).
const { Database } = await loadSqliteDriver();

const connect = (url: string, options: Partial<TargetOptions> = {}): Promise<SqlConnection> =>
  connectSql(sqliteEngine, url, options);

const connectError = (url: string, options: Partial<TargetOptions> = {}): Promise<ConnectionError> =>
  expectConnectionError(sqliteEngine, url, options);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('sqlite connection', () => {
  let db: TestDatabase;
  let conn: SqlConnection;

  before(async () => {
    db = await freshDatabase('sqlite');
    conn = await connect(`${db.url}?mode=rwc`);
    await conn.query('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INT)');
  });
  after(async () => {
    await conn.close();
    await db.cleanup();
  });

  it('binds positional parameters', async () => {
    await conn.query('INSERT INTO items (name, qty) VALUES (?, ?)', ['bolt', 5]);
    const { rows } = await conn.query<{ name: string; qty: number }>(
      'SELECT name, qty FROM items WHERE name = ?',
      ['bolt'],
    );
    assert.deepEqual(rows, [{ name: 'bolt', qty: 5 }]);
  });

  it('counts rows returned for reads and rows changed for writes', async () => {
    await conn.query('DELETE FROM items');
    for (const name of ['a', 'b', 'c']) {
      assert.deepEqual(await conn.query('INSERT INTO items (name, qty) VALUES (?, 1)', [name]), {
        rows: [],
        rowCount: 1,
      });
    }
    const update = await conn.query('UPDATE items SET qty = qty + 1');
    assert.equal(update.rowCount, 3);
    const read = await conn.query('SELECT * FROM items WHERE qty = ?', [2]);
    assert.equal(read.rowCount, 3);
    assert.equal(read.rows.length, 3);
    const returning = await conn.query('DELETE FROM items WHERE name = ? RETURNING name', ['c']);
    assert.deepEqual(returning, { rows: [{ name: 'c' }], rowCount: 1 });
  });

  it('maps booleans, dates and undefined to values SQLite can bind', async () => {
    const when = new Date('2024-05-06T07:08:09.000Z');
    const { rows } = await conn.query('SELECT ? AS t, ? AS f, ? AS d, ? AS u', [
      true,
      false,
      when,
      undefined,
    ]);
    assert.deepEqual(rows, [{ t: 1, f: 0, d: '2024-05-06T07:08:09.000Z', u: null }]);
  });

  it('runs a multi-statement script when there is nothing to bind', async () => {
    await conn.query('CREATE TABLE s1 (a); CREATE TABLE s2 (b); INSERT INTO s1 VALUES (1);');
    assert.deepEqual((await conn.query('SELECT a FROM s1')).rows, [{ a: 1 }]);
  });

  it('commits a transaction and rolls back a failed one, rethrowing the error', async () => {
    await conn.query('DELETE FROM items');
    const result = await conn.withTransaction(async (tx) => {
      await tx.query('INSERT INTO items (name) VALUES (?)', ['kept']);
      return 'done';
    });
    assert.equal(result, 'done');
    const boom = new Error('boom');
    await assert.rejects(
      conn.withTransaction(async (tx) => {
        await tx.query('INSERT INTO items (name) VALUES (?)', ['dropped']);
        throw boom;
      }),
      (err) => err === boom,
    );
    assert.deepEqual((await conn.query('SELECT name FROM items')).rows, [{ name: 'kept' }]);
  });

  it('serializes concurrent transactions on the one connection', async () => {
    await conn.query('CREATE TABLE counter (n INT)');
    await conn.query('INSERT INTO counter VALUES (0)');
    let sawQueue = false;
    // Each transaction reads, yields to the event loop, then writes: interleaving would lose
    // increments or fail with "cannot start a transaction within a transaction".
    await Promise.all(
      Array.from({ length: 10 }, () =>
        conn.withTransaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>('SELECT n FROM counter');
          const stats = conn.poolStats();
          assert.equal(stats.inUse, 1);
          if (stats.waiting > 0) sawQueue = true;
          await sleep(2);
          await tx.query('UPDATE counter SET n = ?', [(rows[0]?.n ?? 0) + 1]);
        }),
      ),
    );
    assert.deepEqual((await conn.query('SELECT n FROM counter')).rows, [{ n: 10 }]);
    assert.ok(sawQueue, 'later transactions should have been queued');
    assert.deepEqual(conn.poolStats(), { max: 1, total: 1, idle: 1, inUse: 0, waiting: 0 });
  });

  it('joins the running transaction when the connection is used from inside it, nesting as a savepoint', async () => {
    await conn.query('DELETE FROM items');
    await conn.withTransaction(async (tx) => {
      await tx.query('INSERT INTO items (name) VALUES (?)', ['outer']);
      // Calling the connection itself from inside must not wait for the transaction it is in.
      assert.equal((await conn.query('SELECT count(*) AS n FROM items')).rows[0]?.n, 1);
      await assert.rejects(
        conn.withTransaction(async (inner) => {
          await inner.query('INSERT INTO items (name) VALUES (?)', ['inner']);
          throw new Error('inner fails');
        }),
        /inner fails/,
      );
    });
    assert.deepEqual((await conn.query('SELECT name FROM items')).rows, [{ name: 'outer' }]);
  });

  it('turns statement errors into QueryErrors carrying the SQLite code', async () => {
    await assert.rejects(conn.query('SELECT * FROM no_such_table'), (err) => {
      assert.ok(err instanceof QueryError);
      assert.equal(err.sqlState, 'SQLITE_ERROR');
      assert.match(err.message, /no such table: no_such_table/);
      assert.equal(err.context.engine, 'sqlite');
      return true;
    });
    await conn.query('INSERT OR IGNORE INTO items (name) VALUES (?)', ['dup']);
    await assert.rejects(conn.query('INSERT INTO items (name) VALUES (?)', ['dup']), (err) => {
      assert.ok(err instanceof QueryError);
      assert.equal(err.sqlState, 'SQLITE_CONSTRAINT_UNIQUE');
      assert.equal(conn.isRetryable(err), false);
      return true;
    });
  });

  it('applies foreign_keys=ON, WAL on a database it created, and busy_timeout, and reports the SQLite version', async () => {
    assert.deepEqual((await conn.query('PRAGMA foreign_keys')).rows, [{ foreign_keys: 1 }]);
    assert.deepEqual((await conn.query('PRAGMA journal_mode')).rows, [{ journal_mode: 'wal' }]);
    // connectTimeoutMs (default 10 s) sets busy_timeout, capped at 5 s.
    assert.deepEqual((await conn.query('PRAGMA busy_timeout')).rows, [{ timeout: 5000 }]);
    assert.match(await conn.serverVersion(), /^3\.\d+\.\d+$/);
    await conn.ping();
    assert.equal(conn.quoteIdent('a"b'), '"a""b"');
  });

  it('loads the Node-API build of better-sqlite3 on Node >= 22 (regression: 12.x aborted on Node 24.19+)', async () => {
    const driver = await loadSqliteDriver();
    const major = Number(process.versions.node.split('.')[0]);
    assert.equal(driver.packageName, major >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3');
  });

  it('never changes the journal mode of an existing file (regression: connecting switched it to WAL)', async () => {
    const other = await freshDatabase('sqlite');
    try {
      const raw = new Database(other.name);
      raw.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      raw.close();
      const c = await connect(other.url);
      assert.deepEqual((await c.query('PRAGMA journal_mode')).rows, [{ journal_mode: 'delete' }]);
      await c.close();
    } finally {
      await other.cleanup();
    }
  });

  it('treats a write blocked by another writer as retryable', async () => {
    const other = new Database(db.name);
    other.exec('BEGIN IMMEDIATE');
    const impatient = await connect(db.url, { connectTimeoutMs: 50 });
    try {
      await assert.rejects(impatient.query('INSERT INTO items (name) VALUES (?)', ['blocked']), (err) => {
        assert.ok(err instanceof QueryError);
        assert.equal(err.sqlState, 'SQLITE_BUSY');
        assert.equal(impatient.isRetryable(err), true);
        return true;
      });
    } finally {
      other.exec('ROLLBACK');
      other.close();
      await impatient.close();
    }
  });

  it('opens ?mode=ro read-only', async () => {
    const ro = await connect(`${db.url}?mode=ro`);
    try {
      assert.equal((await ro.query('SELECT count(*) AS n FROM items')).rowCount, 1);
      await assert.rejects(ro.query('DELETE FROM items'), (err) => {
        assert.ok(err instanceof QueryError);
        assert.equal(err.sqlState, 'SQLITE_READONLY');
        return true;
      });
    } finally {
      await ro.close();
    }
  });

  it('closes idempotently and refuses use after close', async () => {
    const extra = await connect(db.url);
    await extra.close();
    await extra.close();
    assert.deepEqual(extra.poolStats(), { max: 1, total: 0, idle: 0, inUse: 0, waiting: 0 });
    await assert.rejects(extra.query('SELECT 1'), /closed/);
  });
});

describe('sqlite connection failures', () => {
  let db: TestDatabase;
  let dir: string;

  before(async () => {
    db = await freshDatabase('sqlite');
    dir = path.dirname(db.name);
  });
  after(() => db.cleanup());

  it('diagnoses a missing file as file-missing and does not create it', async () => {
    const file = path.join(dir, 'missing.db');
    const err = await connectError(`sqlite:${file}`);
    assert.equal(err.kind, 'file-missing');
    assert.match(err.message, /does not exist/);
    assert.ok(err.message.includes(file));
    assert.equal(existsSync(file), false);
    assert.equal((await connectError(`sqlite:${file}?mode=ro`)).kind, 'file-missing');
    assert.equal((await connectError(`sqlite:${path.join(dir, 'no-dir', 'x.db')}`)).kind, 'file-missing');
    assert.equal(existsSync(file), false);
  });

  it('creates the file only when asked to with ?mode=rwc', async () => {
    const url = `sqlite:${path.join(dir, 'rwc.db')}?mode=rwc`;
    const conn = await connect(url);
    await conn.close();
    assert.ok(existsSync(sqliteEngine.parseUrl(url).file as string));
  });

  it('diagnoses a text file as not-a-database', async () => {
    const file = path.join(dir, 'notes.txt');
    writeFileSync(file, 'these are not the pages you are looking for\n'.repeat(200));
    const err = await connectError(`sqlite:${file}`);
    assert.equal(err.kind, 'not-a-database');
    assert.match(err.message, /not a SQLite database/);
  });

  it(
    'diagnoses an unreadable file as permission-denied',
    { skip: process.getuid?.() === 0 && 'root reads any file' },
    async () => {
      const file = path.join(dir, 'private.db');
      new Database(file).close();
      chmodSync(file, 0o000);
      const err = await connectError(`sqlite:${file}`);
      assert.equal(err.kind, 'permission-denied');
    },
  );

  it('words SQLITE_CANTOPEN on an existing file as a file permission problem', () => {
    // The driver error as better-sqlite3 raises it; the file system decides the diagnosis.
    const cantOpen = Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' });
    const file = path.join(dir, 'exists.db');
    new Database(file).close();
    const err = diagnoseSqliteOpenError(cantOpen, { file, target: 't' });
    assert.equal(err.kind, 'permission-denied');
    assert.match(err.message, /may not open the file .* \(permission denied\)/);
    assert.match(err.hint ?? '', /owner and mode/);
  });

  it('diagnoses a file another connection holds exclusively as file-locked', async () => {
    const file = path.join(dir, 'locked.db');
    const holder = new Database(file);
    holder.exec('CREATE TABLE t (a); INSERT INTO t VALUES (1)');
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const started = Date.now();
      const err = await connectError(`sqlite:${file}`, { connectTimeoutMs: 100 });
      assert.equal(err.kind, 'file-locked');
      assert.match(err.message, /locked by another process/);
      assert.ok(err.hint);
      assert.ok(Date.now() - started < 3000, 'busy_timeout follows connectTimeoutMs');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });
});
