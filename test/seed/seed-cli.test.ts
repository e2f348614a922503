/**
 * `dbward seed` on real PostgreSQL, MariaDB, SQLite and Redis databases, through the built CLI as
 * users run it: SQL and TypeScript seeds, the tracking table, re-runs, refusals, environments,
 * failures, the lock shared with migrations, --dry-run and --json.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  openKeyValue,
  openSql,
  type Database,
  type KeyValueDatabase,
  type SqlDatabase,
} from '../../src/index.js';
import { migrationChecksum } from '../../src/migrate/migration-checksum.js';
import { trackingStoreFor } from '../../src/migrate/tracking-store.js';
import {
  freshDatabase,
  skipReason,
  sqlTestEngines,
  type TestDatabase,
  type TestEngine,
} from '../harness/test-databases.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

/** A project directory with `seeds/` holding the given files (paths relative to seeds/). */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-seed-'));
  mkdirSync(path.join(dir, 'seeds'));
  for (const [name, text] of Object.entries(files)) writeSeed(dir, name, text);
  return dir;
}

function writeSeed(dir: string, name: string, text: string): void {
  const file = path.join(dir, 'seeds', name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

interface SeedJson {
  target: string;
  env: string | null;
  dryRun: boolean;
  seeds: { id: string; file: string; action: string; durationMs: number | null }[];
}

/** The `action` of each seed in a --json result, as [id, action] pairs. */
const actions = (run: CliRun): [string, string][] =>
  (JSON.parse(run.stdout) as SeedJson).seeds.map((s) => [s.id, s.action]);

/** Hold the per-database migration lock from this process, as a running migration would. */
async function holdMigrationLock(db: Database): Promise<{ release(): Promise<void> }> {
  const store = await trackingStoreFor(db);
  // SQLite keeps its lock in a table; the other engines need nothing first, and this is idempotent.
  await store.ensureStore('dbward_migrations');
  return store.acquireLock({
    timeoutMs: 5_000,
    owner: { pid: process.pid, host: 'seed-test-host', token: 'seed-test-token' },
  });
}

const countries = "INSERT INTO countries (code, name) VALUES ('fr', 'France'), ('de', 'Germany');\n";
const settings = (theme: string): string =>
  `-- reference data, safe to run again\n-- seed:repeatable\nDELETE FROM settings;\nINSERT INTO settings (k, v) VALUES ('theme', '${theme}');\n`;
const admin =
  'export async function seed(db) {\n  await db.query("INSERT INTO users (id, email) VALUES (1, \'admin@example.com\')");\n}\n';
const italy = "INSERT INTO countries (code, name) VALUES ('it', 'Italy');\n";

for (const engine of sqlTestEngines) {
  describe(`dbward seed on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let db: SqlDatabase;
    const cli = (dir: string, ...args: string[]): Promise<CliRun> =>
      runCli(['seed', ...args], { cwd: dir, env: { DATABASE_URL: database.url } });
    const values = async (sql: string): Promise<string[]> =>
      (await db.query<{ v: unknown }>(sql)).rows.map((r) => String(r.v));
    const tables = async (): Promise<string[]> => {
      const sql =
        engine === 'postgres'
          ? "SELECT tablename AS v FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
          : engine === 'mysql'
            ? 'SELECT TABLE_NAME AS v FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1'
            : "SELECT name AS v FROM sqlite_schema WHERE type = 'table' ORDER BY 1";
      return values(sql);
    };
    const trackingRows = async (table = 'dbward_seeds'): Promise<string[][]> =>
      (
        await db.query<Record<string, unknown>>(
          `SELECT version, name, checksum, status, statements_applied, statements_total FROM ${db.ident(table)} ORDER BY version`,
        )
      ).rows.map((r) => [
        String(r.version),
        String(r.name),
        String(r.checksum),
        String(r.status),
        `${String(r.statements_applied)}/${String(r.statements_total)}`,
      ]);

    beforeEach(async () => {
      database = await freshDatabase(engine);
      db = await openSql(database.url);
      // Seeds are data: the schema comes first (from migrations, in a real project).
      await db.query('CREATE TABLE countries (code VARCHAR(8) PRIMARY KEY, name VARCHAR(64) NOT NULL)');
      await db.query('CREATE TABLE settings (k VARCHAR(32) PRIMARY KEY, v VARCHAR(64) NOT NULL)');
      await db.query('CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(64) NOT NULL)');
    });
    afterEach(async () => {
      await db?.close();
      await database?.cleanup();
    });

    it('runs every seed once in natural order, records it, skips it next time, re-runs an edited repeatable one', async () => {
      const dir = project({
        '01_countries.sql': countries,
        '02_settings.sql': settings('light'),
        '03_admin.ts': admin,
        '10_italy.sql': italy,
        'README.md': '# not a seed',
      });
      const first = await cli(dir);
      assert.equal(first.code, 0, first.all);
      const ranLines = first.stdout.split('\n').filter((l) => l.startsWith('ran '));
      assert.deepEqual(
        ranLines.map((l) => l.replace(/ \(\d+ ms\)$/, '')),
        ['ran 01_countries.sql', 'ran 02_settings.sql', 'ran 03_admin.ts', 'ran 10_italy.sql'],
      );
      assert.match(first.stdout, /4 seed\(s\): 4 ran, 0 skipped \(unchanged\) in \d+ ms/);
      assert.deepEqual(await values('SELECT code AS v FROM countries ORDER BY code'), ['de', 'fr', 'it']);
      assert.deepEqual(await values('SELECT v FROM settings'), ['light']);
      assert.deepEqual(await values('SELECT email AS v FROM users'), ['admin@example.com']);
      assert.deepEqual(await trackingRows(), [
        ['01_countries.sql', '01_countries', migrationChecksum(countries), 'applied', '1/1'],
        ['02_settings.sql', '02_settings', migrationChecksum(settings('light')), 'applied', '1/1'],
        ['03_admin.ts', '03_admin', migrationChecksum(admin), 'applied', '1/1'],
        ['10_italy.sql', '10_italy', migrationChecksum(italy), 'applied', '1/1'],
      ]);

      // Running again would violate the primary keys: every seed must be skipped.
      const second = await cli(dir);
      assert.equal(second.code, 0, second.all);
      assert.match(second.stdout, /skipped 01_countries\.sql \(unchanged\)/);
      assert.doesNotMatch(second.stdout, /^(ran|re-ran) /m);
      assert.match(second.stdout, /4 seed\(s\): 0 ran, 4 skipped \(unchanged\): nothing to do\./);

      writeSeed(dir, '02_settings.sql', settings('dark'));
      const third = await cli(dir, '--json');
      assert.equal(third.code, 0, third.all);
      assert.deepEqual(actions(third), [
        ['01_countries.sql', 'skip'],
        ['02_settings.sql', 'rerun'],
        ['03_admin.ts', 'skip'],
        ['10_italy.sql', 'skip'],
      ]);
      assert.deepEqual(await values('SELECT v FROM settings'), ['dark']);
      assert.equal((await trackingRows())[1]![2], migrationChecksum(settings('dark')));
      // Line endings alone are not an edit.
      writeSeed(dir, '01_countries.sql', countries.replace(/\n/g, '\r\n'));
      const fourth = await cli(dir);
      assert.equal(fourth.code, 0, fourth.all);
      assert.doesNotMatch(fourth.stdout, /^(ran|re-ran) /m);
    });

    it('refuses the whole run when a non-repeatable seed was edited: exit 1, E_SEED_CHANGED, nothing runs', async () => {
      const dir = project({ '01_countries.sql': countries, '02_settings.sql': settings('light') });
      assert.equal((await cli(dir)).code, 0);
      const before = await trackingRows();
      writeSeed(dir, '01_countries.sql', countries.replace('Germany', 'Deutschland'));
      writeSeed(dir, '02_settings.sql', settings('dark')); // would re-run
      writeSeed(dir, '03_admin.ts', admin); // would run
      const refused = await cli(dir);
      assert.equal(refused.code, 1, refused.all);
      assert.match(refused.stderr, /01_countries\.sql changed after it ran, and it is not marked repeatable/);
      assert.match(refused.stderr, /hint: .*-- seed:repeatable.*new seed file/);
      assert.doesNotMatch(refused.stdout, /^ran /m);
      const json = await cli(dir, '--json');
      assert.equal(json.code, 1);
      const error = (
        JSON.parse(json.stdout) as { error: { code: string; exitCode: number; message: string } }
      ).error;
      assert.equal(error.code, 'E_SEED_CHANGED');
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /01_countries\.sql/);
      assert.doesNotMatch(error.message, /02_settings|03_admin/);
      // Nothing ran: no user, the old setting, the old names, the same tracking rows.
      assert.deepEqual(await values('SELECT email AS v FROM users'), []);
      assert.deepEqual(await values('SELECT v FROM settings'), ['light']);
      assert.deepEqual(await values("SELECT name AS v FROM countries WHERE code = 'de'"), ['Germany']);
      assert.deepEqual(await trackingRows(), before);
    });

    it('runs seeds/<env>/ after the common seeds only for that environment (--env, DBWARD_ENV, NODE_ENV)', async () => {
      const dir = project({
        '01_countries.sql': countries,
        'dev/01_demo_users.sql': "INSERT INTO users (id, email) VALUES (100, 'demo@example.com');\n",
        'test/01_test_users.ts':
          'export default async function (db) {\n  await db.query("INSERT INTO users (id, email) VALUES (200, \'test@example.com\')");\n}\n',
      });
      const plain = await cli(dir, '--json');
      assert.equal(plain.code, 0, plain.all);
      assert.equal((JSON.parse(plain.stdout) as SeedJson).env, null);
      assert.deepEqual(actions(plain), [['01_countries.sql', 'run']]);
      assert.deepEqual(await values('SELECT email AS v FROM users'), []);

      const dev = await cli(dir, '--env', 'dev');
      assert.equal(dev.code, 0, dev.all);
      assert.match(
        dev.stdout,
        /skipped 01_countries\.sql \(unchanged\)\nran dev\/01_demo_users\.sql \(\d+ ms\)/,
      );
      assert.match(dev.stdout, /\(environment dev\)/);
      assert.doesNotMatch(dev.stdout, /test_users/);
      assert.deepEqual(await values('SELECT email AS v FROM users ORDER BY id'), ['demo@example.com']);

      // DBWARD_ENV, then NODE_ENV, name the environment when --env does not.
      const viaEnv = await runCli(['seed', '--json'], {
        cwd: dir,
        env: { DATABASE_URL: database.url, DBWARD_ENV: 'dev', NODE_ENV: 'test' },
      });
      assert.equal(viaEnv.code, 0, viaEnv.all);
      assert.deepEqual(actions(viaEnv), [
        ['01_countries.sql', 'skip'],
        ['dev/01_demo_users.sql', 'skip'],
      ]);
      const viaNodeEnv = await runCli(['seed', '--json'], {
        cwd: dir,
        env: { DATABASE_URL: database.url, NODE_ENV: 'test' },
      });
      assert.equal(viaNodeEnv.code, 0, viaNodeEnv.all);
      assert.deepEqual(actions(viaNodeEnv), [
        ['01_countries.sql', 'skip'],
        ['test/01_test_users.ts', 'run'],
      ]);
      assert.deepEqual(await values('SELECT email AS v FROM users ORDER BY id'), [
        'demo@example.com',
        'test@example.com',
      ]);
      assert.deepEqual(
        (await trackingRows()).map((r) => r[0]),
        ['01_countries.sql', 'dev/01_demo_users.sql', 'test/01_test_users.ts'],
      );
    });

    it('a failing seed names its file, leaves nothing behind, keeps the earlier ones, and runs once fixed', async () => {
      const broken =
        "INSERT INTO settings (k, v) VALUES ('a', '1');\nINSERT INTO no_such_table (x) VALUES (1);\n";
      const dir = project({
        '01_countries.sql': countries,
        '02_broken.sql': broken,
        '03_admin.ts': admin,
      });
      const failed = await cli(dir);
      assert.equal(failed.code, 1, failed.all);
      assert.match(failed.stdout, /ran 01_countries\.sql/);
      assert.match(failed.stderr, /02_broken\.sql(:\d+:\d+)?: seed 02_broken\.sql failed: .*no_such_table/);
      if (engine === 'postgres') assert.match(failed.stderr, /02_broken\.sql:2:\d+: /);
      assert.match(failed.stderr, /hint: .*rolled back/);
      // The first statement of the failed seed was rolled back with it; the seed after it never ran.
      assert.deepEqual(await values('SELECT k AS v FROM settings'), []);
      assert.deepEqual(await values('SELECT email AS v FROM users'), []);
      assert.deepEqual(
        (await trackingRows()).map((r) => r[0]),
        ['01_countries.sql'],
      );

      writeSeed(dir, '02_broken.sql', "INSERT INTO settings (k, v) VALUES ('a', '1');\n");
      const fixed = await cli(dir, '--json');
      assert.equal(fixed.code, 0, fixed.all);
      assert.deepEqual(actions(fixed), [
        ['01_countries.sql', 'skip'],
        ['02_broken.sql', 'run'],
        ['03_admin.ts', 'run'],
      ]);
      assert.deepEqual(await values('SELECT k AS v FROM settings'), ['a']);

      // A TypeScript seed that throws after a query: the query is rolled back with it.
      writeSeed(
        dir,
        '04_throws.ts',
        "export async function seed(db) {\n  await db.query(\"INSERT INTO users (id, email) VALUES (7, 'x@example.com')\");\n  throw new Error('boom in seed');\n}\n",
      );
      const threw = await cli(dir);
      assert.equal(threw.code, 1, threw.all);
      assert.match(threw.stderr, /04_throws\.ts: seed 04_throws\.ts failed: boom in seed/);
      assert.deepEqual(await values('SELECT id AS v FROM users ORDER BY id'), ['1']);
      assert.equal((await trackingRows()).length, 3);
    });

    it('--dry-run says what would run and changes nothing, not even the tracking table', async () => {
      const dir = project({ '01_countries.sql': countries, '02_settings.sql': settings('light') });
      const dry = await cli(dir, '--dry-run');
      assert.equal(dry.code, 0, dry.all);
      assert.match(dry.stdout, /would run 01_countries\.sql\nwould run 02_settings\.sql\n/);
      assert.match(dry.stdout, /nothing was changed/);
      assert.ok(!(await tables()).includes('dbward_seeds'), 'no tracking table');
      assert.deepEqual(await values('SELECT code AS v FROM countries'), []);

      assert.equal((await cli(dir)).code, 0);
      writeSeed(dir, '02_settings.sql', settings('dark'));
      writeSeed(dir, '03_admin.ts', admin);
      const json = await cli(dir, '--dry-run', '--json');
      assert.equal(json.code, 0, json.all);
      const result = JSON.parse(json.stdout) as SeedJson;
      assert.equal(result.dryRun, true);
      assert.deepEqual(
        result.seeds.map((s) => [s.id, s.action, s.durationMs]),
        [
          ['01_countries.sql', 'skip', null],
          ['02_settings.sql', 'rerun', null],
          ['03_admin.ts', 'run', null],
        ],
      );
      assert.deepEqual(await values('SELECT v FROM settings'), ['light']);
      assert.deepEqual(await values('SELECT email AS v FROM users'), []);
      // A dry run still refuses what a real run would refuse.
      writeSeed(dir, '01_countries.sql', italy);
      const refused = await cli(dir, '--dry-run');
      assert.equal(refused.code, 1, refused.all);
      assert.match(refused.stderr, /01_countries\.sql changed after it ran/);
    });

    it('--json prints the result object', async () => {
      const dir = project({ '01_countries.sql': countries, '03_admin.ts': admin });
      const run = await cli(dir, '--json', '--seeds-table', 'my_seeds');
      assert.equal(run.code, 0, run.all);
      const result = JSON.parse(run.stdout) as SeedJson;
      assert.deepEqual(Object.keys(result).sort(), ['dryRun', 'env', 'seeds', 'target']);
      assert.equal(result.target, 'main');
      assert.equal(result.env, null);
      assert.equal(result.dryRun, false);
      assert.equal(result.seeds.length, 2);
      for (const s of result.seeds) {
        assert.deepEqual(Object.keys(s).sort(), ['action', 'durationMs', 'file', 'id']);
        assert.equal(s.action, 'run');
        assert.equal(typeof s.durationMs, 'number');
      }
      assert.equal(result.seeds[0]!.file, path.join(dir, 'seeds', '01_countries.sql'));
      // --seeds-table chose where it was recorded.
      assert.ok(!(await tables()).includes('dbward_seeds'));
      assert.equal((await trackingRows('my_seeds')).length, 2);
    });

    it('waits for the lock migrations use, and fails naming the holder after --lock-timeout', async () => {
      const dir = project({ '01_countries.sql': countries });
      const lock = await holdMigrationLock(db);
      try {
        const blocked = await cli(dir, '--lock-timeout', '1s', '--json');
        assert.equal(blocked.code, 1, blocked.all);
        const error = (JSON.parse(blocked.stdout) as { error: { code: string; message: string } }).error;
        assert.equal(error.code, 'E_MIGRATION_LOCKED');
        assert.deepEqual(await values('SELECT code AS v FROM countries'), []);
      } finally {
        await lock.release();
      }
      const run = await cli(dir);
      assert.equal(run.code, 0, run.all);
      assert.deepEqual(await values('SELECT code AS v FROM countries ORDER BY code'), ['de', 'fr']);
    });

    if (engine === 'sqlite') {
      it('a script without seed(db), or with an unknown directive, is a file error (exit 2) and nothing runs', async () => {
        const dir = project({
          '01_countries.sql': countries,
          '02_nothing.ts': 'export const value = 1;\n',
        });
        const run = await cli(dir, '--json');
        assert.equal(run.code, 2, run.all);
        const error = (JSON.parse(run.stdout) as { error: { code: string; message: string } }).error;
        assert.equal(error.code, 'E_SEED_FILE');
        assert.match(error.message, /02_nothing\.ts: Does not export a seed\(db\) function/);
        // The seed before it ran and stays recorded; the bad one is not.
        assert.deepEqual(
          (await trackingRows()).map((r) => r[0]),
          ['01_countries.sql'],
        );
        const typo = project({ '01_countries.sql': `-- seed:repeat\n${countries}` });
        const refused = await cli(typo);
        assert.equal(refused.code, 2, refused.all);
        assert.match(refused.stderr, /01_countries\.sql:1: Unknown seed directive "-- seed:repeat"/);
        const syntax = project({
          '01_broken.ts': 'export async function seed(db) {\n  await db.query(;\n}\n',
        });
        const broken = await cli(syntax);
        assert.equal(broken.code, 1, broken.all);
        assert.match(broken.stderr, /01_broken\.ts: seed 01_broken\.ts failed: /);
        assert.match(broken.stderr, /hint: .*could not be loaded/);
      });

      it("takes the seeds dir and table from the target's config; flags win", async () => {
        const dir = mkdtempSync(path.join(tmpdir(), 'dbward-seed-config-'));
        mkdirSync(path.join(dir, 'data', 'seeds'), { recursive: true });
        mkdirSync(path.join(dir, 'sub'));
        writeFileSync(path.join(dir, 'data', 'seeds', '01_countries.sql'), countries);
        writeFileSync(
          path.join(dir, 'dbward.config.json'),
          JSON.stringify({
            targets: { main: { url: database.url, seeds: { dir: 'data/seeds', table: 'reference_seeds' } } },
          }),
        );
        // From a subfolder: the config's paths are relative to the config file.
        const run = await runCli(['seed'], { cwd: path.join(dir, 'sub') });
        assert.equal(run.code, 0, run.all);
        assert.match(run.stdout, /ran 01_countries\.sql/);
        assert.equal((await trackingRows('reference_seeds')).length, 1);
        mkdirSync(path.join(dir, 'other'));
        writeFileSync(path.join(dir, 'other', '01_italy.sql'), italy);
        const flags = await runCli(['seed', '--seeds-dir', 'other', '--seeds-table', 'other_seeds'], {
          cwd: dir,
        });
        assert.equal(flags.code, 0, flags.all);
        assert.match(flags.stdout, /ran 01_italy\.sql/);
        assert.equal((await trackingRows('other_seeds')).length, 1);
        assert.equal((await trackingRows('reference_seeds')).length, 1);
      });
    }
  });
}

const redis: TestEngine = 'redis';

describe('dbward seed on redis', { skip: skipReason(redis) }, () => {
  let database: TestDatabase;
  let kv: KeyValueDatabase;
  const cli = (dir: string, ...args: string[]): Promise<CliRun> =>
    runCli(['seed', ...args], { cwd: dir, env: { DATABASE_URL: database.url } });
  const flags = (): Promise<unknown> => kv.command('HGETALL', 'flags');

  beforeEach(async () => {
    database = await freshDatabase(redis);
    kv = await openKeyValue(database.url);
  });
  afterEach(async () => {
    await kv?.close();
    await database?.cleanup();
  });

  const betaFlag =
    "export async function seed(db) {\n  await db.command('HSET', 'flags', 'beta', 'on');\n}\n";
  const plan = (name: string): string =>
    `export const repeatable = true;\n\nexport async function seed(db) {\n  await db.command('SET', 'default_plan', '${name}');\n}\n`;

  it('runs TS seeds with the key-value handle, records them, skips and re-runs like SQL engines', async () => {
    const dir = project({
      '01_flags.ts': betaFlag,
      '02_plan.ts': plan('basic'),
      'dev/01_demo.mjs':
        "export default async function (db) {\n  await db.command('SET', 'demo_user', 'demo@example.com');\n}\n",
    });
    const first = await cli(dir);
    assert.equal(first.code, 0, first.all);
    assert.match(first.stdout, /ran 01_flags\.ts \(\d+ ms\)\nran 02_plan\.ts \(\d+ ms\)/);
    assert.deepEqual(await flags(), ['beta', 'on']);
    assert.equal(await kv.command('GET', 'default_plan'), 'basic');
    assert.equal(await kv.command('GET', 'demo_user'), null, 'no env: the dev folder does not run');
    const tracked = (await kv.command('HGETALL', 'dbward_seeds')) as string[];
    const rows = new Map<string, { checksum: string; status: string }>();
    for (let i = 0; i < tracked.length; i += 2) {
      rows.set(tracked[i]!, JSON.parse(tracked[i + 1]!) as { checksum: string; status: string });
    }
    assert.deepEqual([...rows.keys()].sort(), ['01_flags.ts', '02_plan.ts']);
    assert.equal(rows.get('02_plan.ts')!.checksum, migrationChecksum(plan('basic')));
    assert.equal(rows.get('02_plan.ts')!.status, 'applied');

    // A second run must not run the non-repeatable seed again: prove it by changing its data.
    await kv.command('HSET', 'flags', 'beta', 'off');
    const second = await cli(dir, '--json');
    assert.equal(second.code, 0, second.all);
    assert.deepEqual(actions(second), [
      ['01_flags.ts', 'skip'],
      ['02_plan.ts', 'skip'],
    ]);
    assert.deepEqual(await flags(), ['beta', 'off']);

    writeSeed(dir, '02_plan.ts', plan('pro'));
    const dev = await cli(dir, '--env', 'dev', '--json');
    assert.equal(dev.code, 0, dev.all);
    assert.deepEqual(actions(dev), [
      ['01_flags.ts', 'skip'],
      ['02_plan.ts', 'rerun'],
      ['dev/01_demo.mjs', 'run'],
    ]);
    assert.equal(await kv.command('GET', 'default_plan'), 'pro');
    assert.equal(await kv.command('GET', 'demo_user'), 'demo@example.com');

    writeSeed(dir, '01_flags.ts', betaFlag.replace("'on'", "'yes'"));
    writeSeed(
      dir,
      '03_new.ts',
      "export async function seed(db) {\n  await db.command('SET', 'new', '1');\n}\n",
    );
    const refused = await cli(dir, '--json');
    assert.equal(refused.code, 1, refused.all);
    assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'E_SEED_CHANGED');
    assert.equal(await kv.command('GET', 'new'), null, 'nothing ran');
  });

  it('refuses SQL seeds, names a failing seed, and --dry-run changes nothing', async () => {
    const dir = project({ '01_flags.ts': betaFlag, '02_data.sql': "INSERT INTO t VALUES ('x');\n" });
    const sql = await cli(dir);
    assert.equal(sql.code, 2, sql.all);
    assert.match(sql.stderr, /02_data\.sql: Redis does not run SQL seeds/);
    assert.deepEqual(await flags(), [], 'nothing ran');

    const dir2 = project({
      '01_flags.ts': betaFlag,
      '02_fails.ts': "export async function seed(db) {\n  await db.command('NOSUCHCOMMAND');\n}\n",
      '03_after.ts': "export async function seed(db) {\n  await db.command('SET', 'after', '1');\n}\n",
    });
    const dry = await cli(dir2, '--dry-run');
    assert.equal(dry.code, 0, dry.all);
    assert.match(dry.stdout, /would run 01_flags\.ts\nwould run 02_fails\.ts\nwould run 03_after\.ts/);
    assert.equal(await kv.command('EXISTS', 'dbward_seeds'), 0);
    assert.deepEqual(await flags(), []);

    const failed = await cli(dir2);
    assert.equal(failed.code, 1, failed.all);
    assert.match(failed.stderr, /02_fails\.ts: seed 02_fails\.ts failed: .*(unknown command|NOSUCHCOMMAND)/i);
    assert.match(failed.stderr, /hint: .*no transactions/);
    assert.equal(await kv.command('GET', 'after'), null);
    assert.deepEqual(await kv.command('HKEYS', 'dbward_seeds'), ['01_flags.ts']);
    writeSeed(
      dir2,
      '02_fails.ts',
      "export async function seed(db) {\n  await db.command('SET', 'fixed', '1');\n}\n",
    );
    const fixed = await cli(dir2, '--json');
    assert.equal(fixed.code, 0, fixed.all);
    assert.deepEqual(actions(fixed), [
      ['01_flags.ts', 'skip'],
      ['02_fails.ts', 'run'],
      ['03_after.ts', 'run'],
    ]);
  });

  it('shares the lock with migrations', async () => {
    const dir = project({ '01_flags.ts': betaFlag });
    const lock = await holdMigrationLock(kv);
    try {
      const blocked = await cli(dir, '--lock-timeout', '500ms', '--json');
      assert.equal(blocked.code, 1, blocked.all);
      assert.equal(
        (JSON.parse(blocked.stdout) as { error: { code: string } }).error.code,
        'E_MIGRATION_LOCKED',
      );
      assert.deepEqual(await flags(), []);
    } finally {
      await lock.release();
    }
    assert.equal((await cli(dir)).code, 0);
    assert.deepEqual(await flags(), ['beta', 'on']);
  });
});
