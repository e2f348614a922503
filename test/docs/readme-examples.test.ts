/**
 * The README's library example runs as written (with `from 'dbward'` pointed at the sources),
 * against a real PostgreSQL database holding the tables it uses — so the front door cannot rot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSql, type SqlDatabase } from '../../src/index.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { repoRoot } from '../helpers/run-cli.js';

function codeBlockAfter(markdown: string, heading: string): string {
  const section = markdown.slice(markdown.indexOf(heading));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error(`no ts block after ${heading}`);
  return match[1];
}

describe('README examples', { skip: skipReason('postgres') }, () => {
  let database: TestDatabase;
  let db: SqlDatabase;
  before(async () => {
    database = await freshDatabase('postgres');
    db = await openSql(database.url);
    await db.query('CREATE TABLE users (id int PRIMARY KEY, email text)');
    await db.query("INSERT INTO users VALUES (42, 'ada@example.com')");
    await db.query('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await db.query('INSERT INTO accounts VALUES (1, 100)');
  });
  after(async () => {
    await db?.close();
    await database?.cleanup();
  });

  it('"As a library" runs and does what it says', () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const code = codeBlockAfter(readme, '## As a library').replace(
      "from 'dbward'",
      `from ${JSON.stringify(path.join(repoRoot, 'src/index.ts'))}`,
    );
    // .mts: an ES module wherever it lives, so the example's top-level await works as in the README.
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'dbward-readme-')), 'example.mts');
    writeFileSync(file, `${code}\nexport {};\n`);
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
      env: { ...process.env, DATABASE_URL: database.url },
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /reachable: true/);
  });

  it('the example transaction moved the money', async () => {
    const { rows } = await db.query<{ balance: number }>('SELECT balance FROM accounts WHERE id = 1');
    assert.equal(rows[0]?.balance, 90);
  });
});
