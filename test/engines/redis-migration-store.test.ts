import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbwardError } from '../../src/core/errors.js';
import type {
  AppliedMigration,
  KeyValueConnection,
  KeyValueMigrationStoreRole,
  LockOwner,
} from '../../src/engines/contract.js';
import { redisEngine } from '../../src/engines/redis/redis-engine.js';
import { RedisMigrationLock, redisLockKey } from '../../src/engines/redis/redis-migration-lock.js';
import { createRedisMigrationStore } from '../../src/engines/redis/redis-migration-store.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectKeyValue } from '../helpers/engine-connect.js';

const table = 'dbward_migrations';
const repoRoot = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const holderFixture = path.join(repoRoot, 'test/engines/fixtures/redis-lock-holder.ts');
const skip = skipReason('redis');

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The DbwardError `promise` rejects with, checked for `code`; fails the test otherwise. */
async function dbwardError(promise: Promise<unknown>, code: string): Promise<DbwardError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.exitCode, 1);
    return err;
  }
  assert.fail(`expected ${code}`);
}

const lockedError = (promise: Promise<unknown>) => dbwardError(promise, 'E_MIGRATION_LOCKED');

describe('redis migration store: tracking', { skip }, () => {
  let store: KeyValueMigrationStoreRole;
  let db: TestDatabase;
  let conn: KeyValueConnection;

  before(async () => {
    // Through the registry, as the migration runner will load it.
    store = await redisEngine.roles.keyValueMigrationStore!();
    db = await freshDatabase('redis');
    conn = await connectKeyValue(redisEngine, db.url);
  });
  after(async () => {
    await conn?.close();
    await db?.cleanup();
  });
  beforeEach(async () => {
    await conn.command('FLUSHDB');
  });

  it('lists nothing on a fresh database; listing and ensureStore create no key', async () => {
    assert.deepEqual(await store.listApplied(conn, table), []);
    await store.ensureStore(conn, table);
    await store.ensureStore(conn, table);
    assert.equal(await conn.command('DBSIZE'), 0);
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
    await store.recordApplied(conn, table, partial);
    assert.deepEqual(await store.listApplied(conn, table), [partial]);
    // One hash, field = version, value = the row as JSON.
    assert.equal(await conn.command('TYPE', table), 'hash');
    const stored = await conn.command('HGET', table, partial.version);
    assert.deepEqual(JSON.parse(String(stored)), partial);

    const applied = {
      ...partial,
      status: 'applied' as const,
      statementsApplied: 4,
      durationMs: 2750,
      appliedAt: '2026-11-22T05:00:00.000Z',
    };
    await store.recordApplied(conn, table, applied);
    assert.deepEqual(await store.listApplied(conn, table), [applied]);
    assert.equal(await conn.command('HLEN', table), 1);

    await store.removeApplied(conn, table, partial.version);
    assert.deepEqual(await store.listApplied(conn, table), []);
    // Removing a version that is not there is not an error.
    await store.removeApplied(conn, table, partial.version);
  });

  it('orders versions numerically: 9 < 10 < 100', async () => {
    for (const v of ['100', '9', '10']) await store.recordApplied(conn, table, migration(v));
    const versions = (await store.listApplied(conn, table)).map((m) => m.version);
    assert.deepEqual(versions, ['9', '10', '100']);
  });

  it('keeps each tracking key separate (migrations and seeds)', async () => {
    await store.recordApplied(conn, table, migration('1'));
    await store.recordApplied(conn, 'dbward_seeds', migration('2', { name: 'seed_users' }));
    assert.deepEqual(await store.listApplied(conn, table), [migration('1')]);
    assert.deepEqual(await store.listApplied(conn, 'dbward_seeds'), [migration('2', { name: 'seed_users' })]);
  });

  it('refuses a tracking key that holds another type, in ensureStore and listApplied', async () => {
    await conn.command('SET', table, 'not a hash');
    const err = await dbwardError(store.ensureStore(conn, table), 'E_MIGRATION_STORE');
    assert.match(err.message, /"dbward_migrations" is taken by a string/);
    assert.match(err.hint ?? '', /--migrations-table/);
    const listErr = await dbwardError(store.listApplied(conn, table), 'E_MIGRATION_STORE');
    assert.equal(listErr.message, err.message);

    await conn.command('RPUSH', 'my_list', 'x');
    const listType = await dbwardError(store.ensureStore(conn, 'my_list'), 'E_MIGRATION_STORE');
    assert.match(listType.message, /"my_list" is taken by a list/);
    // Nothing was changed.
    assert.equal(await conn.command('GET', table), 'not a hash');
  });

  it('names the key and field of a malformed entry instead of crashing', async () => {
    await store.recordApplied(conn, table, migration('1'));
    await conn.command('HSET', table, '2', '{not json');
    const notJson = await dbwardError(store.listApplied(conn, table), 'E_MIGRATION_STORE');
    assert.match(notJson.message, /"dbward_migrations".*field "2" is not JSON/);
    assert.match(notJson.hint ?? '', /HDEL dbward_migrations 2/);

    await conn.command('HSET', table, '2', JSON.stringify({ ...migration('2'), durationMs: 'slow' }));
    const badField = await dbwardError(store.listApplied(conn, table), 'E_MIGRATION_STORE');
    assert.match(badField.message, /field "2" has no number "durationMs"/);

    await conn.command('HSET', table, '2', JSON.stringify(migration('3')));
    const wrongVersion = await dbwardError(store.listApplied(conn, table), 'E_MIGRATION_STORE');
    assert.match(wrongVersion.message, /field "2" has version "3"/);

    await conn.command('HSET', table, '2', '[1, 2]');
    const notObject = await dbwardError(store.listApplied(conn, table), 'E_MIGRATION_STORE');
    assert.match(notObject.message, /field "2" is not a JSON object/);
  });

  it('refuses lock timings where renewal would come after expiry', () => {
    assert.throws(() => createRedisMigrationStore({ lockTtlMs: 100, renewEveryMs: 100 }), RangeError);
    assert.throws(() => createRedisMigrationStore({ renewEveryMs: 0 }), RangeError);
  });
});

