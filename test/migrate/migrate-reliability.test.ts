/**
 * Migration reliability on real PostgreSQL and SQLite databases, through the built CLI: a run
 * killed with SIGKILL mid-migration leaves no trace and no stuck lock, a lock timeout names the
 * holder, `transaction:false` sections run outside a transaction (CREATE INDEX CONCURRENTLY), and
 * a broken migration file stops `up` before it takes the lock or creates anything.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSql, type SqlDatabase } from '../../src/index.js';
import { migrationLockKey } from '../../src/engines/postgres/postgres-migration-store.js';
import { freshDatabase, skipReason, type TestDatabase, type TestEngine } from '../harness/test-databases.js';
import { binPath, runCli, type CliRun } from '../helpers/run-cli.js';

/** A project directory with `migrations/` holding the given files. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-migrate-rel-'));
  mkdirSync(path.join(dir, 'migrations'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'migrations', name), text);
  return dir;
}

/** A `dbward migrate …` child left running, for tests that kill it or hold its lock. */
interface RunningCli {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every child started here, so afterEach can SIGKILL whatever a failed test left behind. */
const children = new Set<ChildProcess>();

function startCli(args: string[], cwd: string, databaseUrl: string): RunningCli {
  // The same clean environment as runCli: nothing from the developer's shell leaks in.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('DBWARD_') && k !== 'DATABASE_URL' && k !== 'NODE_ENV') env[k] = v;
  }
  env.DATABASE_URL = databaseUrl;
  env.NO_COLOR = '1';
  const child = spawn(process.execPath, [binPath, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, stderr: () => stderr, stdout: () => stdout, exited };
}

async function killHard(run: RunningCli): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  await run.exited;
}

/** Poll `check` every 100 ms until it returns true; fail after `timeoutMs`, saying what was awaited. */
async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const firstMigration =
  '-- migrate:up\nCREATE TABLE first_t (id INTEGER);\n\n-- migrate:down\nDROP TABLE first_t;\n';

/**
 * A migration that creates a table and then blocks for a long time inside the same transaction.
 * PostgreSQL: pg_sleep(30). SQLite: a recursive CTE counting to 300 million (about a minute),
 * run synchronously by better-sqlite3, so the process really is stuck in the statement.
 */
const slowMigration: Record<TestEngine, string> = {
  postgres:
    '-- migrate:up\nCREATE TABLE slow_t (n bigint);\nSELECT pg_sleep(30);\n\n-- migrate:down\nDROP TABLE slow_t;\n',
  sqlite:
    '-- migrate:up\nCREATE TABLE slow_t (n INTEGER);\n' +
    'INSERT INTO slow_t SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT x FROM c);\n' +
    '\n-- migrate:down\nDROP TABLE slow_t;\n',
  mysql: '',
  redis: '',
};
const fastMigration =
  '-- migrate:up\nCREATE TABLE slow_t (n INTEGER);\nINSERT INTO slow_t VALUES (1);\n\n-- migrate:down\nDROP TABLE slow_t;\n';

