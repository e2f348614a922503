/**
 * `dbward migrate squash --to V` on real PostgreSQL, MariaDB and SQLite databases, through the
 * CLI: the baseline it writes recreates the schema on a new database (the schema file is
 * byte-identical to the one the history produced, views, triggers and foreign keys included),
 * databases that ran the history keep working, a database stranded inside the range is refused,
 * and the refusals (script migrations, part-way databases, an existing baseline) change nothing.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSql } from '../../src/index.js';
import { freshDatabase, skipReason, type TestDatabase, type TestEngine } from '../harness/test-databases.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

/** The history: users; orders (a foreign key to users, a view, a trigger); items. */
const migrations = (engine: TestEngine): Record<string, string> => {
  const trigger = {
    postgres: `CREATE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.email := lower(NEW.email);
  RETURN NEW;
END $$;
CREATE TRIGGER users_lower_email BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION lower_email();`,
    mysql:
      'CREATE TRIGGER users_lower_email BEFORE INSERT ON users FOR EACH ROW SET NEW.email = LOWER(NEW.email);',
    sqlite: `CREATE TRIGGER users_lower_email AFTER INSERT ON users BEGIN
  UPDATE users SET email = lower(NEW.email) WHERE id = NEW.id;
END;`,
    redis: '',
  }[engine];
  return {
    '1_users.sql':
      '-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL);\n\n-- migrate:down\nDROP TABLE users;\n',
    // `orders` sorts before `users`: a dump lists it first, so its foreign key must not be checked
    // while the dump loads.
    '2_orders.sql': `-- migrate:up
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, FOREIGN KEY (user_id) REFERENCES users (id));
CREATE INDEX orders_user ON orders (user_id);
CREATE VIEW user_emails AS SELECT id, email FROM users;
${trigger}

-- migrate:down
DROP VIEW user_emails;
DROP TABLE orders;
`,
    '3_items.sql':
      '-- migrate:up\nCREATE TABLE items (id INTEGER PRIMARY KEY, order_id INTEGER, FOREIGN KEY (order_id) REFERENCES orders (id));\n\n-- migrate:down\nDROP TABLE items;\n',
  };
};

/** A project directory with `migrations/` holding the given files. */
function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-squash-'));
  mkdirSync(path.join(dir, 'migrations'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'migrations', name), text);
  return dir;
}

/** Every file in the project's migrations directory, with its content. */
function snapshot(dir: string): Record<string, string> {
  const folder = path.join(dir, 'migrations');
  return Object.fromEntries(
    readdirSync(folder)
      .sort()
      .map((name) => [name, readFileSync(path.join(folder, name), 'utf8')]),
  );
}

interface StatusJson {
  ok: boolean;
  migrations: { version: string; name: string; state: string }[];
}
interface SquashJson {
  dryRun: boolean;
  from: string;
  to: string;
  file: string;
  removed: { version: string; name: string; file: string }[];
  content: string;
}

