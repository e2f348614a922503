/**
 * `dbward migrate unlock [--force]` and `migrate lock` on real PostgreSQL, MariaDB and SQLite
 * databases, through the built CLI: a free lock, a lock held by a live process (refused without
 * --force, broken with it, and the next `migrate up` gets the lock), a holder whose process is
 * gone on this host (freed without --force), a SQLite lock whose heartbeat stopped, the --json
 * shapes, and the permission errors when the unlocking user may not end the holder's session.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { open, openSql, type Database, type SqlDatabase } from '../../src/index.js';
import { migrationLockKey } from '../../src/engines/postgres/postgres-migration-store.js';
import { lockNameSql } from '../../src/engines/mysql/mysql-migration-lock.js';
import type { MigrationLock } from '../../src/engines/contract.js';
import { trackingStoreFor } from '../../src/migrate/tracking-store.js';
import {
  adminUrl,
  freshDatabase,
  skipReason,
  type TestDatabase,
  type TestEngine,
} from '../harness/test-databases.js';
import { repoRoot, runCli, type CliRun } from '../helpers/run-cli.js';

const holderFixture = fileURLToPath(new URL('./fixtures/hold-migration-lock.ts', import.meta.url));

/** Every child started here, so afterEach can SIGKILL whatever a test left behind. */
const children = new Set<ChildProcess>();