describe('redis migration store: lock', { skip }, () => {
  // Short timings, so renewal and expiry can be watched within a test.
  const ttlMs = 400;
  const store = createRedisMigrationStore({ lockTtlMs: ttlMs, renewEveryMs: 100, retryDelayMs: 20 });
  let db: TestDatabase;
  let a: KeyValueConnection;
  let b: KeyValueConnection;

  before(async () => {
    db = await freshDatabase('redis');
    a = await connectKeyValue(redisEngine, db.url);
    b = await connectKeyValue(redisEngine, db.url);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await db?.cleanup();
  });
  beforeEach(async () => {
    await a.command('FLUSHDB');
  });

  it('is exclusive across connections, names the holder, and frees on release', async () => {
    assert.equal(await store.lockHolder(b), null);
    const lockA = await store.acquireLock(a, { timeoutMs: 0, owner: owner() });
    // One fixed key with an expiry, whatever the tracking key is.
    const pttl = Number(await b.command('PTTL', redisLockKey));
    assert.ok(pttl > 0 && pttl <= ttlMs, `PTTL ${pttl}`);

    const holder = await store.lockHolder(b);
    assert.ok(holder);
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.host, hostname());
    assert.match(holder.since ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(holder.description, `pid ${process.pid} on ${hostname()} since ${holder.since}`);

    // timeoutMs 0: one try, no waiting.
    const started = Date.now();
    const err = await lockedError(store.acquireLock(b, { timeoutMs: 0, owner: owner({ host: 'host-b' }) }));
    assert.ok(Date.now() - started < 250, 'did not wait');
    assert.equal(
      err.message,
      `Another migration run holds the lock on Redis database ${db.name}: ` +
        `pid ${process.pid} on ${hostname()} since ${holder.since}`,
    );
    assert.match(err.hint ?? '', /dbward migrate unlock/);
    assert.match(err.hint ?? '', /expires by itself 400 ms after its holder stops renewing/);

    const waited = Date.now();
    await lockedError(store.acquireLock(b, { timeoutMs: 300, owner: owner() }));
    assert.ok(Date.now() - waited >= 290, 'waited for the timeout');

    await lockA.release();
    await lockA.release(); // idempotent
    assert.equal(await store.lockHolder(b), null);

    const lockB = await store.acquireLock(b, { timeoutMs: 0, owner: owner({ host: 'host-b' }) });
    assert.equal((await store.lockHolder(a))?.host, 'host-b');
    await lockB.release();
  });

  it('a waiting run gets the lock as soon as the holder releases it', async () => {
    const lockA = await store.acquireLock(a, { timeoutMs: 0, owner: owner() });
    const waiting = store.acquireLock(b, { timeoutMs: 5_000, owner: owner({ host: 'host-b' }) });
    await sleep(250);
    const released = Date.now();
    await lockA.release();
    const lockB = await waiting;
    assert.ok(Date.now() - released < 1_000, 'taken soon after the release');
    assert.equal((await store.lockHolder(a))?.host, 'host-b');
    await lockB.release();
  });

  it('release never frees a lock now held by another run', async () => {
    const lockA = await store.acquireLock(a, { timeoutMs: 0, owner: owner() });
    assert.equal(await store.breakLock(b), true);
    const lockB = await store.acquireLock(b, { timeoutMs: 0, owner: owner({ host: 'host-b' }) });
    await lockA.release();
    assert.equal((await store.lockHolder(a))?.host, 'host-b');
    // …and A's renewals, had they run, would not have extended B's key either (see next test).
    await lockB.release();
    assert.equal(await store.lockHolder(a), null);
  });

  it('a broken lock is noticed as lost at the next renewal and never recreated', async () => {
    const lockA = await store.acquireLock(a, { timeoutMs: 0, owner: owner() });
    assert.ok(lockA instanceof RedisMigrationLock);
    assert.equal(lockA.lost, false);
    assert.equal(await store.breakLock(b), true);
    await sleep(250);
    assert.equal(lockA.lost, true);
    assert.equal(await a.command('EXISTS', redisLockKey), 0);
    // Another run takes it; A (no longer renewing) must not touch it.
    const lockB = await store.acquireLock(b, { timeoutMs: 0, owner: owner({ host: 'host-b' }) });
    await sleep(250);
    assert.equal((await store.lockHolder(a))?.host, 'host-b');
    await lockA.release();
    await lockB.release();
  });

  it('renewal keeps a short-TTL lock alive well past its TTL', async () => {
    const lockA = await store.acquireLock(a, { timeoutMs: 0, owner: owner() });
    await sleep(1_600);
    const pttl = Number(await b.command('PTTL', redisLockKey));
    assert.ok(pttl > 0, `still held after 4 TTLs (PTTL ${pttl})`);
    await lockedError(store.acquireLock(b, { timeoutMs: 0, owner: owner() }));
    assert.ok(lockA instanceof RedisMigrationLock && !lockA.lost);
    await lockA.release();
    assert.equal(await a.command('EXISTS', redisLockKey), 0);
  });

  it('lockHolder and breakLock', async () => {
    assert.equal(await store.lockHolder(a), null);
    assert.equal(await store.breakLock(a), false);
    const lockA = await store.acquireLock(a, { timeoutMs: 0, owner: owner() });
    assert.equal(await store.breakLock(b), true);
    assert.equal(await store.lockHolder(b), null);
    assert.equal(await store.breakLock(b), false);
    await lockA.release();
  });

  it('a key with our name that dbward did not write is reported, not parsed', async () => {
    await a.command('SET', redisLockKey, 'someone else');
    assert.deepEqual(await store.lockHolder(b), {
      pid: null,
      host: null,
      since: null,
      description: `the key ${redisLockKey} holds a value that is not dbward's lock`,
    });
    const err = await lockedError(store.acquireLock(b, { timeoutMs: 0, owner: owner() }));
    assert.match(err.message, /holds a value that is not dbward's lock$/);
    assert.match(err.hint ?? '', /no expiry, so it will not go away by itself/);
    assert.equal(await store.breakLock(b), true);

    await a.command('HSET', redisLockKey, 'x', '1');
    assert.equal(
      (await store.lockHolder(b))?.description,
      `the key ${redisLockKey} holds a hash that is not dbward's lock`,
    );
  });

  it('a holder killed with SIGKILL frees the lock once its TTL runs out', async () => {
    const childTtl = 1_000;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', holderFixture, db.url, String(childTtl), '200'],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const pid = await waitForLocked(child);
      const err = await lockedError(store.acquireLock(b, { timeoutMs: 0, owner: owner() }));
      assert.match(err.message, new RegExp(`: pid ${pid} on ${hostname()} since `));

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      const killed = Date.now();
      // Nothing released it: the key is still there until it expires.
      assert.equal((await store.lockHolder(a))?.pid, pid);
      const lock = await store.acquireLock(b, { timeoutMs: 5_000, owner: owner() });
      const freedAfter = Date.now() - killed;
      assert.ok(freedAfter <= childTtl + 500, `freed ${freedAfter} ms after the kill`);
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
