import { after, before, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbwardError } from '../../src/core/errors.js';
import type {
  AppliedMigration,
  LockOwner,
  MigrationStoreRole,
  SqlConnection,
} from '../../src/engines/contract.js';
import { sqliteEngine } from '../../src/engines/sqlite/sqlite-engine.js';
import { heartbeatIntervalMs } from '../../src/engines/sqlite/sqlite-migration-lock.js';
import { freshDatabase, type TestDatabase } from '../harness/test-databases.js';
import { connectSql } from '../helpers/engine-connect.js';

// Through the registry, as the migration runner will load it.
const store: MigrationStoreRole = await sqliteEngine.roles.migrationStore!();
const table = 'dbward_migrations';
const repoRoot = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const holderFixture = path.join(repoRoot, 'test/engines/fixtures/sqlite-lock-holder.ts');

const owner = (overrides: Partial<LockOwner> = {}): LockOwner => ({
  pid: process.pid,
  host: hostname(),
  token: randomUUID(),
  ...overrides,
});

const migration = (version: string, overrides: Partial<AppliedMigration> = {}): AppliedMigration => ({
  version,
  name: `m${version}`,
  checksum: 'a'.repeat(64),
  appliedAt: '2026-11-22T04:00:00.000Z',
  durationMs: 12,
  appliedBy: 'ci@build-7',
  dbwardVersion: '0.1.0',
  statementsApplied: 3,
  statementsTotal: 3,
  status: 'applied',
  ...overrides,
});

async function tableNames(conn: SqlConnection): Promise<string[]> {
  const { rows } = await conn.query<{ name: string }>(
    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
  );
  return rows.map((r) => r.name);
}

/** The E_MIGRATION_LOCKED error `promise` rejects with; fails the test otherwise. */
async function lockedError(promise: Promise<unknown>): Promise<DbwardError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    assert.equal(err.code, 'E_MIGRATION_LOCKED');
    assert.equal(err.exitCode, 1);
    return err;
  }
  assert.fail('expected the lock to be refused');
}

describe('sqlite migration store: tracking table', () => {
  let db: TestDatabase;
  let conn: SqlConnection;

  before(async () => {
    db = await freshDatabase('sqlite');
    conn = await connectSql(sqliteEngine, db.url);
  });
  after(async () => {
    await conn.close();
    await db.cleanup();
  });
  beforeEach(async () => {
    await conn.query(`DROP TABLE IF EXISTS ${table}`);
  });

  it('lists nothing on a fresh database, and creates nothing by listing', async () => {
    assert.deepEqual(await store.listApplied(conn, table), []);
    assert.deepEqual(await tableNames(conn), []);
  });

  it('ensureStore creates the tracking and lock tables and is idempotent', async () => {
    await store.ensureStore(conn, table);
    await store.ensureStore(conn, table);
    assert.deepEqual(await tableNames(conn), ['dbward_migration_lock', table]);
    const { rows } = await conn.query<{ name: string }>(`SELECT name FROM pragma_table_info('${table}')`);
    assert.deepEqual(
      rows.map((r) => r.name),
      [
        'version',
        'name',
        'checksum',
        'applied_at',
        'duration_ms',
        'applied_by',
        'dbward_version',
        'statements_applied',
        'statements_total',
        'status',
      ],
    );
    assert.deepEqual(await store.listApplied(conn, table), []);
  });

  it('records, updates (partial → applied) and removes rows with exact values', async () => {
    await store.ensureStore(conn, table);
    const partial = migration('20261122043000', {
      name: 'add_users',
      status: 'partial',
      statementsApplied: 1,
      statementsTotal: 4,
      durationMs: 1500,
    });
    await conn.withSession((s) => store.recordApplied(s, table, partial));
    assert.deepEqual(await store.listApplied(conn, table), [partial]);

    const applied = {
      ...partial,
      status: 'applied' as const,
      statementsApplied: 4,
      durationMs: 2750,
      appliedAt: '2026-11-22T05:00:00.000Z',
    };
    await conn.withSession((s) => store.recordApplied(s, table, applied));
    assert.deepEqual(await store.listApplied(conn, table), [applied]);

    await conn.withSession((s) => store.removeApplied(s, table, partial.version));
    assert.deepEqual(await store.listApplied(conn, table), []);
  });

  it('orders versions numerically: 9 < 10 < 100', async () => {
    await store.ensureStore(conn, table);
    for (const v of ['100', '9', '10']) await store.recordApplied(conn, table, migration(v));
    const versions = (await store.listApplied(conn, table)).map((m) => m.version);
    assert.deepEqual(versions, ['9', '10', '100']);
  });

  it('quotes the table name', async () => {
    const odd = 'my "migrations"';
    await store.ensureStore(conn, odd);
    await store.recordApplied(conn, odd, migration('1'));
    assert.deepEqual(await store.listApplied(conn, odd), [migration('1')]);
    await conn.query(`DROP TABLE ${conn.quoteIdent(odd)}`);
  });

  it('a recordApplied in a transaction that rolls back leaves no row', async () => {
    await store.ensureStore(conn, table);
    await assert.rejects(
      conn.withTransaction(async (s) => {
        await store.recordApplied(s, table, migration('1'));
        throw new Error('migration failed');
      }),
      /migration failed/,
    );
    assert.deepEqual(await store.listApplied(conn, table), []);
  });

  it('executeScript runs several statements; a rolled-back transaction leaves nothing', async () => {
    await conn.withTransaction((s) =>
      store.executeScript(
        s,
        `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO items (name) VALUES ('a');
         -- a comment between statements
         INSERT INTO items (name) VALUES ('b');`,
      ),
    );
    assert.deepEqual((await conn.query('SELECT name FROM items ORDER BY id')).rows, [
      { name: 'a' },
      { name: 'b' },
    ]);

    await assert.rejects(
      conn.withTransaction(async (s) => {
        await store.executeScript(s, `CREATE TABLE other (x INT); INSERT INTO items (name) VALUES ('c');`);
        throw new Error('later statement failed');
      }),
      /later statement failed/,
    );
    assert.equal((await conn.query('SELECT 1 FROM items')).rowCount, 2);
    assert.ok(!(await tableNames(conn)).includes('other'));
    await conn.query('DROP TABLE items');
  });

  it('executeScript runs a single statement, and a comment-only section as nothing', async () => {
    await conn.withSession((s) => store.executeScript(s, 'CREATE TABLE one (x INT);'));
    await conn.withSession((s) => store.executeScript(s, '-- nothing to do here\n'));
    assert.ok((await tableNames(conn)).includes('one'));
    await conn.query('DROP TABLE one');
  });

  it('executeScript reports a failing statement as a QueryError', async () => {
    await assert.rejects(
      conn.withSession((s) => store.executeScript(s, 'CREATE TABLE t (x INT); INSERT INTO nope VALUES (1);')),
      (err: unknown) =>
        err instanceof DbwardError && err.code === 'E_QUERY' && /no such table: nope/.test(err.message),
    );
    await conn.query('DROP TABLE IF EXISTS t');
  });
});