/** Start the fixture that takes the lock and stays alive; resolves with its pid once it holds the lock. */
async function holdLock(url: string): Promise<{ child: ChildProcess; pid: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', holderFixture, url], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the holder did not lock within 20 s: ${stderr}`)),
      20_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const match = /locked (\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the holder exited (code ${code}) before locking: ${stderr}`));
    });
  });
  return { child, pid };
}

/** The pid of a process that has exited: certainly not running on this host now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(child.pid);
  return child.pid;
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const migration =
  '-- migrate:up\nCREATE TABLE after_unlock (id INTEGER);\n\n-- migrate:down\nDROP TABLE after_unlock;\n';

interface UnlockJson {
  wasLocked: boolean;
  holder: {
    pid: number | null;
    host: string | null;
    since: string | null;
    description: string;
    stale?: boolean;
  } | null;
  released: boolean;
  reason: string;
}

for (const engine of ['postgres', 'mysql', 'sqlite'] as TestEngine[]) {
  describe(`migrate unlock on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let db: SqlDatabase;
    let dir: string;
    const cli = (args: string[], url = database.url): Promise<CliRun> =>
      runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: url } });

    /** The server session (PostgreSQL backend pid, MySQL connection id) holding the lock, or null. */
    const lockSession = async (): Promise<string | null> => {
      if (engine === 'postgres') {
        const { rows } = await db.query<{ pid: number }>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
              AND (classid::bigint << 32) + objid::bigint = $1::bigint
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          [migrationLockKey.toString()],
        );
        return rows[0] ? String(rows[0].pid) : null;
      }
      if (engine === 'mysql') {
        const { rows } = await db.query<{ id: number | string | null }>(
          `SELECT IS_USED_LOCK(${lockNameSql}) AS id`,
        );
        return rows[0]?.id == null ? null : String(rows[0].id);
      }
      const { rows } = await db.query<{ token: string }>(
        "SELECT token FROM dbward_migration_lock WHERE id = 1 AND EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'dbward_migration_lock')",
      );
      return rows[0]?.token ?? null;
    };
    const sessionExists = async (id: string): Promise<boolean> => {
      const sql =
        engine === 'postgres'
          ? 'SELECT 1 FROM pg_stat_activity WHERE pid = $1'
          : 'SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ?';
      return (await db.query(sql, [Number(id)])).rows.length > 0;
    };

    beforeEach(async () => {
      database = await freshDatabase(engine);
      db = await openSql(database.url);
      if (engine === 'sqlite') {
        // lockSession reads the lock table; on SQLite acquireLock would create it anyway.
        await db.query(
          'CREATE TABLE IF NOT EXISTS dbward_migration_lock (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, since TEXT NOT NULL, heartbeat TEXT NOT NULL)',
        );
      }
      dir = mkdtempSync(path.join(tmpdir(), 'dbward-unlock-'));
      mkdirSync(path.join(dir, 'migrations'));
      writeFileSync(path.join(dir, 'migrations', '1_after_unlock.sql'), migration);
    });
    afterEach(async () => {
      for (const child of children) child.kill('SIGKILL');
      await db?.close();
      await database?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a free lock: lock and unlock say so, exit 0, and --json has the documented shape', async () => {
      const lock = await cli(['lock']);
      assert.equal(lock.code, 0, lock.all);
      assert.match(lock.stdout, /The migration lock is free\./);
      const unlock = await cli(['unlock']);
      assert.equal(unlock.code, 0, unlock.all);
      assert.match(unlock.stdout, /free: nothing to unlock/);
      const json = await cli(['unlock', '--json']);
      assert.equal(json.code, 0, json.all);
      assert.deepEqual(JSON.parse(json.stdout), {
        wasLocked: false,
        holder: null,
        released: false,
        reason: 'free',
      });
      assert.deepEqual(JSON.parse((await cli(['lock', '--json'])).stdout), { locked: false, holder: null });
    });

    it(
      'a live holder: unlock refuses naming it, the lock stays; --force breaks it and the next up runs',
      { timeout: 90_000 },
      async () => {
        const { child, pid } = await holdLock(database.url);
        const session = await lockSession();
        assert.ok(session, 'the fixture holds the lock');

        const shown = await cli(['lock', '--json']);
        assert.equal(shown.code, 0, shown.all);
        const locked = JSON.parse(shown.stdout) as { locked: boolean; holder: UnlockJson['holder'] };
        assert.equal(locked.locked, true);
        assert.equal(locked.holder?.pid, pid);
        assert.equal(locked.holder?.host, hostname());
        if (engine === 'sqlite') assert.equal(locked.holder?.stale, false);
        else assert.equal(locked.holder?.stale, undefined);

        const refused = await cli(['unlock']);
        assert.equal(refused.code, 1, refused.all);
        assert.match(refused.stderr, new RegExp(`error: The migration lock on .* is held by pid ${pid} on `));
        assert.match(refused.stderr, /looks alive; not unlocking/);
        assert.match(refused.stderr, /hint: .*dbward migrate unlock --force/);
        const refusedJson = await cli(['unlock', '--json']);
        assert.equal(refusedJson.code, 1);
        const error = (
          JSON.parse(refusedJson.stdout) as { error: { code: string; message: string; exitCode: number } }
        ).error;
        assert.equal(error.code, 'E_MIGRATION_LOCK_HELD');
        assert.equal(error.exitCode, 1);
        assert.match(error.message, new RegExp(`pid ${pid}`));
        assert.equal(await lockSession(), session, 'the lock is still held by the same session');
        assert.equal(child.exitCode, null, 'the holder is still running');

        // A run cannot get the lock meanwhile.
        const blocked = await cli(['up', '--lock-timeout', '1s']);
        assert.equal(blocked.code, 1, blocked.all);
        assert.match(blocked.stderr, /holds the lock/);

        const forced = await cli(['unlock', '--force', '--json']);
        assert.equal(forced.code, 0, forced.all);
        const result = JSON.parse(forced.stdout) as UnlockJson;
        assert.equal(result.wasLocked, true);
        assert.equal(result.released, true);
        assert.equal(result.reason, 'forced');
        assert.equal(result.holder?.pid, pid);
        assert.deepEqual(Object.keys(result).sort(), ['holder', 'reason', 'released', 'wasLocked']);
        assert.equal(await lockSession(), null, 'the lock is free');
        if (engine !== 'sqlite') {
          // Its server session was ended, although the process itself lives on.
          await waitFor('the holder session to end', 5_000, async () => !(await sessionExists(session)));
          assert.equal(child.exitCode, null);
        }

        const up = await cli(['up', '--lock-timeout', '2s']);
        assert.equal(up.code, 0, up.all);
        assert.match(up.stdout, /applied 1_after_unlock/);
      },
    );

    it('a holder whose process is gone on this host is freed without --force', async () => {
      const handle: Database = await open(database.url);
      let lock: MigrationLock | undefined;
      try {
        const gone = await deadPid();
        lock = await (
          await trackingStoreFor(handle)
        ).acquireLock({
          timeoutMs: 2_000,
          owner: { pid: gone, host: hostname(), token: randomUUID() },
        });
        const session = await lockSession();
        assert.ok(session, 'the lock is held (its session is open)');

        const unlock = await cli(['unlock']);
        assert.equal(unlock.code, 0, unlock.all);
        assert.match(
          unlock.stdout,
          new RegExp(
            `Released the migration lock held by pid ${gone} on .*that process no longer exists on this host`,
          ),
        );
        assert.equal(await lockSession(), null);
        if (engine !== 'sqlite') assert.equal(await sessionExists(session), false, 'its session was ended');
        // A release after the break is harmless.
        await lock.release();
        lock = undefined;
        assert.equal((await cli(['up', '--lock-timeout', '2s'])).code, 0);
      } finally {
        await lock?.release();
        await handle.close();
      }
    });

    it('unlock --json after freeing a gone holder reports it', async () => {
      const handle = await open(database.url);
      try {
        const gone = await deadPid();
        const lock = await (
          await trackingStoreFor(handle)
        ).acquireLock({
          timeoutMs: 2_000,
          owner: { pid: gone, host: hostname(), token: randomUUID() },
        });
        const json = await cli(['unlock', '--json']);
        assert.equal(json.code, 0, json.all);
        const result = JSON.parse(json.stdout) as UnlockJson;
        assert.equal(result.wasLocked, true);
        assert.equal(result.released, true);
        assert.equal(result.reason, 'holder-gone');
        assert.equal(result.holder?.pid, gone);
        assert.equal(result.holder?.host, hostname());
        assert.match(result.holder?.description ?? '', new RegExp(`^pid ${gone} on `));
        await lock.release();
      } finally {
        await handle.close();
      }
    });

    if (engine === 'sqlite') {
      it('a lock row whose heartbeat stopped shows as stale and is freed without --force', async () => {
        const insert = (heartbeat: string): Promise<unknown> =>
          db.query(
            `INSERT INTO dbward_migration_lock (id, token, pid, host, since, heartbeat)
             VALUES (1, 'theirs', 4242, 'elsewhere', '2026-01-01T00:00:00.000Z', ?)`,
            [heartbeat],
          );
        // Another host with a fresh heartbeat: nothing says it is gone.
        await insert(new Date().toISOString());
        const fresh = JSON.parse((await cli(['lock', '--json'])).stdout) as { holder: UnlockJson['holder'] };
        assert.equal(fresh.holder?.stale, false);
        const refused = await cli(['unlock']);
        assert.equal(refused.code, 1, refused.all);
        assert.match(refused.stderr, /held by pid 4242 on elsewhere/);
        assert.match(refused.stderr, /deletes its lock record/);
        await db.query('DELETE FROM dbward_migration_lock');

        await insert(new Date(Date.now() - 3 * 60_000).toISOString());
        const shown = await cli(['lock', '--json']);
        assert.equal(shown.code, 0, shown.all);
        assert.deepEqual(JSON.parse(shown.stdout), {
          locked: true,
          holder: {
            pid: 4242,
            host: 'elsewhere',
            since: '2026-01-01T00:00:00.000Z',
            description: 'pid 4242 on elsewhere since 2026-01-01T00:00:00.000Z',
            stale: true,
          },
        });
        const unlock = await cli(['unlock', '--json']);
        assert.equal(unlock.code, 0, unlock.all);
        const result = JSON.parse(unlock.stdout) as UnlockJson;
        assert.equal(result.reason, 'stale');
        assert.equal(result.released, true);
        assert.equal(await lockSession(), null);
      });
    }
  });
}

