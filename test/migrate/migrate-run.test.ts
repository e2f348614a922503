/**
 * Applying and rolling back migrations on real PostgreSQL and SQLite databases, through the CLI
 * as users run it: `dbward migrate up/down/status/validate/plan`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSql, type SqlDatabase } from '../../src/index.js';
import { freshDatabase, skipReason, type TestDatabase, type TestEngine } from '../harness/test-databases.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

/** A project directory with `migrations/` holding the given files. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-migrate-'));
  mkdirSync(path.join(dir, 'migrations'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'migrations', name), text);
  return dir;
}

const createUsers =
  '-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n\n-- migrate:down\nDROP TABLE users;\n';
const createOrders =
  '-- migrate:up\nCREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER);\nCREATE INDEX orders_user ON orders (user_id);\n\n-- migrate:down\nDROP TABLE orders;\n';

for (const engine of ['postgres', 'sqlite'] as TestEngine[]) {
  describe(`migrate on ${engine}`, { skip: skipReason(engine) }, () => {
    // Each test gets its own database: migration versions and tables repeat across tests.
    let database: TestDatabase;
    let db: SqlDatabase;
    const cli = (dir: string, ...args: string[]): Promise<CliRun> =>
      runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: database.url } });
    const tables = async (): Promise<string[]> => {
      const sql =
        engine === 'postgres'
          ? "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
          : "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY 1";
      return (await db.query<{ name: string }>(sql)).rows.map((r) => r.name);
    };

    beforeEach(async () => {
      database = await freshDatabase(engine);
      db = await openSql(database.url);
    });
    afterEach(async () => {
      await db?.close();
      await database?.cleanup();
    });

    it('up applies everything once, records it, and a second up has nothing to do', async () => {
      const dir = project({ '1_users.sql': createUsers, '2_orders.sql': createOrders });
      const first = await cli(dir, 'up');
      assert.equal(first.code, 0, first.all);
      assert.match(first.stdout, /applied 1_users/);
      assert.match(first.stdout, /2 migration\(s\) applied/);
      assert.deepEqual(
        (await tables()).filter((t) => !t.startsWith('dbward_')),
        ['orders', 'users'],
      );
      const again = await cli(dir, 'up');
      assert.equal(again.code, 0);
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
      // The schema file beside the migrations dir, written after the change.
      const schema = readFileSync(path.join(dir, 'schema.sql'), 'utf8');
      assert.match(schema, /CREATE TABLE[^\n]*users/);
      assert.match(schema, /orders_user/);
      assert.match(first.stderr, /wrote schema\.sql/);
      const down = await cli(dir, 'down', '--step', '2', '--no-dump');
      assert.equal(down.code, 0, down.all);
      assert.equal(readFileSync(path.join(dir, 'schema.sql'), 'utf8'), schema, '--no-dump leaves it alone');
      assert.deepEqual(
        (await tables()).filter((t) => !t.startsWith('dbward_')),
        [],
      );
    });

    it('a failing migration names file:line, leaves no trace, and the earlier ones stay applied', async () => {
      const broken =
        '-- migrate:up\nCREATE TABLE broken_a (id INTEGER);\nCREATE TABLE broken_b (id INTEGER,);\n';
      const dir = project({ '1_users.sql': createUsers, '2_broken.sql': broken });
      const r = await cli(dir, 'up');
      assert.equal(r.code, 1, r.all);
      assert.match(r.stderr, /2_broken\.sql(:3:\d+)?: migration 2_broken failed/);
      if (engine === 'postgres') assert.match(r.stderr, /2_broken\.sql:3:\d+/);
      const status = JSON.parse((await cli(dir, 'status', '--json')).stdout) as {
        migrations: { version: string; state: string }[];
      };
      assert.deepEqual(
        status.migrations.map((m) => m.state),
        ['applied', 'pending'],
      );
      // Transactional DDL: the first CREATE of the failed migration was rolled back too.
      assert.ok(!(await tables()).includes('broken_a'));
    });

    it('refuses an edited applied migration (validate exits 1), and a down without a down section', async () => {
      const dir = project({
        '1_users.sql': createUsers,
        '2_nodown.sql': '-- migrate:up\nCREATE TABLE nodown (id INTEGER);\n',
      });
      assert.equal((await cli(dir, 'up')).code, 0);
      const refused = await cli(dir, 'down');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /no "-- migrate:down" section/);
      writeFileSync(
        path.join(dir, 'migrations', '1_users.sql'),
        createUsers.replace('email TEXT', 'email TEXT NOT NULL'),
      );
      const validate = await cli(dir, 'validate');
      assert.equal(validate.code, 1);
      assert.match(validate.stderr, /1_users: the file changed after it was applied/);
      writeFileSync(
        path.join(dir, 'migrations', '3_more.sql'),
        '-- migrate:up\nCREATE TABLE more (id INTEGER);\n',
      );
      const up = await cli(dir, 'up');
      assert.equal(up.code, 1);
      assert.match(up.stderr, /changed after it was applied/);
      assert.ok(!(await tables()).includes('more'), 'nothing ran');
      // Line endings alone are not an edit.
      writeFileSync(path.join(dir, 'migrations', '1_users.sql'), createUsers.replace(/\n/g, '\r\n'));
      assert.equal((await cli(dir, 'validate')).code, 0);
    });

    it('plan and --dry-run print the SQL and change nothing; out-of-order needs --allow-out-of-order', async () => {
      const dir = project({ '1_users.sql': createUsers, '3_orders.sql': createOrders });
      const plan = await cli(dir, 'plan');
      assert.equal(plan.code, 0);
      assert.match(plan.stdout, /would apply 1_users[\s\S]*CREATE TABLE users/);
      assert.deepEqual(
        (await tables()).filter((t) => !t.startsWith('dbward_')),
        [],
      );
      assert.equal((await cli(dir, 'up')).code, 0);
      writeFileSync(
        path.join(dir, 'migrations', '2_late.sql'),
        '-- migrate:up\nCREATE TABLE late (id INTEGER);\n-- migrate:down\nDROP TABLE late;\n',
      );
      const refused = await cli(dir, 'up');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /older than the newest applied/);
      assert.equal((await cli(dir, 'up', '--allow-out-of-order')).code, 0);
      assert.ok((await tables()).includes('late'));
      assert.equal((await cli(dir, 'down', '--step', '3')).code, 0);
      assert.deepEqual(
        (await tables()).filter((t) => !t.startsWith('dbward_')),
        [],
      );
    });

    it('runs TypeScript migrations with the handle, inside the migration transaction', async () => {
      const dir = project({
        '1_ts.ts': `export async function up(db) { await db.query('CREATE TABLE from_ts (id INTEGER)'); }
export async function down(db) { await db.query('DROP TABLE from_ts'); }
`,
      });
      const r = await cli(dir, 'up');
      assert.equal(r.code, 0, r.all);
      assert.ok((await tables()).includes('from_ts'));
      assert.equal((await cli(dir, 'down')).code, 0);
      assert.ok(!(await tables()).includes('from_ts'));
    });

    it('redo re-applies the newest; baseline adopts without running; lock reports a free lock', async () => {
      const dir = project({ '1_users.sql': createUsers, '2_orders.sql': createOrders });
      assert.equal((await cli(dir, 'up')).code, 0);
      const redo = await cli(dir, 'redo');
      assert.equal(redo.code, 0, redo.all);
      assert.match(redo.stdout, /rolled back 2_orders[\s\S]*applied 2_orders/);
      assert.ok((await tables()).includes('orders'));

      await db.query('DROP TABLE orders');
      await db.query('DROP TABLE users');
      await db.query('DELETE FROM dbward_migrations');
      // An existing database that already has migration 1's table: adopt it, then apply the rest.
      await db.query('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)');
      const baseline = await cli(dir, 'baseline', '1');
      assert.equal(baseline.code, 0, baseline.all);
      assert.match(baseline.stdout, /1_users recorded as applied \(not run\)/);
      const up = await cli(dir, 'up');
      assert.equal(up.code, 0, up.all);
      assert.doesNotMatch(up.stdout, /1_users/);
      assert.match(up.stdout, /applied 2_orders/);
      assert.equal((await cli(dir, 'baseline', '99')).code, 1);

      const lock = await cli(dir, 'lock', '--json');
      assert.equal(lock.code, 0, lock.all);
      assert.deepEqual(JSON.parse(lock.stdout), { locked: false, holder: null });
    });

    it('two processes migrating at once apply each migration exactly once (10 rounds)', async () => {
      for (let round = 0; round < 10; round++) {
        const dir = project({
          [`1_r${round}.sql`]: `-- migrate:up\nCREATE TABLE r${round}_a (id INTEGER);\n-- migrate:down\nDROP TABLE r${round}_a;\n`,
          [`2_r${round}.sql`]: `-- migrate:up\nCREATE TABLE r${round}_b (id INTEGER);\n-- migrate:down\nDROP TABLE r${round}_b;\n`,
        });
        const [a, b] = await Promise.all([cli(dir, 'up', '--json'), cli(dir, 'up', '--json')]);
        assert.equal(a.code, 0, a.all);
        assert.equal(b.code, 0, b.all);
        const applied = [a, b].flatMap(
          (r) => (JSON.parse(r.stdout) as { migrations: { version: string }[] }).migrations,
        );
        assert.deepEqual(applied.map((m) => m.version).sort(), ['1', '2'], `round ${round}`);
        assert.equal((await cli(dir, 'down', '--step', '2')).code, 0);
      }
    });
  });
}

describe('migrations settings from config', () => {
  it('a target`s migrations.dir, table and schemaFile apply from any working directory', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'dbward-migrate-config-'));
    mkdirSync(path.join(root, 'db', 'migrations'), { recursive: true });
    mkdirSync(path.join(root, 'src'));
    writeFileSync(path.join(root, 'db', 'migrations', '1_users.sql'), createUsers);
    writeFileSync(
      path.join(root, 'dbward.config.json'),
      JSON.stringify({
        targets: {
          main: {
            url: `sqlite:${path.join(root, 'app.db')}?mode=rwc`,
            migrations: { dir: 'db/migrations', table: 'schema_history', schemaFile: 'db/schema.sql' },
          },
        },
      }),
    );
    // Run from a subfolder: the config is found upward and its paths are relative to it.
    const up = await runCli(['migrate', 'up'], { cwd: path.join(root, 'src') });
    assert.equal(up.code, 0, up.all);
    assert.match(up.stdout, /applied 1_users/);
    assert.match(readFileSync(path.join(root, 'db', 'schema.sql'), 'utf8'), /CREATE TABLE users/);
    const db = await openSql(`sqlite:${path.join(root, 'app.db')}`);
    try {
      const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_history');
      assert.deepEqual(
        rows.map((r) => r.version),
        ['1'],
      );
    } finally {
      await db.close();
    }
    // The command line still wins: an empty folder given with --migrations-dir has nothing to apply.
    mkdirSync(path.join(root, 'other'));
    const status = await runCli(
      ['migrate', 'status', '--json', '--migrations-dir', path.join(root, 'other')],
      {
        cwd: root,
      },
    );
    const entries = (JSON.parse(status.stdout) as { migrations: { state: string }[] }).migrations;
    assert.deepEqual(
      entries.map((m) => m.state),
      ['missing-file'],
    );
  });
});
