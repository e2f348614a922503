/**
 * MySQL/MariaDB commit DDL implicitly, so migrations run statement by statement with their
 * progress recorded: a failure leaves status `partial` at the right statement, and the next `up`
 * resumes there once the file is fixed. Real MariaDB, through the CLI.
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
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-migrate-mysql-'));
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

describe('migrate on mysql', { skip: skipReason('mysql') }, () => {
  let database: TestDatabase;
  let db: SqlDatabase;
  const cli = (dir: string, ...args: string[]): Promise<CliRun> =>
    runCli(['migrate', ...args], { cwd: dir, env: { DATABASE_URL: database.url } });
  const tables = async (): Promise<string[]> =>
    (
      await db.query<{ name: string }>(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'dbward%' ORDER BY 1",
      )
    ).rows.map((r) => r.name);
  const status = async (dir: string): Promise<StatusJson['migrations']> =>
    (JSON.parse((await cli(dir, 'status', '--json')).stdout) as StatusJson).migrations;

  beforeEach(async () => {
    database = await freshDatabase('mysql');
    db = await openSql(database.url);
  });
  afterEach(async () => {
    await db?.close();
    await database?.cleanup();
  });

  it('applies and rolls back, DELIMITER blocks included', async () => {
    const dir = project({
      '1_users.sql':
        '-- migrate:up\nCREATE TABLE users (id INT PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n',
      '2_proc.sql':
        '-- migrate:up\nDELIMITER $$\nCREATE PROCEDURE count_users() BEGIN SELECT COUNT(*) FROM users; END$$\nDELIMITER ;\n-- migrate:down\nDROP PROCEDURE count_users;\n',
    });
    const up = await cli(dir, 'up');
    assert.equal(up.code, 0, up.all);
    assert.deepEqual(await tables(), ['users']);
    const { rows } = await db.query('CALL count_users()');
    assert.ok(rows);
    assert.equal((await cli(dir, 'down', '--step', '2')).code, 0);
    assert.deepEqual(await tables(), []);
  });

  it('a failure records partial progress at the right statement; the fixed file resumes there', async () => {
    const broken =
      '-- migrate:up\nCREATE TABLE a (id INT);\nCREATE TABLE b (id INT,);\nCREATE TABLE c (id INT);\n';
    const dir = project({ '1_abc.sql': broken });
    const failed = await cli(dir, 'up');
    assert.equal(failed.code, 1, failed.all);
    assert.match(failed.stderr, /1_abc\.sql:3(:\d+)?: migration 1_abc failed at statement 2 of 3/);
    assert.match(failed.stderr, /Statements 1 to 1 stay applied/);
    assert.deepEqual(await tables(), ['a']);
    assert.deepEqual(
      (await status(dir)).map((m) => [m.state, m.statementsApplied, m.statementsTotal]),
      [['partial', 1, 3]],
    );
    // Fix statement 2; statement 1 must not run again (it would fail: table a exists).
    writeFileSync(path.join(dir, 'migrations', '1_abc.sql'), broken.replace('(id INT,)', '(id INT)'));
    const resumed = await cli(dir, 'up');
    assert.equal(resumed.code, 0, resumed.all);
    assert.deepEqual(await tables(), ['a', 'b', 'c']);
    assert.deepEqual(
      (await status(dir)).map((m) => [m.state, m.statementsApplied, m.statementsTotal]),
      [['applied', 3, 3]],
    );
  });

  it('two processes migrating at once apply each migration exactly once (10 rounds)', async () => {
    for (let round = 0; round < 10; round++) {
      const dir = project({
        '1_a.sql': `-- migrate:up\nCREATE TABLE r${round}_a (id INT);\n-- migrate:down\nDROP TABLE r${round}_a;\n`,
        '2_b.sql': `-- migrate:up\nCREATE TABLE r${round}_b (id INT);\n-- migrate:down\nDROP TABLE r${round}_b;\n`,
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