for (const engine of ['postgres', 'sqlite'] as TestEngine[]) {
  describe(`migrate reliability on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let db: SqlDatabase;
    const dirs: string[] = [];
    const cli = (dir: string, args: string[], timeoutMs = 60_000): Promise<CliRun> =>
      runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: database.url }, timeoutMs });
    const newProject = (files: Record<string, string>): string => {
      const dir = project(files);
      dirs.push(dir);
      return dir;
    };
    const tables = async (): Promise<string[]> => {
      const sql =
        engine === 'postgres'
          ? "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
          : "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY 1";
      return (await db.query<{ name: string }>(sql)).rows.map((r) => r.name);
    };
    const states = async (dir: string): Promise<[string, string][]> => {
      const r = await cli(dir, ['status', '--json']);
      assert.equal(r.code, 0, r.all);
      const parsed = JSON.parse(r.stdout) as { migrations: { version: string; state: string }[] };
      return parsed.migrations.map((m) => [m.version, m.state]);
    };
    /** Started the slow migration and waited until it is really inside its long statement. */
    const startSlowRun = async (dir: string, extraArgs: string[] = []): Promise<RunningCli> => {
      const run = startCli(['migrate', 'up', ...extraArgs], dir, database.url);
      const exitedEarly = run.exited.then(({ code }) => {
        throw new Error(`the slow run exited early (code ${code}): ${run.stderr()}`);
      });
      exitedEarly.catch(() => undefined);
      if (engine === 'postgres') {
        await Promise.race([
          exitedEarly,
          waitFor('pg_sleep to show in pg_stat_activity', 20_000, async () => {
            const { rows } = await db.query(
              `SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND state = 'active'
                  AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()`,
            );
            return rows.length > 0;
          }),
        ]);
      } else {
        await Promise.race([
          exitedEarly,
          waitFor('"applying 2_slow" on stderr', 20_000, () => /applying 2_slow/.test(run.stderr())),
        ]);
        // The line is written just before the transaction starts; give it time to enter the statement.
        await sleep(700);
      }
      assert.equal(run.child.exitCode, null, `still running: ${run.stderr()}`);
      return run;
    };

    beforeEach(async () => {
      database = await freshDatabase(engine);
      db = await openSql(database.url);
    });
    afterEach(async () => {
      for (const child of children) child.kill('SIGKILL');
      await db?.close();
      await database?.cleanup();
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    });

    it(
      'a run killed with SIGKILL mid-migration leaves no trace, and the next run applies it',
      { timeout: 120_000 },
      async () => {
        const dir = newProject({ '1_first.sql': firstMigration, '2_slow.sql': slowMigration[engine] });
        const run = await startSlowRun(dir);
        await killHard(run);
        assert.match(run.stderr(), /applying 1_first[\s\S]*applying 2_slow/);

        if (engine === 'postgres') {
          // The lock lives on an idle session of its own: the server frees it as soon as the socket closes.
          await waitFor('the advisory lock to be released', 10_000, async () => {
            const { rows } = await db.query(
              `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                  AND (classid::bigint << 32) + objid::bigint = $1::bigint`,
              [migrationLockKey.toString()],
            );
            return rows.length === 0;
          });
        }
        // No trace: the table created before the long statement is not there, no tracking row.
        const present = await tables();
        assert.ok(!present.includes('slow_t'), `slow_t must not exist: ${present.join(', ')}`);
        assert.ok(present.includes('first_t'));
        const tracked = await db.query<{ version: string }>(
          'SELECT version FROM dbward_migrations ORDER BY version',
        );
        assert.deepEqual(
          tracked.rows.map((r) => r.version),
          ['1'],
        );
        assert.deepEqual(await states(dir), [
          ['1', 'applied'],
          ['2', 'pending'],
        ]);

        // The next run (with a fast version of the file) is not blocked by the dead run. On
        // PostgreSQL the killed client's backend may still be inside pg_sleep, holding its
        // uncommitted CREATE TABLE until the sleep ends; the next run may wait for that, not fail.
        writeFileSync(path.join(dir, 'migrations', '2_slow.sql'), fastMigration);
        const started = Date.now();
        const next = await cli(dir, ['up', '--lock-timeout', '45s'], 60_000);
        const elapsed = Date.now() - started;
        assert.equal(next.code, 0, next.all);
        assert.match(next.stdout, /applied 2_slow/);
        assert.ok(elapsed < (engine === 'postgres' ? 40_000 : 10_000), `next run took ${elapsed} ms`);
        assert.ok((await tables()).includes('slow_t'));
        assert.deepEqual(
          (await db.query<{ n: number | string }>('SELECT n FROM slow_t')).rows.map((r) => Number(r.n)),
          [1],
        );
        assert.deepEqual(await states(dir), [
          ['1', 'applied'],
          ['2', 'applied'],
        ]);
        if (engine === 'sqlite') {
          // The dead holder's lock row was taken over and then released.
          const lockRows = await db.query('SELECT * FROM dbward_migration_lock');
          assert.equal(lockRows.rows.length, 0);
        }
      },
    );

    it(
      'a run that times out waiting for the lock names the holder: pid and host',
      { timeout: 90_000 },
      async () => {
        const dir = newProject({ '1_first.sql': firstMigration, '2_slow.sql': slowMigration[engine] });
        const holder = await startSlowRun(dir);
        try {
          const started = Date.now();
          const waiter = await cli(dir, ['up', '--lock-timeout', '1s'], 30_000);
          const elapsed = Date.now() - started;
          assert.equal(waiter.code, 1, waiter.all);
          assert.match(waiter.stderr, /lock/i);
          assert.match(waiter.stderr, new RegExp(`pid ${holder.child.pid}\\b`), waiter.stderr);
          assert.ok(waiter.stderr.includes(`on ${hostname()}`), waiter.stderr);
          // SQLite's BEGIN IMMEDIATE may sit in busy_timeout (at most 5 s) before the 1 s deadline is seen.
          assert.ok(elapsed < 15_000, `the waiter took ${elapsed} ms`);
          assert.equal(holder.child.exitCode, null, 'the holder is still running');
        } finally {
          await killHard(holder);
        }
      },
    );

    it(
      'a broken migration file stops up with exit 2 before the lock: nothing is created',
      { timeout: 60_000 },
      async () => {
        const dir = newProject({
          '1_first.sql': firstMigration,
          '2_bad.sql': '-- migrate:up\nCREATE TABLE bad_t (id INTEGER);\n-- migrate:sideways\nSELECT 1;\n',
        });
        const r = await cli(dir, ['up']);
        assert.equal(r.code, 2, r.all);
        assert.match(r.stderr, /2_bad\.sql:3: Unknown marker "-- migrate:sideways"/);
        // Not even the tracking table (nor SQLite's lock table): the file was read before anything else.
        assert.deepEqual(await tables(), []);

        // With another run holding the lock, the broken directory still fails at once with exit 2
        // (it neither waits for the lock nor times out on it).
        let release: () => Promise<void>;
        if (engine === 'postgres') {
          const { default: pg } = await import('pg');
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          await client.query(`SELECT pg_advisory_lock(${migrationLockKey})`);
          release = () => client.end();
        } else {
          // A live holder: this test process, on this host, with a fresh heartbeat.
          const token = randomBytes(8).toString('hex');
          const now = new Date().toISOString();
          await db.query(`CREATE TABLE dbward_migration_lock (
          id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, pid INTEGER NOT NULL,
          host TEXT NOT NULL, since TEXT NOT NULL, heartbeat TEXT NOT NULL)`);
          await db.query('INSERT INTO dbward_migration_lock VALUES (1, ?, ?, ?, ?, ?)', [
            token,
            process.pid,
            hostname(),
            now,
            now,
          ]);
          release = async () => {
            const { rows } = await db.query<{ token: string }>('SELECT token FROM dbward_migration_lock');
            assert.deepEqual(
              rows.map((row) => row.token),
              [token],
              'the lock row is untouched',
            );
          };
        }
        try {
          const started = Date.now();
          const again = await cli(dir, ['up', '--lock-timeout', '30s'], 45_000);
          const elapsed = Date.now() - started;
          assert.equal(again.code, 2, again.all);
          assert.match(again.stderr, /Unknown marker/);
          assert.ok(elapsed < 10_000, `the broken run took ${elapsed} ms: it waited for the lock`);
          assert.ok(!(await tables()).includes('dbward_migrations'));
        } finally {
          await release();
        }
      },
    );

    if (engine === 'postgres') {
      it('transaction:false runs CREATE INDEX CONCURRENTLY, and its down DROP INDEX CONCURRENTLY', async () => {
        const dir = newProject({
          '1_users.sql':
            '-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n' +
            "INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 1000) g;\n\n" +
            '-- migrate:down\nDROP TABLE users;\n',
          '2_users_email.sql':
            '-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n\n' +
            '-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY users_email;\n',
        });
        const index = async (): Promise<{ valid: boolean }[]> =>
          (
            await db.query<{ valid: boolean }>(
              `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relname = 'users_email'`,
            )
          ).rows;

        const up = await cli(dir, ['up']);
        assert.equal(up.code, 0, up.all);
        assert.match(up.stdout, /applied 2_users_email/);
        assert.deepEqual(await index(), [{ valid: true }]);
        assert.deepEqual(await states(dir), [
          ['1', 'applied'],
          ['2', 'applied'],
        ]);

        const down = await cli(dir, ['down']);
        assert.equal(down.code, 0, down.all);
        assert.match(down.stdout, /rolled back 2_users_email/);
        assert.deepEqual(await index(), []);
        assert.ok((await tables()).includes('users'));
        assert.deepEqual(await states(dir), [
          ['1', 'applied'],
          ['2', 'pending'],
        ]);

        // And again: up after down works (nothing half-done was left behind).
        const reapply = await cli(dir, ['up']);
        assert.equal(reapply.code, 0, reapply.all);
        assert.deepEqual(await index(), [{ valid: true }]);
      });

      // Regression: the advisory lock lives on its own idle session, which the server drops the
      // moment a killed client's socket closes, while the dead run's migration session kept
      // executing until it next wrote to the socket — so the next run raced it. Migration
      // sessions now have client_connection_check_interval = 1 s (PostgreSQL 14+), and a
      // transaction:false section runs statement by statement with its progress recorded.
      it(
        'a run killed inside a transaction:false section: the next run is not raced by the dead run',
        { timeout: 90_000 },
        async () => {
          const dir = newProject({
            '1_first.sql': firstMigration,
            '2_slow.sql':
              '-- migrate:up transaction:false\nCREATE TABLE nt_t (n int);\nSELECT pg_sleep(15);\n',
          });
          const run = startCli(['migrate', 'up'], dir, database.url);
          try {
            await waitFor('pg_sleep(15) to show in pg_stat_activity', 20_000, async () => {
              const { rows } = await db.query(
                `SELECT pid FROM pg_stat_activity
                  WHERE datname = current_database() AND state = 'active'
                    AND query LIKE '%pg_sleep(15)%' AND pid <> pg_backend_pid()`,
              );
              return rows.length > 0;
            });
          } finally {
            await killHard(run);
          }
          writeFileSync(
            path.join(dir, 'migrations', '2_slow.sql'),
            '-- migrate:up transaction:false\nCREATE TABLE nt_t (n int);\n',
          );
          const next = await cli(dir, ['up', '--lock-timeout', '45s'], 60_000);
          assert.equal(next.code, 0, next.all);
          assert.deepEqual(await states(dir), [
            ['1', 'applied'],
            ['2', 'applied'],
          ]);
        },
      );
    }
  });
}