for (const engine of ['postgres', 'mysql', 'sqlite'] as TestEngine[]) {
  describe(`migrate squash on ${engine}`, { skip: skipReason(engine), timeout: 180_000 }, () => {
    const databases: TestDatabase[] = [];
    const fresh = async (): Promise<TestDatabase> => {
      const database = await freshDatabase(engine);
      databases.push(database);
      return database;
    };
    const cli = (dir: string, database: TestDatabase, ...args: string[]): Promise<CliRun> =>
      runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: database.url }, timeoutMs: 120_000 });
    const states = async (dir: string, database: TestDatabase): Promise<[string, string, string][]> => {
      const run = await cli(dir, database, 'status', '--json');
      assert.equal(run.code, 0, run.all);
      return (JSON.parse(run.stdout) as StatusJson).migrations.map((m) => [m.version, m.name, m.state]);
    };
    const userTables = async (database: TestDatabase): Promise<string[]> => {
      const db = await openSql(database.url);
      try {
        const sql = {
          postgres: "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
          mysql:
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
          sqlite: "SELECT name FROM sqlite_schema WHERE type = 'table'",
          redis: '',
        }[engine];
        return (await db.query<{ name: string }>(sql)).rows
          .map((r) => r.name)
          .filter((n) => !n.startsWith('dbward_'))
          .sort();
      } finally {
        await db.close();
      }
    };

    beforeEach(() => {
      databases.length = 0;
    });
    afterEach(async () => {
      for (const database of databases) await database.cleanup();
    });

    it('replaces the history with a baseline that recreates the schema; old databases keep working', async () => {
      const dir = project(migrations(engine));
      const original = snapshot(dir);
      // A: ran the whole history.
      const a = await fresh();
      const upA = await cli(dir, a, 'up');
      assert.equal(upA.code, 0, upA.all);
      const schemaFromHistory = readFileSync(path.join(dir, 'schema.sql'), 'utf8');
      assert.match(schemaFromHistory, /users_lower_email/);
      // C: stopped after the first migration, inside what will be the squashed range.
      const c = await fresh();
      assert.equal((await cli(dir, c, 'up', '--to', '1')).code, 0);

      // Squashing from C is refused: C could not finish the range afterwards.
      const fromC = await cli(dir, c, 'squash', '--to', '2');
      assert.equal(fromC.code, 1, fromC.all);
      assert.match(fromC.stderr, /is at 1_users, part-way through the 2 migration\(s\) up to 2/);
      assert.match(fromC.stderr, /migrate up --to 2/);
      assert.deepEqual(snapshot(dir), original);

      // --dry-run builds the baseline and shows it, and writes and removes nothing.
      const dry = await cli(dir, a, 'squash', '--to', '2', '--dry-run', '--json');
      assert.equal(dry.code, 0, dry.all);
      const planned = JSON.parse(dry.stdout) as SquashJson;
      assert.equal(planned.dryRun, true);
      assert.deepEqual(
        planned.removed.map((m) => path.basename(m.file)),
        ['1_users.sql', '2_orders.sql'],
      );
      assert.equal(planned.file, path.join(dir, 'migrations', '2_squashed.sql'));
      assert.deepEqual(snapshot(dir), original, '--dry-run changed nothing');

      const squash = await cli(dir, a, 'squash', '--to', '2');
      assert.equal(squash.code, 0, squash.all);
      assert.match(squash.stdout, /squashed 1\.\.2 \(2 migration\(s\)\) into migrations\/2_squashed\.sql/);
      assert.match(squash.stdout, /removed migrations\/1_users\.sql\nremoved migrations\/2_orders\.sql/);
      assert.match(squash.stdout, /remain in version control/);
      const after = snapshot(dir);
      assert.deepEqual(Object.keys(after), ['2_squashed.sql', '3_items.sql']);
      const baseline = after['2_squashed.sql']!;
      assert.equal(baseline, planned.content, 'the dry run showed what was written');
      assert.equal(after['3_items.sql'], original['3_items.sql']);
      assert.match(baseline, /^-- dbward:squashed 1\.\.2 \(2 migrations\)\n/);
      assert.match(baseline, /^-- migrate:up$/m);
      assert.doesNotMatch(baseline, /migrate:down/);
      assert.match(baseline, /orders_user/);
      assert.match(baseline, /users_lower_email/);
      assert.match(baseline, /user_emails/);
      assert.doesNotMatch(baseline, /\bitems\b/, 'only the schema at 2');
      assert.doesNotMatch(baseline, /dbward_migration/, 'no tracking or lock table');

      // A ran the history: the baseline counts as applied, the old rows as squashed.
      assert.deepEqual(await states(dir, a), [
        ['1', 'users', 'squashed'],
        ['2', 'squashed', 'applied'],
        ['3', 'items', 'applied'],
      ]);
      const validateA = await cli(dir, a, 'validate');
      assert.equal(validateA.code, 0, validateA.all);
      const againA = await cli(dir, a, 'up');
      assert.equal(againA.code, 0, againA.all);
      assert.match(againA.stdout, /Nothing to apply/);
      // Rolling back stops at the baseline, before anything runs.
      const downA = await cli(dir, a, 'down', '--step', '2', '--no-dump');
      assert.equal(downA.code, 1, downA.all);
      assert.match(downA.stderr, /2_squashed\.sql is a squashed baseline/);
      assert.deepEqual(await userTables(a), ['items', 'orders', 'users']);

      // B: a new database runs the baseline, then the third migration on top, and ends with
      // exactly the schema the history produced.
      const b = await fresh();
      const upB = await cli(dir, b, 'up');
      assert.equal(upB.code, 0, upB.all);
      assert.match(upB.stdout, /applied 2_squashed/);
      assert.match(upB.stdout, /applied 3_items/);
      assert.equal(readFileSync(path.join(dir, 'schema.sql'), 'utf8'), schemaFromHistory);
      assert.deepEqual(await userTables(b), ['items', 'orders', 'users']);
      assert.deepEqual(await states(dir, b), [
        ['2', 'squashed', 'applied'],
        ['3', 'items', 'applied'],
      ]);
      assert.equal((await cli(dir, b, 'validate')).code, 0);
      // The baseline's trigger and foreign key work.
      const db = await openSql(b.url);
      try {
        await db.query("INSERT INTO users (id, email) VALUES (1, 'Ann@Example.COM')");
        const { rows } = await db.query<{ email: string }>('SELECT email FROM user_emails');
        assert.deepEqual(rows, [{ email: 'ann@example.com' }]);
        if (engine === 'sqlite') await db.query('PRAGMA foreign_keys = ON');
        await assert.rejects(db.query('INSERT INTO orders (id, user_id) VALUES (1, 99)'));
      } finally {
        await db.close();
      }

      // C stopped inside the range: refused, nothing runs.
      const statusC = await states(dir, c);
      assert.deepEqual(statusC, [
        ['1', 'users', 'squashed'],
        ['2', 'squashed', 'pending'],
        ['3', 'items', 'pending'],
      ]);
      const upC = await cli(dir, c, 'up');
      assert.equal(upC.code, 1, upC.all);
      assert.match(upC.stderr, /This database is at 1_users, inside the squashed range 1\.\.2/);
      assert.match(upC.stderr, /check out the old migrations/i);
      assert.deepEqual(await userTables(c), ['users']);

      // Squashing to 2 again: the baseline is there already.
      const again = await cli(dir, a, 'squash', '--to', '2');
      assert.equal(again.code, 1, again.all);
      assert.match(again.stderr, /2_squashed\.sql already exists/);
      assert.deepEqual(Object.keys(snapshot(dir)), ['2_squashed.sql', '3_items.sql']);
    });

    it('squashes a baseline again with later migrations, keeping the range from the first version', async () => {
      const dir = project(migrations(engine));
      const a = await fresh();
      assert.equal((await cli(dir, a, 'up')).code, 0);
      const first = await cli(dir, a, 'squash', '--to', '2');
      assert.equal(first.code, 0, first.all);
      // B ran the first baseline (recorded under the name `squashed`) and then 3.
      const b = await fresh();
      assert.equal((await cli(dir, b, 'up')).code, 0);

      const second = await cli(dir, a, 'squash', '--to', '3', '--json');
      assert.equal(second.code, 0, second.all);
      const result = JSON.parse(second.stdout) as SquashJson;
      assert.equal(result.from, '1');
      assert.deepEqual(
        result.removed.map((m) => path.basename(m.file)),
        ['2_squashed.sql', '3_items.sql'],
      );
      assert.deepEqual(Object.keys(snapshot(dir)), ['3_squashed.sql']);
      assert.match(snapshot(dir)['3_squashed.sql']!, /^-- dbward:squashed 1\.\.3 \(2 migrations\)\n/);
      assert.deepEqual(await states(dir, a), [
        ['1', 'users', 'squashed'],
        ['2', 'orders', 'squashed'],
        ['3', 'squashed', 'applied'],
      ]);
      assert.deepEqual(await states(dir, b), [
        ['2', 'squashed', 'squashed'],
        ['3', 'squashed', 'applied'],
      ]);
      for (const database of [a, b]) {
        assert.equal((await cli(dir, database, 'validate')).code, 0);
        assert.match((await cli(dir, database, 'up')).stdout, /Nothing to apply/);
      }
      // A new database gets everything from the one baseline.
      const c = await fresh();
      assert.equal((await cli(dir, c, 'up')).code, 0);
      assert.deepEqual(await userTables(c), ['items', 'orders', 'users']);
    });

    it('refuses a script migration in the range, and an unknown version, changing nothing', async () => {
      const dir = project({
        '1_users.sql': migrations(engine)['1_users.sql']!,
        '2_backfill.ts':
          'export async function up(db) {\n  await db.query("UPDATE users SET email = lower(email)");\n}\n',
        '3_items.sql': '-- migrate:up\nCREATE TABLE items (id INTEGER PRIMARY KEY);\n',
      });
      const before = snapshot(dir);
      const a = await fresh();
      assert.equal((await cli(dir, a, 'up')).code, 0);
      const refused = await cli(dir, a, 'squash', '--to', '3');
      assert.equal(refused.code, 1, refused.all);
      assert.match(refused.stderr, /Cannot squash 2_backfill\.ts: it is a script migration/);
      assert.match(refused.stderr, /cannot be captured by a schema dump/);
      const unknown = await cli(dir, a, 'squash', '--to', '4', '--json');
      assert.equal(unknown.code, 1, unknown.all);
      assert.match(unknown.stdout, /No migration has version 4/);
      assert.deepEqual(snapshot(dir), before);
      // Up to the migration before the script is fine.
      const ok = await cli(dir, a, 'squash', '--to', '1');
      assert.equal(ok.code, 0, ok.all);
      assert.deepEqual(Object.keys(snapshot(dir)), ['1_squashed.sql', '2_backfill.ts', '3_items.sql']);
    });

    it('refuses when an applied migration in the range was edited', async () => {
      const dir = project(migrations(engine));
      const a = await fresh();
      assert.equal((await cli(dir, a, 'up')).code, 0);
      const file = path.join(dir, 'migrations', '1_users.sql');
      writeFileSync(file, readFileSync(file, 'utf8').replace('NOT NULL', ''));
      const before = snapshot(dir);
      const refused = await cli(dir, a, 'squash', '--to', '2');
      assert.equal(refused.code, 1, refused.all);
      assert.match(refused.stderr, /1_users is edited: the file changed after it was applied/);
      assert.deepEqual(snapshot(dir), before);
    });
  });
}

describe('migrate squash usage', () => {
  it('requires --to', async () => {
    const dir = project({});
    const run = await runCli(['migrate', 'squash'], {
      cwd: dir,
      env: { DATABASE_URL: `sqlite:${path.join(dir, 'x.db')}` },
    });
    assert.equal(run.code, 2, run.all);
    assert.match(run.stderr, /required option '--to <version>'/);
  });

  it('is listed in the help', async () => {
    const run = await runCli(['migrate', '--help'], { cwd: tmpdir() });
    assert.match(run.stdout, /squash \[options\]/);
  });
});
