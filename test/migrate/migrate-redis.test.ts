/**
 * Redis migrations through the CLI, on the real test server: TypeScript scripts that get the
 * key-value handle, tracked in a hash, under the same lock and commands as the SQL engines.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openKeyValue, type KeyValueDatabase } from '../../src/index.js';
import { trackingStoreFor } from '../../src/migrate/tracking-store.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-migrate-redis-'));
  mkdirSync(path.join(dir, 'migrations'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'migrations', name), text);
  return dir;
}

// No import of 'dbward' (the temp project has no node_modules): the handle's shape is enough.
const script = (up: string, down: string): string => `
type Db = { command(name: string, ...args: (string | number)[]): Promise<unknown> };
export async function up(db: Db): Promise<void> {
  ${up}
}
export async function down(db: Db): Promise<void> {
  ${down}
}
`;

const settings = script(
  "await db.command('HSET', 'settings', 'theme', 'dark', 'lang', 'en');",
  "await db.command('DEL', 'settings');",
);
const counters = script("await db.command('SET', 'visits', '0');", "await db.command('DEL', 'visits');");

describe('migrate on redis', { skip: skipReason('redis') }, () => {
  let database: TestDatabase;
  let db: KeyValueDatabase;
  const cli = (dir: string, ...args: string[]): Promise<CliRun> =>
    runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: database.url } });

  beforeEach(async () => {
    database = await freshDatabase('redis');
    db = await openKeyValue(database.url);
  });
  afterEach(async () => {
    await db?.close();
    await database?.cleanup();
  });

  it('up runs the scripts once and records them in a hash; down undoes the newest', async () => {
    const dir = project({ '1_settings.ts': settings, '2_counters.ts': counters });
    const up = await cli(dir, 'up');
    assert.equal(up.code, 0, up.all);
    assert.match(up.stdout, /2 migration\(s\) applied/);
    assert.deepEqual(await db.command('HGET', 'settings', 'theme'), 'dark');
    assert.equal(await db.command('GET', 'visits'), '0');
    // No schema to dump on Redis: no schema file, and no warning about it.
    assert.doesNotMatch(up.stderr, /schema/i);

    const tracked = (await db.command('HGETALL', 'dbward_migrations')) as unknown;
    const fields = Array.isArray(tracked)
      ? tracked.filter((_, i) => i % 2 === 0)
      : Object.keys(tracked as Record<string, string>);
    assert.deepEqual([...fields].sort(), ['1', '2']);

    const again = await cli(dir, 'up');
    assert.match(again.stdout, /Nothing to apply/);

    const status = JSON.parse((await cli(dir, 'status', '--json')).stdout) as {
      migrations: { version: string; state: string }[];
    };
    assert.deepEqual(
      status.migrations.map((m) => [m.version, m.state]),
      [
        ['1', 'applied'],
        ['2', 'applied'],
      ],
    );

    const down = await cli(dir, 'down');
    assert.equal(down.code, 0, down.all);
    assert.match(down.stdout, /rolled back 2_counters/);
    assert.equal(await db.command('EXISTS', 'visits'), 0);
    assert.equal(await db.command('HGET', 'settings', 'theme'), 'dark');
    const after = JSON.parse((await cli(dir, 'status', '--json')).stdout) as {
      migrations: { version: string; state: string }[];
    };
    assert.deepEqual(
      after.migrations.map((m) => m.state),
      ['applied', 'pending'],
    );
  });

  it('an edited applied script is refused before anything runs', async () => {
    const dir = project({ '1_settings.ts': settings });
    assert.equal((await cli(dir, 'up')).code, 0);
    writeFileSync(path.join(dir, 'migrations', '1_settings.ts'), settings.replace('dark', 'light'));
    writeFileSync(path.join(dir, 'migrations', '2_counters.ts'), counters);
    const up = await cli(dir, 'up');
    assert.equal(up.code, 1, up.all);
    assert.match(up.stderr, /1_settings changed after it was applied/);
    assert.equal(await db.command('EXISTS', 'visits'), 0);
  });

  it('a failing script names its file, records nothing, and runs again once fixed', async () => {
    const failing = script("await db.command('SET', 'half', '1'); throw new Error('boom');", '');
    const dir = project({ '1_settings.ts': settings, '2_fails.ts': failing });
    const up = await cli(dir, 'up');
    assert.equal(up.code, 1, up.all);
    assert.match(up.stderr, /2_fails\.ts/);
    assert.match(up.stderr, /boom/);
    const status = JSON.parse((await cli(dir, 'status', '--json')).stdout) as {
      migrations: { version: string; state: string }[];
    };
    assert.deepEqual(
      status.migrations.map((m) => m.state),
      ['applied', 'pending'],
    );
    writeFileSync(
      path.join(dir, 'migrations', '2_fails.ts'),
      script("await db.command('SET', 'half', '2');", ''),
    );
    assert.equal((await cli(dir, 'up')).code, 0);
    assert.equal(await db.command('GET', 'half'), '2');
  });

  it('a SQL file is refused on Redis with a message that says to write a script', async () => {
    const dir = project({ '1_users.sql': '-- migrate:up\nCREATE TABLE users (id int);\n' });
    const up = await cli(dir, 'up');
    assert.equal(up.code, 2, up.all);
    assert.match(up.stderr, /1_users\.sql: Redis migrations are scripts, not SQL/);
    assert.match(up.stderr, /--ts/);
  });

  it('unlock frees a lock whose holder died on this host, and refuses a live one without --force', async () => {
    const dir = project({ '1_settings.ts': settings });
    const store = await trackingStoreFor(db);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await store.acquireLock({ timeoutMs: 0, owner: { pid: dead, host: hostname(), token: 'gone' } });
    const shown = JSON.parse((await cli(dir, 'lock', '--json')).stdout) as {
      locked: boolean;
      holder: { pid: number };
    };
    assert.equal(shown.locked, true);
    assert.equal(shown.holder.pid, dead);
    const blocked = await cli(dir, 'up', '--lock-timeout', '0');
    assert.equal(blocked.code, 1, blocked.all);
    assert.match(blocked.stderr, new RegExp(`pid ${dead}`));
    const unlock = await cli(dir, 'unlock');
    assert.equal(unlock.code, 0, unlock.all);
    assert.equal((await cli(dir, 'up', '--lock-timeout', '2s')).code, 0);

    // This process is alive: its lock is only broken with --force.
    const live = await store.acquireLock({
      timeoutMs: 0,
      owner: { pid: process.pid, host: hostname(), token: 'alive' },
    });
    const refused = await cli(dir, 'unlock');
    assert.equal(refused.code, 1, refused.all);
    assert.match(refused.stderr, /E_MIGRATION_LOCK_HELD|looks alive|--force/);
    assert.equal((await cli(dir, 'unlock', '--force')).code, 0);
    assert.equal(await db.command('EXISTS', 'dbward:migrate:lock'), 0);
    await live.release();
  });

  it('two runs at once, 10 times: every script runs exactly once', async () => {
    const dir = project({});
    for (let round = 1; round <= 10; round++) {
      // Each round adds a migration that counts its own runs: a second run would make it 2.
      writeFileSync(
        path.join(dir, 'migrations', `${round}_count.ts`),
        script(`await db.command('INCR', 'runs:${round}');`, ''),
      );
      const [a, b] = await Promise.all([cli(dir, 'up'), cli(dir, 'up')]);
      assert.equal(a.code, 0, a.all);
      assert.equal(b.code, 0, b.all);
      const applied = [a, b].filter((r) => /applied \d+_count/.test(r.stdout));
      assert.equal(applied.length, 1, `round ${round}: ${a.all}\n${b.all}`);
      for (let seen = 1; seen <= round; seen++) assert.equal(await db.command('GET', `runs:${seen}`), '1');
    }
  });

  it('the lock is shown while held and free afterwards', async () => {
    const dir = project({ '1_settings.ts': settings });
    const lock = JSON.parse((await cli(dir, 'lock', '--json')).stdout) as { locked: boolean };
    assert.equal(lock.locked, false);
    assert.equal((await cli(dir, 'up')).code, 0);
    assert.equal(await db.command('EXISTS', 'dbward:migrate:lock'), 0);
  });
});
