/**
 * The backup workflow through the CLI, as a user runs it, on SQLite (no server needed, so every
 * fault can be planted in files): backup → list → verify → restore; encryption and keys; a flipped
 * byte, a truncated artifact and a wrong key found before the target is touched; refusal to
 * overwrite a non-empty database; retention; kill -9 at random points of 20 backups.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { binPath, runCli } from '../helpers/run-cli.js';

const { Database: Driver } = await loadSqliteDriver();

interface Listed {
  backups: {
    id: string;
    artifact: string;
    sha256: string;
    encryption: { keyId: string } | null;
    tables: { name: string; rows: number }[];
    verification: { ok: boolean } | null;
  }[];
  problems: unknown[];
}

/** A project folder with a SQLite database of `rows` orders and a config pointing at it. */
function project(rows = 500, extraConfig = ''): { dir: string; db: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-bk-'));
  const db = path.join(dir, 'app.db');
  const conn = new Driver(db);
  conn.exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), note TEXT, total REAL);
    CREATE INDEX orders_customer ON orders(customer_id);`);
  const insertC = conn.prepare('INSERT INTO customers (name) VALUES (?)');
  const insertO = conn.prepare('INSERT INTO orders (customer_id, note, total) VALUES (?, ?, ?)');
  conn.transaction(() => {
    for (let i = 1; i <= 50; i++) insertC.run(`customer ${i}`);
    for (let i = 0; i < rows; i++) insertO.run((i % 50) + 1, randomBytes(40).toString('base64'), i * 1.5);
  })();
  conn.close();
  writeFileSync(
    path.join(dir, 'dbward.config.json'),
    `{ "targets": { "app": "sqlite:./app.db" }, "backups": { "storage": "./backups"${extraConfig} } }`,
  );
  return { dir, db };
}

async function list(dir: string, env: Record<string, string> = {}): Promise<Listed> {
  const run = await runCli(['backups', 'list', '--json'], { cwd: dir, env });
  assert.equal(run.code, 0, run.all);
  return JSON.parse(run.stdout) as Listed;
}

function rowsOf(file: string): { customers: number; orders: number } {
  const conn = new Driver(file, { readonly: true });
  try {
    const count = (t: string): number =>
      (conn.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    return { customers: count('customers'), orders: count('orders') };
  } finally {
    conn.close();
  }
}

function artifactPath(dir: string, artifact: string): string {
  return path.join(dir, 'backups', 'app', artifact);
}

describe('dbward backup on SQLite, through the CLI', () => {
  let built: { dir: string; db: string };
  before(() => {
    built = project(800);
  });

  it('takes, lists, verifies and restores a backup', async () => {
    const { dir } = built;
    const backup = await runCli(['backup', '--verify'], { cwd: dir });
    assert.equal(backup.code, 0, backup.all);
    assert.match(backup.stdout, /✔ app: app-\d{8}T\d{6}Z-[0-9a-f]{4}/);
    assert.match(backup.stdout, /2 tables/);
    assert.match(backup.stdout, /verified/);

    const listed = await list(dir);
    assert.equal(listed.backups.length, 1);
    const [m] = listed.backups;
    assert.ok(m);
    assert.equal(m.encryption, null);
    assert.match(m.artifact, /\.sqlite\.zst$/);
    assert.deepEqual(m.tables.map((t) => [t.name, t.rows]).sort(), [
      ['customers', 50],
      ['orders', 800],
    ]);
    assert.equal(m.verification?.ok, true);

    const verify = await runCli(['backup', 'verify', m.id], { cwd: dir });
    assert.equal(verify.code, 0, verify.all);
    assert.match(verify.stdout, /row counts match/);

    const restored = path.join(dir, 'restored.db');
    const restore = await runCli(['restore', m.id, '--to-url', `sqlite:${restored}`, '--create'], {
      cwd: dir,
    });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(rowsOf(restored), { customers: 50, orders: 800 });
  });

  it('refuses to restore over a non-empty database without --force, listing what it holds', async () => {
    const { dir, db } = built;
    const conn = new Driver(db);
    conn.exec("INSERT INTO customers (name) VALUES ('after the backup')");
    conn.close();
    const refused = await runCli(['restore', 'latest'], { cwd: dir });
    assert.equal(refused.code, 1, refused.all);
    assert.match(refused.all, /not empty/);
    assert.match(refused.all, /customers/);
    assert.match(refused.all, /--force/);
    assert.equal(rowsOf(db).customers, 51, 'nothing changed');

    const forced = await runCli(['restore', 'latest', '--force'], { cwd: dir });
    assert.equal(forced.code, 0, forced.all);
    assert.equal(rowsOf(db).customers, 50, 'back to the backup');
  });
});

describe('encrypted backups and damaged artifacts', () => {
  const key = randomBytes(32).toString('base64');
  const otherKey = randomBytes(32).toString('hex');

  it('encrypts when a key is set, never shows the key, and reads back only with it', async () => {
    const { dir } = project(300);
    const env = { DBWARD_BACKUP_KEY: key };
    const backup = await runCli(['backup', '--json'], { cwd: dir, env });
    assert.equal(backup.code, 0, backup.all);
    assert.ok(!backup.all.includes(key), 'the key is not printed');
    const { backups } = await list(dir, env);
    const m = backups[0]!;
    assert.match(m.artifact, /\.sqlite\.zst\.enc$/);
    assert.match(m.encryption!.keyId, /^[0-9a-f]{16}$/);
    const manifestText = readFileSync(artifactPath(dir, `${m.id}.manifest.json`), 'utf8');
    assert.ok(
      !manifestText.includes(key) && !manifestText.includes(Buffer.from(key, 'base64').toString('hex')),
    );
    // The stored bytes are not a readable SQLite file or zstd frame.
    const head = readFileSync(artifactPath(dir, m.artifact)).subarray(0, 8).toString('latin1');
    assert.equal(head, 'DBWENC1\n');

    const noKey = await runCli(['backup', 'verify', m.id], { cwd: dir });
    assert.equal(noKey.code, 2, noKey.all);
    assert.match(noKey.all, /encrypted .* no backup key is configured/);

    const wrong = await runCli(['restore', m.id, '--to-url', `sqlite:${path.join(dir, 'x.db')}`], {
      cwd: dir,
      env: { DBWARD_BACKUP_KEY: otherKey },
    });
    assert.equal(wrong.code, 1, wrong.all);
    assert.match(wrong.all, /encrypted with another key/);
    assert.ok(!wrong.all.includes(otherKey));
    assert.throws(() => statSync(path.join(dir, 'x.db')), 'no file was created');

    const good = await runCli(['backup', 'verify', m.id], { cwd: dir, env });
    assert.equal(good.code, 0, good.all);
  });

  for (const damage of ['flipped byte', 'truncated'] as const) {
    for (const encrypted of [true, false]) {
      it(`finds a ${damage} in ${encrypted ? 'an encrypted' : 'a plain'} artifact before touching the target`, async () => {
        const { dir, db } = project(2000);
        const env: Record<string, string> = encrypted ? { DBWARD_BACKUP_KEY: key } : {};
        const backup = await runCli(['backup'], { cwd: dir, env });
        assert.equal(backup.code, 0, backup.all);
        const m = (await list(dir, env)).backups[0]!;
        const file = artifactPath(dir, m.artifact);
        const size = statSync(file).size;
        if (damage === 'truncated') truncateSync(file, Math.floor(size * 0.6));
        else {
          const bytes = readFileSync(file);
          const at = Math.floor(size * 0.7);
          bytes[at] = bytes[at]! ^ 0x10;
          chmodSync(file, 0o600);
          writeFileSync(file, bytes);
        }
        // Change the database after the backup: a restore that started would undo this.
        const conn = new Driver(db);
        conn.exec("INSERT INTO customers (name) VALUES ('marker')");
        conn.close();
        const before = readFileSync(db);

        const restore = await runCli(['restore', m.id, '--force'], { cwd: dir, env });
        assert.equal(restore.code, 1, restore.all);
        if (encrypted) {
          assert.match(restore.all, damage === 'truncated' ? /truncat|cut short/i : /chunk/i);
        } else {
          assert.match(restore.all, /SHA-256|zstd|corrupt|damaged/i);
        }
        assert.ok(!/\n\s+at /.test(restore.all), 'no stack trace');
        assert.ok(readFileSync(db).equals(before), 'the target database was not touched');

        const verify = await runCli(['backup', 'verify', m.id], { cwd: dir, env });
        assert.equal(verify.code, 1, verify.all);
        assert.match(verify.stdout, /FAILED/);
        const after = (await list(dir, env)).backups[0]!;
        assert.equal(after.verification?.ok, false, 'the failed verification is recorded');
      });
    }
  }
});

describe('retention', () => {
  it('keeps the last N after each good backup, and prune --dry-run only reports', async () => {
    const { dir } = project(50, ', "retention": { "keepLast": 2 }');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await runCli(['backup', '--no-prune', '--json'], { cwd: dir });
      assert.equal(run.code, 0, run.all);
      ids.push((JSON.parse(run.stdout) as { manifest: { id: string } }[])[0]!.manifest.id);
      await sleep(1100); // ids carry the second
    }
    const dry = await runCli(['backups', 'prune', '--dry-run'], { cwd: dir });
    assert.equal(dry.code, 0, dry.all);
    assert.match(dry.stdout, /would remove 1/);
    assert.match(dry.stdout, new RegExp(`prune\\s+${ids[0]}`));
    assert.equal((await list(dir)).backups.length, 3, 'dry run removed nothing');

    const fourth = await runCli(['backup'], { cwd: dir });
    assert.equal(fourth.code, 0, fourth.all);
    const left = (await list(dir)).backups.map((b) => b.id);
    assert.equal(left.length, 2);
    assert.ok(!left.includes(ids[0]!) && !left.includes(ids[1]!));
  });
});

describe('kill -9 during backups', () => {
  it('never lists an incomplete backup, and the next run cleans up what killed runs left', async () => {
    const { dir } = project(60_000);
    const env: Record<string, string> = { DBWARD_BACKUP_KEY: randomBytes(32).toString('base64') };
    // How long one backup takes here, to spread the kills over its whole run.
    const t0 = Date.now();
    const first = await runCli(['backup', '--no-prune'], { cwd: dir, env });
    assert.equal(first.code, 0, first.all);
    const fullMs = Date.now() - t0;
    let killed = 0;
    const checked = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const child = spawn(process.execPath, [binPath, 'backup', '--no-prune'], {
        cwd: dir,
        env: { ...process.env, ...env, NO_COLOR: '1' },
        stdio: 'ignore',
      });
      const closed = new Promise((resolve) => child.once('close', resolve));
      await sleep(Math.floor(Math.random() * fullMs * 1.1));
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        killed++;
      }
      await closed;
      // Whatever was listed is complete: its artifact matches its manifest's size.
      const listed = await list(dir, env);
      assert.deepEqual(listed.problems, []);
      for (const b of listed.backups) {
        if (checked.has(b.id)) continue;
        checked.add(b.id);
        const verify = await runCli(['backup', 'verify', b.id], { cwd: dir, env });
        assert.equal(verify.code, 0, `${b.id} listed but does not verify: ${verify.all}`);
      }
    }
    assert.ok(killed >= 5, `only ${killed} of 20 runs were killed mid-way`);
    const last = await runCli(['backup', '--no-prune'], { cwd: dir, env });
    assert.equal(last.code, 0, last.all);
    const names = readdirSync(path.join(dir, 'backups', 'app'));
    const leftovers = names.filter(
      (n) => n.includes('.partial-') || !names.includes(`${n.split('.')[0]}.manifest.json`),
    );
    assert.deepEqual(leftovers, [], 'no partial files or artifacts without a manifest remain');
  });
});
