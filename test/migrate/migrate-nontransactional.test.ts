/**
 * PostgreSQL migrations holding a statement that refuses a transaction block (found by the
 * parser, no `transaction:false` marker) run statement by statement with their progress
 * recorded; every other migration still runs in one transaction. Real PostgreSQL, through the CLI.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { openSql, type SqlDatabase } from '../../src/index.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-migrate-nontx-'));
  mkdirSync(path.join(dir, 'migrations'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'migrations', name), text);
  return dir;
}

interface StatusJson {
  migrations: {
    version: string;
    state: string;
    statementsApplied: number | null;
    statementsTotal: number | null;
  }[];
}

describe(
  'migrate on postgres: statements that refuse a transaction block',
  { skip: skipReason('postgres') },
  () => {
    let database: TestDatabase;
    let db: SqlDatabase;
    const cli = (dir: string, ...args: string[]): Promise<CliRun> =>
      runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: database.url } });
    /** [version, state, statementsApplied, statementsTotal] per migration. */
    const status = async (dir: string): Promise<unknown[][]> => {
      const run = await cli(dir, 'status', '--json');
      assert.equal(run.code, 0, run.all);
      return (JSON.parse(run.stdout) as StatusJson).migrations.map((m) => [
        m.version,
        m.state,
        m.statementsApplied,
        m.statementsTotal,
      ]);
    };
    const tables = async (): Promise<string[]> =>
      (
        await db.query<{ name: string }>(
          "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'dbward%' ORDER BY 1",
        )
      ).rows.map((r) => r.name);
    const indexes = async (): Promise<{ name: string; valid: boolean }[]> =>
      (
        await db.query<{ name: string; valid: boolean }>(
          `SELECT c.relname AS name, i.indisvalid AS valid
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND NOT i.indisprimary AND c.relname NOT LIKE 'dbward%'
          ORDER BY 1`,
        )
      ).rows;

    beforeEach(async () => {
      database = await freshDatabase('postgres');
      db = await openSql(database.url);
    });
    afterEach(async () => {
      await db?.close();
      await database?.cleanup();
    });

    it('CREATE INDEX CONCURRENTLY without a directive applies, and DROP INDEX CONCURRENTLY rolls it back', async () => {
      const dir = project({
        '1_users.sql':
          '-- migrate:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n' +
          "INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 1000) g;\n" +
          'CREATE INDEX CONCURRENTLY users_email ON users (email);\n\n' +
          '-- migrate:down\nDROP INDEX CONCURRENTLY users_email;\nDROP TABLE users;\n',
      });
      const up = await cli(dir, 'up');
      assert.equal(up.code, 0, up.all);
      assert.match(up.stdout, /applied 1_users/);
      // Three statements, each run and counted on its own.
      assert.deepEqual(await status(dir), [['1', 'applied', 3, 3]]);
      assert.deepEqual(await indexes(), [{ name: 'users_email', valid: true }]);
      const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM users');
      assert.equal(Number(rows[0]?.n), 1000);

      const down = await cli(dir, 'down');
      assert.equal(down.code, 0, down.all);
      assert.deepEqual(await indexes(), []);
      assert.deepEqual(await tables(), []);
      assert.deepEqual(await status(dir), [['1', 'pending', null, null]]);
    });

    it('ALTER TYPE … ADD VALUE and a statement using the new value apply in one migration', async () => {
      const dir = project({
        '1_mood.sql':
          "-- migrate:up\nCREATE TYPE mood AS ENUM ('sad', 'happy');\nCREATE TABLE feelings (m mood NOT NULL);\n",
        '2_meh.sql':
          "-- migrate:up\nALTER TYPE mood ADD VALUE 'meh' BEFORE 'happy';\nINSERT INTO feelings VALUES ('meh');\n",
      });
      const up = await cli(dir, 'up');
      assert.equal(up.code, 0, up.all);
      assert.deepEqual(await status(dir), [
        ['1', 'applied', 1, 1],
        ['2', 'applied', 2, 2],
      ]);
      const { rows } = await db.query<{ m: string }>('SELECT m::text AS m FROM feelings');
      assert.deepEqual(rows, [{ m: 'meh' }]);
      const labels = await db.query<{ label: string }>(
        "SELECT enumlabel AS label FROM pg_enum WHERE enumtypid = 'mood'::regtype ORDER BY enumsortorder",
      );
      assert.deepEqual(
        labels.rows.map((r) => r.label),
        ['sad', 'meh', 'happy'],
      );
    });

    it('a failure after CREATE INDEX CONCURRENTLY leaves status partial; the fixed file resumes there', async () => {
      const file = (third: string): string =>
        '-- migrate:up\nCREATE TABLE a (id int);\nCREATE INDEX CONCURRENTLY a_id ON a (id);\n' +
        `${third}\nCREATE TABLE c (id int);\n`;
      const write = (third: string): void =>
        writeFileSync(path.join(dir, 'migrations', '1_abc.sql'), file(third));
      const dir = project({});

      // A syntax error anywhere: the parser cannot say, so the section goes to the server as one
      // script in a transaction, which rejects it before running any of it.
      write('CREATE TABLE b (id int,);');
      const syntax = await cli(dir, 'up');
      assert.equal(syntax.code, 1, syntax.all);
      assert.match(syntax.stderr, /1_abc\.sql:4:\d+: migration 1_abc failed: syntax error/);
      assert.deepEqual(await status(dir), [['1', 'pending', null, null]]);
      assert.deepEqual(await tables(), []);

      // An error only running statement 3 finds: statements 1 and 2 stay, and are recorded.
      write('CREATE TABLE b (id int REFERENCES nowhere (id));');
      const failed = await cli(dir, 'up');
      assert.equal(failed.code, 1, failed.all);
      assert.match(
        failed.stderr,
        /1_abc\.sql(:4:\d+)?: migration 1_abc failed at statement 3 of 4: relation "nowhere" does not exist/,
      );
      assert.match(failed.stderr, /Statements 1 to 2 stay applied/);
      assert.deepEqual(await status(dir), [['1', 'partial', 2, 4]]);
      assert.deepEqual(await tables(), ['a']);
      assert.deepEqual(await indexes(), [{ name: 'a_id', valid: true }]);

      // Fix statement 3; statements 1 and 2 must not run again (both would fail: they exist).
      write('CREATE TABLE b (id int);');
      const resumed = await cli(dir, 'up');
      assert.equal(resumed.code, 0, resumed.all);
      assert.deepEqual(await tables(), ['a', 'b', 'c']);
      assert.deepEqual(await indexes(), [{ name: 'a_id', valid: true }]);
      assert.deepEqual(await status(dir), [['1', 'applied', 4, 4]]);
    });

    it('a partial migration resumes at its failed statement even when the fix drops CONCURRENTLY', async () => {
      const dir = project({});
      const write = (index: string, third: string): void =>
        writeFileSync(
          path.join(dir, 'migrations', '1_abc.sql'),
          `-- migrate:up\nCREATE TABLE a (id int);\n${index}\n${third}\n`,
        );
      write('CREATE INDEX CONCURRENTLY a_id ON a (id);', 'CREATE TABLE b (id int REFERENCES nowhere (id));');
      assert.equal((await cli(dir, 'up')).code, 1);
      assert.deepEqual(await status(dir), [['1', 'partial', 2, 3]]);
      // The fixed file has nothing that needs running outside a transaction any more, but its
      // first two statements already ran: running it whole would fail on "a already exists".
      write('CREATE INDEX a_id ON a (id);', 'CREATE TABLE b (id int);');
      const resumed = await cli(dir, 'up');
      assert.equal(resumed.code, 0, resumed.all);
      assert.deepEqual(await tables(), ['a', 'b']);
      assert.deepEqual(await status(dir), [['1', 'applied', 3, 3]]);
    });

    it('a migration without such statements still runs in one transaction', async () => {
      // The words the parser is only asked about (VALUE, DATABASE, VACUUM, CONCURRENTLY) appear in
      // strings and comments here, not as statements.
      const dir = project({
        '1_settings.sql':
          '-- migrate:up\n-- run VACUUM by hand; CREATE INDEX CONCURRENTLY comes later\n' +
          'CREATE TABLE settings (name text PRIMARY KEY, value text);\n' +
          "INSERT INTO settings VALUES ('database', 'CREATE DATABASE x');\nCREATE INDEX settings_value ON settings (value);\n",
        '2_broken.sql':
          '-- migrate:up\nCREATE TABLE first_half (id int);\nCREATE TABLE second_half (id int,);\n',
      });
      const up = await cli(dir, 'up');
      assert.equal(up.code, 1, up.all);
      assert.match(up.stderr, /2_broken\.sql:3:\d+: migration 2_broken failed: /);
      assert.doesNotMatch(up.stderr, /at statement/);
      assert.match(up.stderr, /transaction was rolled back/);
      // One transaction: 1 of 1 recorded for the first, and no trace of the failed one's first table.
      assert.deepEqual(await status(dir), [
        ['1', 'applied', 1, 1],
        ['2', 'pending', null, null],
      ]);
      assert.deepEqual(await tables(), ['settings']);
    });
  },
);
