import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { SchemaModel } from '../../src/core/schema-model.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { runCli } from '../helpers/run-cli.js';

describe('dbward demo (the README quick start)', () => {
  it('creates the demo database, inspects it, and can run again', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-demo-'));
    const first = await runCli(['demo'], { cwd: dir });
    assert.equal(first.code, 0, first.all);
    assert.ok(existsSync(path.join(dir, 'dbward-demo.db')));
    for (const table of ['customers', 'orders', 'order_items', 'products'])
      assert.match(first.stdout, new RegExp(table));
    // The shop's five tables plus dbward's own: migrations, seeds and the lock.
    assert.match(first.stdout, /8 tables · 1 view/);
    // It ends with a backup of the database, verified by restoring it into a scratch copy…
    assert.match(
      first.stdout,
      /Backup:\n {2}demo-\d{8}T\d{6}Z-[0-9a-f]{4}: 8 tables, .*verified: 8 tables: row counts match/,
    );
    // …which the backups command lists from storage, and which restores into a new file.
    const listed = await runCli(['backups', 'list', '--json', '--storage', 'dbward-demo/backups'], {
      cwd: dir,
    });
    assert.equal(listed.code, 0, listed.all);
    const backups = (
      JSON.parse(listed.stdout) as { backups: { id: string; verification: { ok: boolean } }[] }
    ).backups;
    assert.equal(backups.length, 1);
    assert.equal(backups[0]!.verification.ok, true);
    const restore = await runCli(
      [
        'restore',
        backups[0]!.id,
        '--storage',
        'dbward-demo/backups',
        '--to-url',
        'sqlite:restored.db',
        '--create',
      ],
      { cwd: dir },
    );
    assert.equal(restore.code, 0, restore.all);
    const restored = new (await loadSqliteDriver()).Database(path.join(dir, 'restored.db'), {
      readonly: true,
    });
    assert.equal(
      (restored.prepare('SELECT count(*) AS n FROM customers').get() as { n: number }).n > 0,
      true,
    );
    restored.close();
    // Built as a project would be: migrations applied, then seeds, from files the user can read.
    assert.match(first.stderr, /3 migrations applied and 2 seeds run from dbward-demo\//);
    for (const name of ['migrations', 'seeds', 'schema.sql'])
      assert.ok(existsSync(path.join(dir, 'dbward-demo', name)), name);
    const status = await runCli(
      [
        'migrate',
        'status',
        '--json',
        '--url',
        'sqlite:dbward-demo.db',
        '--migrations-dir',
        'dbward-demo/migrations',
      ],
      { cwd: dir },
    );
    assert.equal(status.code, 0, status.all);
    const states = (JSON.parse(status.stdout) as { migrations: { state: string }[] }).migrations.map(
      (m) => m.state,
    );
    assert.deepEqual(states, ['applied', 'applied', 'applied']);
    const seeded = await runCli(
      ['seed', '--json', '--url', 'sqlite:dbward-demo.db', '--seeds-dir', 'dbward-demo/seeds'],
      { cwd: dir },
    );
    assert.equal(seeded.code, 0, seeded.all);
    const actions = (JSON.parse(seeded.stdout) as { seeds: { action: string }[] }).seeds.map((s) => s.action);
    assert.deepEqual(actions, ['skip', 'skip']);
    // It ends with doctor's report: the shop's one planted flaw, an unindexed foreign key.
    assert.match(first.stdout, /Doctor:/);
    assert.match(first.stdout, /WARNING\s+1 foreign key\(s\) without an index/);
    assert.match(first.stdout, /order_items \(product_id\) → products/);
    assert.match(first.stdout, /fix: CREATE INDEX/);
    assert.doesNotMatch(first.stdout, /CRITICAL/);
    const again = await runCli(['demo'], { cwd: dir });
    assert.equal(again.code, 0, again.all);

    const inspected = await runCli(['inspect', '--json', '--url', 'sqlite:dbward-demo.db'], { cwd: dir });
    assert.equal(inspected.code, 0, inspected.all);
    const model = JSON.parse(inspected.stdout) as SchemaModel;
    const items = model.tables.find((t) => t.name === 'order_items')!;
    assert.deepEqual(items.primaryKey?.columns, ['order_id', 'product_id']);
    const cascade = items.foreignKeys.find((fk) => fk.referencedTable === 'orders')!;
    assert.equal(cascade.onDelete, 'cascade');
    assert.equal(model.tables.find((t) => t.name === 'customers')!.rowEstimate, 200);
  });

  it('refuses to overwrite a file that is not a demo database', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-demo-'));
    const file = path.join(dir, 'precious.db');
    writeFileSync(file, 'not a database, but mine');
    const r = await runCli(['demo', '--file', 'precious.db'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a dbward demo database/);
    assert.equal(readFileSync(file, 'utf8'), 'not a database, but mine');
  });
});

describe('dbward demo next to a folder it did not make', () => {
  it('refuses to replace the folder and changes nothing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-demo-'));
    mkdirSync(path.join(dir, 'dbward-demo'));
    writeFileSync(path.join(dir, 'dbward-demo', 'notes.txt'), 'mine');
    const r = await runCli(['demo'], { cwd: dir });
    assert.equal(r.code, 1, r.all);
    assert.match(r.stderr, /was not made by dbward demo/);
    assert.equal(readFileSync(path.join(dir, 'dbward-demo', 'notes.txt'), 'utf8'), 'mine');
    assert.ok(!existsSync(path.join(dir, 'dbward-demo.db')));
  });
});

describe('large --json output through a pipe', () => {
  it('arrives whole (regression: exiting before stdout drained cut it at 64 KiB)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-bigjson-'));
    const { Database } = await loadSqliteDriver();
    const db = new Database(path.join(dir, 'big.db'));
    for (let i = 0; i < 300; i++) {
      db.exec(`CREATE TABLE t${i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT, note TEXT)`);
      db.exec(`CREATE INDEX t${i}_name ON t${i} (name)`);
    }
    db.close();
    const r = await runCli(['inspect', '--json', '--url', 'sqlite:big.db'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 200_000, `only ${r.stdout.length} bytes`);
    const model = JSON.parse(r.stdout) as SchemaModel;
    assert.equal(model.tables.length, 300);
  });
});