describe('sqlite migration store: lock', () => {
  let db: TestDatabase;
  let a: SqlConnection;
  let b: SqlConnection;

  before(async () => {
    db = await freshDatabase('sqlite');
    a = await connectSql(sqliteEngine, db.url);
    b = await connectSql(sqliteEngine, db.url);
    await store.ensureStore(a, table);
  });
  after(async () => {
    await a.close();
    await b.close();
    await db.cleanup();
  });

  it('lockHolder is null on a database without the lock table', async () => {
    const other = await freshDatabase('sqlite');
    const conn = await connectSql(sqliteEngine, other.url);
    try {
      assert.equal(await store.lockHolder(conn), null);
    } finally {
      await conn.close();
      await other.cleanup();
    }
  });

  it('is exclusive across connections, names the holder, and frees on release', async () => {
    assert.equal(await store.lockHolder(b), null);
    const lockA = await store.acquireLock(a, { timeoutMs: 1_000, owner: owner() });

    const holder = await store.lockHolder(b);
    assert.ok(holder);
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.host, hostname());
    assert.match(holder.since ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(holder.description, `pid ${process.pid} on ${hostname()} since ${holder.since}`);

    const started = Date.now();
    const err = await lockedError(store.acquireLock(b, { timeoutMs: 300, owner: owner() }));
    assert.ok(Date.now() - started >= 290, 'waited for the timeout');
    assert.equal(
      err.message,
      `Another migration run holds the lock on ${db.name}: pid ${process.pid} on ${hostname()} since ${holder.since}`,
    );
    assert.match(err.hint ?? '', /dbward migrate unlock/);

    await lockA.release();
    await lockA.release(); // idempotent
    assert.equal(await store.lockHolder(b), null);

    const lockB = await store.acquireLock(b, { timeoutMs: 300, owner: owner({ host: 'host-b' }) });
    assert.equal((await store.lockHolder(a))?.host, 'host-b');
    await lockB.release();
  });

  it('a waiting run gets the lock as soon as the holder releases it', async () => {
    const lockA = await store.acquireLock(a, { timeoutMs: 300, owner: owner() });
    const waiting = store.acquireLock(b, { timeoutMs: 5_000, owner: owner() });
    await new Promise((resolve) => setTimeout(resolve, 250));
    await lockA.release();
    const lockB = await waiting;
    await lockB.release();
  });

  it('acquireLock creates the lock table when ensureStore was never run', async () => {
    const other = await freshDatabase('sqlite');
    const conn = await connectSql(sqliteEngine, other.url);
    try {
      const lock = await store.acquireLock(conn, { timeoutMs: 300, owner: owner() });
      assert.equal((await store.lockHolder(conn))?.pid, process.pid);
      await lock.release();
    } finally {
      await conn.close();
      await other.cleanup();
    }
  });

  it('release does not throw when the connection is already closed', async () => {
    const c = await connectSql(sqliteEngine, db.url);
    const lock = await store.acquireLock(c, { timeoutMs: 300, owner: owner() });
    await c.close();
    await lock.release();
    // Nothing deleted the row; this process is alive, so it still counts as held until its token leaves.
    await a.query('DELETE FROM dbward_migration_lock');
  });

  it('release never frees a lock that another run has taken over', async () => {
    // A runs on another machine (its pid means nothing here) and hangs: its heartbeat goes
    // stale, so B takes the lock over.
    const lockA = await store.acquireLock(a, { timeoutMs: 300, owner: owner({ host: 'host-a' }) });
    await a.query("UPDATE dbward_migration_lock SET heartbeat = '2000-01-01T00:00:00.000Z'");
    const lockB = await store.acquireLock(b, { timeoutMs: 300, owner: owner({ host: 'host-b' }) });
    await lockA.release();
    assert.equal((await store.lockHolder(a))?.host, 'host-b');
    await lockB.release();
  });

  it('never takes over from a live holder on this host, however old its heartbeat (a long migration)', async () => {
    // This process holds it; its heartbeat cannot be renewed while a long migration has the
    // write lock, so the heartbeat looks old, but the process that took the lock is still there.
    const lockA = await store.acquireLock(a, { timeoutMs: 300, owner: owner() });
    await a.query("UPDATE dbward_migration_lock SET heartbeat = '2000-01-01T00:00:00.000Z'");
    await assert.rejects(
      store.acquireLock(b, { timeoutMs: 0, owner: owner() }),
      (err: unknown) => err instanceof DbwardError && err.code === 'E_MIGRATION_LOCKED',
    );
    assert.equal((await store.lockHolder(a))?.stale, false);
    await lockA.release();
  });

  it('takes over when the holder pid on this host now belongs to a process started after the lock', async () => {
    // The row says pid = this process, taken in 2000: this process started later, so the pid was
    // reused and the real holder is gone, even though its heartbeat is fresh.
    await a.query(
      `INSERT INTO dbward_migration_lock (id, token, pid, host, since, heartbeat) VALUES (1, 'old', ?, ?, ?, ?)`,
      [process.pid, hostname(), '2000-01-01T00:00:00.000Z', new Date().toISOString()],
    );
    assert.equal((await store.lockHolder(a))?.stale, true);
    const lock = await store.acquireLock(b, { timeoutMs: 0, owner: owner() });
    await lock.release();
  });

  it('takes over a lock from another host whose heartbeat is old, but not a fresh one', async () => {
    const insert = (heartbeat: string) =>
      a.query(
        `INSERT INTO dbward_migration_lock (id, token, pid, host, since, heartbeat)
         VALUES (1, 'theirs', 999999, 'elsewhere', ?, ?)`,
        ['2026-01-01T00:00:00.000Z', heartbeat],
      );
    // Another host: its pid means nothing here, so only a fresh heartbeat keeps it.
    await insert(new Date().toISOString());
    const err = await lockedError(store.acquireLock(b, { timeoutMs: 200, owner: owner() }));
    assert.match(err.message, /pid 999999 on elsewhere since 2026-01-01T00:00:00\.000Z$/);
    await a.query('DELETE FROM dbward_migration_lock');

    await insert(new Date(Date.now() - 3 * 60_000).toISOString());
    const lock = await store.acquireLock(b, { timeoutMs: 200, owner: owner() });
    assert.equal((await store.lockHolder(a))?.host, hostname());
    await lock.release();
  });

  it('renews the heartbeat while held', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const lock = await store.acquireLock(a, { timeoutMs: 300, owner: owner() });
      await a.query("UPDATE dbward_migration_lock SET heartbeat = '2000-01-01T00:00:00.000Z'");
      mock.timers.tick(heartbeatIntervalMs);
      // The beat is queued on the connection; a query behind it runs after it.
      const { rows } = await a.query<{ heartbeat: string }>('SELECT heartbeat FROM dbward_migration_lock');
      assert.ok(Date.parse(rows[0]?.heartbeat ?? '') > Date.now() - 5_000, 'heartbeat renewed');
      await lock.release();
    } finally {
      mock.timers.reset();
    }
  });

  it('a holder killed with SIGKILL does not block the next run', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', holderFixture, db.url], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const pid = await waitForLocked(child);
      const err = await lockedError(store.acquireLock(b, { timeoutMs: 300, owner: owner() }));
      assert.match(err.message, new RegExp(`: pid ${pid} on ${hostname()} since `));

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      // Once reaped the pid no longer exists, so the row is stale although its heartbeat is fresh.
      await exited;
      const lock = await store.acquireLock(b, { timeoutMs: 2_000, owner: owner() });
      assert.equal((await store.lockHolder(a))?.pid, process.pid);
      await lock.release();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});

/** Resolve with the child's pid once it prints `locked <pid>`; reject if it exits first. */
function waitForLocked(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /locked (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`lock holder exited (${code}) before locking: ${err}`)));
    setTimeout(() => reject(new Error(`lock holder did not lock within 20 s: ${err}`)), 20_000).unref();
  });
}