/**
 * The unlocking user may not end another user's session: a clear error naming the privilege,
 * and with the privilege granted the same command works.
 */
describe('migrate unlock --force without the privilege to end the session', () => {
  const suffix = (): string => randomBytes(4).toString('hex');
  const asUser = (url: string, user: string, password: string): string => {
    const u = new URL(url);
    u.username = user;
    u.password = password;
    return u.toString();
  };
  const run = (url: string, args: string[]): Promise<CliRun> =>
    runCli(['migrate', ...args], { cwd: tmpdir(), env: { DATABASE_URL: url } });

  afterEach(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  it(
    'postgres: names GRANT pg_signal_backend, and works once granted',
    { skip: skipReason('postgres'), timeout: 60_000 },
    async () => {
      const database = await freshDatabase('postgres');
      const admin = await openSql(adminUrl('postgres')!);
      const a = `dbward_holder_${suffix()}`;
      const b = `dbward_unlocker_${suffix()}`;
      try {
        await admin.query(`CREATE ROLE ${a} LOGIN PASSWORD 'pw-a'`);
        await admin.query(`CREATE ROLE ${b} LOGIN PASSWORD 'pw-b'`);
        const { pid } = await holdLock(asUser(database.url, a, 'pw-a'));
        const denied = await run(asUser(database.url, b, 'pw-b'), ['unlock', '--force', '--json']);
        assert.equal(denied.code, 1, denied.all);
        const error = (
          JSON.parse(denied.stdout) as { error: { code: string; message: string; hint: string } }
        ).error;
        assert.equal(error.code, 'E_MIGRATION_UNLOCK_DENIED');
        assert.match(error.message, new RegExp(`Role ${b} may not end the session`));
        assert.match(error.hint, new RegExp(`GRANT pg_signal_backend TO "${b}"`));
        assert.match(error.hint, new RegExp(`as role ${a}`));
        // Still held by the fixture (its pid shows to a role that may read its application_name).
        const db = await openSql(database.url);
        try {
          const holder = await (await trackingStoreFor(db)).lockHolder();
          assert.equal(holder?.pid, pid);
        } finally {
          await db.close();
        }

        await admin.query(`GRANT pg_signal_backend TO ${b}`);
        const forced = await run(asUser(database.url, b, 'pw-b'), ['unlock', '--force', '--json']);
        assert.equal(forced.code, 0, forced.all);
        assert.equal((JSON.parse(forced.stdout) as UnlockJson).released, true);
      } finally {
        for (const child of children) child.kill('SIGKILL');
        await database.cleanup();
        await admin.query(`DROP ROLE IF EXISTS ${a}`);
        await admin.query(`DROP ROLE IF EXISTS ${b}`);
        await admin.close();
      }
    },
  );

  it(
    'mysql: names CONNECTION ADMIN, and works once granted',
    { skip: skipReason('mysql'), timeout: 60_000 },
    async () => {
      const database = await freshDatabase('mysql');
      const admin = await openSql(adminUrl('mysql')!);
      const a = `dbw_h_${suffix()}`;
      const b = `dbw_u_${suffix()}`;
      try {
        for (const [user, password] of [
          [a, 'pw-a'],
          [b, 'pw-b'],
        ] as const) {
          await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
          await admin.query(`GRANT ALL PRIVILEGES ON \`${database.name}\`.* TO '${user}'@'%'`);
        }
        const { pid } = await holdLock(asUser(database.url, a, 'pw-a'));
        const denied = await run(asUser(database.url, b, 'pw-b'), ['unlock', '--force', '--json']);
        assert.equal(denied.code, 1, denied.all);
        const error = (
          JSON.parse(denied.stdout) as { error: { code: string; message: string; hint: string } }
        ).error;
        assert.equal(error.code, 'E_MIGRATION_UNLOCK_DENIED');
        assert.match(error.message, new RegExp(`pid ${pid} on `));
        assert.match(error.message, new RegExp(`^User '${b}'@'%' may not end the connection`));
        assert.ok(error.hint.includes(`GRANT CONNECTION ADMIN ON *.* TO '${b}'@'%'`), error.hint);

        await admin.query(`GRANT CONNECTION ADMIN ON *.* TO '${b}'@'%'`);
        const forced = await run(asUser(database.url, b, 'pw-b'), ['unlock', '--force', '--json']);
        assert.equal(forced.code, 0, forced.all);
        assert.equal((JSON.parse(forced.stdout) as UnlockJson).released, true);
      } finally {
        for (const child of children) child.kill('SIGKILL');
        await database.cleanup();
        await admin.query(`DROP USER IF EXISTS '${a}'@'%'`);
        await admin.query(`DROP USER IF EXISTS '${b}'@'%'`);
        await admin.close();
      }
    },
  );
});
