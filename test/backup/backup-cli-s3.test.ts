/**
 * Backups to S3 through the CLI, configured as users do: `backups.storage: 's3://bucket/prefix'`,
 * `backups.s3: { endpoint, region, forcePathStyle }` in the config and the credentials in
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Against the harness's moto server: SQLite and
 * PostgreSQL round trips (backup --verify → list → verify → restore); an endpoint nobody listens
 * on, and a server that goes away in the middle of an upload (a TCP proxy in front of moto that
 * this file cuts), both end in one clean error and leave nothing listed. The secret access key
 * is never printed, with or without --verbose.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { freePort } from '../harness/servers/server-process.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { s3SkipReason, testS3 } from '../harness/test-s3.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';

const { Database: Driver } = await loadSqliteDriver();
const skip = s3SkipReason();
const s3 = testS3();

interface Listed {
  backups: {
    id: string;
    artifact: string;
    tables: { name: string; rows: number }[];
    verification: { ok: boolean } | null;
  }[];
  problems: unknown[];
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const credentials = (): Record<string, string | undefined> => ({
  AWS_ACCESS_KEY_ID: s3!.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s3!.secretAccessKey,
  // Nothing from the developer's AWS setup may decide where the backups go.
  AWS_ENDPOINT_URL: undefined,
  AWS_ENDPOINT_URL_S3: undefined,
  AWS_PROFILE: undefined,
  AWS_SESSION_TOKEN: undefined,
});

/** A project whose one target `app` is backed up to s3://<bucket>/<prefix> at `endpoint`. */
function project(url: string, endpoint: string, prefix: string, dir?: string): string {
  const root = dir ?? mkdtempSync(path.join(tmpdir(), 'dbward-bk-s3-'));
  if (!dir) dirs.push(root);
  const config = {
    targets: { app: url },
    backups: {
      storage: `s3://${s3!.bucket}/${prefix}`,
      s3: { endpoint, region: s3!.region, forcePathStyle: true },
    },
  };
  writeFileSync(path.join(root, 'dbward.config.json'), JSON.stringify(config, null, 2));
  return root;
}

const newPrefix = (): string => `cli-${randomBytes(5).toString('hex')}`;

/** A SQLite database with `rows` rows of `bytes` random (incompressible) bytes each. */
function sqliteDb(dir: string, rows: number, bytes: number): string {
  const file = path.join(dir, 'app.db');
  const conn = new Driver(file);
  conn.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
  const insert = conn.prepare('INSERT INTO blobs (body) VALUES (?)');
  conn.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(randomBytes(bytes));
  })();
  conn.close();
  return file;
}

function countRows(file: string): number {
  const conn = new Driver(file, { readonly: true });
  try {
    return (conn.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;
  } finally {
    conn.close();
  }
}

async function list(dir: string): Promise<Listed> {
  const run = await runCli(['backups', 'list', '--json'], { cwd: dir, env: credentials() });
  assert.equal(run.code, 0, run.all);
  return JSON.parse(run.stdout) as Listed;
}

async function keysUnder(prefix: string): Promise<string[]> {
  const client = new S3Client({
    endpoint: s3!.endpoint,
    region: s3!.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3!.accessKeyId, secretAccessKey: s3!.secretAccessKey },
  });
  try {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3!.bucket, Prefix: `${prefix}/` }));
    return (page.Contents ?? []).map((o) => o.Key!).sort();
  } finally {
    client.destroy();
  }
}

function assertClean(runs: CliRun[]): void {
  for (const run of runs) {
    assert.ok(!run.all.includes(s3!.secretAccessKey), `the secret access key was printed:\n${run.all}`);
  }
}

const noStack = (run: CliRun): void => assert.ok(!/\n\s+at /.test(run.all), `a stack trace:\n${run.all}`);

describe('backups to S3 through the CLI', { skip }, () => {
  it('SQLite: backup --verify, list, verify, restore — and the objects are under the prefix', async () => {
    const prefix = newPrefix();
    const dir = project('sqlite:./app.db', s3!.endpoint, prefix);
    sqliteDb(dir, 200, 512);
    const env = credentials();
    const backup = await runCli(['backup', '--verify', '-v'], { cwd: dir, env });
    assert.equal(backup.code, 0, backup.all);
    assert.match(backup.stdout, /verified/);
    const listed = await list(dir);
    assert.deepEqual(listed.problems, []);
    assert.equal(listed.backups.length, 1);
    const m = listed.backups[0]!;
    assert.deepEqual(
      m.tables.map((t) => [t.name, t.rows]),
      [['blobs', 200]],
    );
    assert.equal(m.verification?.ok, true);
    const keys = await keysUnder(prefix);
    assert.ok(keys.includes(`${prefix}/app/${m.artifact}`), keys.join(', '));
    assert.ok(keys.includes(`${prefix}/app/${m.id}.manifest.json`), keys.join(', '));

    const verify = await runCli(['backup', 'verify', m.id, '-v'], { cwd: dir, env });
    assert.equal(verify.code, 0, verify.all);
    const restored = path.join(dir, 'restored.db');
    const restore = await runCli(['restore', m.id, '--to-url', `sqlite:${restored}`, '--create', '-v'], {
      cwd: dir,
      env,
    });
    assert.equal(restore.code, 0, restore.all);
    assert.equal(countRows(restored), 200);
    assertClean([backup, verify, restore]);
  });

  describe('PostgreSQL', { skip: skipReason('postgres') }, () => {
    const made: TestDatabase[] = [];
    let source: TestDatabase;
    before(async () => {
      source = await freshDatabase('postgres');
      made.push(source);
      const client = new pg.Client({ connectionString: source.url });
      await client.connect();
      // restore -j 2 gives each share of the tables its own download: z_blobs (last in the archive,
      // and the most rows) one, a_notes and items the other, which stops mid-object after items.
      await client.query(`CREATE TABLE items (id serial PRIMARY KEY, name text);
        INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g;
        CREATE TABLE a_notes (id int PRIMARY KEY, body text);
        INSERT INTO a_notes SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
        CREATE TABLE z_blobs (id int PRIMARY KEY, body text);
        INSERT INTO z_blobs SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 30000) g;`);
      await client.end();
    });
    after(async () => {
      for (const db of made) await db.cleanup();
    });

    it('backup --verify to S3, list, verify and restore into another database', async () => {
      const prefix = newPrefix();
      const dir = project(source.url, s3!.endpoint, prefix);
      const env = credentials();
      const backup = await runCli(['backup', '--verify', '--json'], { cwd: dir, env });
      assert.equal(backup.code, 0, backup.all);
      const m = (await list(dir)).backups[0]!;
      assert.deepEqual(m.tables.map((t) => [t.name, t.rows]).sort(), [
        ['public.a_notes', 2000],
        ['public.items', 500],
        ['public.z_blobs', 30000],
      ]);
      const verify = await runCli(['backup', 'verify', m.id], { cwd: dir, env });
      assert.equal(verify.code, 0, verify.all);
      const target = await freshDatabase('postgres');
      made.push(target);
      const restore = await runCli(['restore', m.id, '--to-url', target.url], { cwd: dir, env });
      assert.equal(restore.code, 0, restore.all);
      const client = new pg.Client({ connectionString: target.url });
      await client.connect();
      const { rows } = await client.query<{ n: number; last: string }>(
        'SELECT count(*)::int AS n, max(name) AS last FROM items',
      );
      await client.end();
      assert.deepEqual(rows[0], { n: 500, last: 'item 99' });

      const parallel = await freshDatabase('postgres');
      made.push(parallel);
      const restoreJ2 = await runCli(['restore', m.id, '--to-url', parallel.url, '-j', '2'], {
        cwd: dir,
        env,
      });
      assert.equal(restoreJ2.code, 0, restoreJ2.all);
      const copy = new pg.Client({ connectionString: parallel.url });
      await copy.connect();
      const counts = await copy.query<{ items: number; notes: number; blobs: number; pks: number }>(
        `SELECT (SELECT count(*) FROM items)::int AS items, (SELECT count(*) FROM a_notes)::int AS notes,
                (SELECT count(*) FROM z_blobs)::int AS blobs,
                (SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace)::int AS pks`,
      );
      await copy.end();
      assert.deepEqual(counts.rows[0], { items: 500, notes: 2000, blobs: 30000, pks: 3 });
      assertClean([backup, verify, restore, restoreJ2]);
    });
  });

  it('an endpoint nobody listens on: one clean error for backup and list, nothing stored', async () => {
    const port = await freePort();
    const prefix = newPrefix();
    const dir = project('sqlite:./app.db', `http://127.0.0.1:${port}`, prefix);
    sqliteDb(dir, 10, 100);
    const env = credentials();
    const backup = await runCli(['backup'], { cwd: dir, env });
    assert.equal(backup.code, 1, backup.all);
    assert.match(backup.all, /cannot reach http:\/\/127\.0\.0\.1:\d+/);
    assert.match(backup.all, /hint: /);
    noStack(backup);
    const listing = await runCli(['backups', 'list', '--json'], { cwd: dir, env });
    assert.notEqual(listing.code, 0, listing.all);
    noStack(listing);
    const verbose = await runCli(['backup', '-v'], { cwd: dir, env });
    assert.equal(verbose.code, 1, verbose.all);
    assertClean([backup, listing, verbose]);
    assert.deepEqual(await keysUnder(prefix), []);
  });

  it('the server goes away in the middle of an upload: a clean error, and nothing is listed', async () => {
    const prefix = newPrefix();
    const upstream = new URL(s3!.endpoint);
    // A proxy in front of moto that closes everything once 20 MB went up (of a ~40 MB artifact).
    const sockets = new Set<net.Socket>();
    let sent = 0;
    let cut = false;
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(upstream.port), upstream.hostname);
      sockets.add(client).add(server);
      const drop = (): void => {
        client.destroy();
        server.destroy();
      };
      client.on('error', drop).on('close', drop);
      server.on('error', drop).on('close', drop);
      client.on('data', (chunk: Buffer) => {
        sent += chunk.length;
        if (sent > 20 * 1024 * 1024 && !cut) {
          cut = true;
          proxy.close();
          for (const s of sockets) s.destroy();
        }
      });
      client.pipe(server);
      server.pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.address() as net.AddressInfo;
    try {
      const dir = project('sqlite:./app.db', `http://127.0.0.1:${port}`, prefix);
      sqliteDb(dir, 40, 1024 * 1024);
      const env = credentials();
      const backup = await runCli(['backup', '--no-prune'], { cwd: dir, env, timeoutMs: 50_000 });
      assert.ok(cut, `the proxy was not cut (${sent} bytes went through): ${backup.all}`);
      assert.equal(backup.code, 1, backup.all);
      noStack(backup);
      assertClean([backup]);

      // The same storage, reached directly: nothing listed, no object left behind.
      project('sqlite:./app.db', s3!.endpoint, prefix, dir);
      const listed = await list(dir);
      assert.deepEqual(listed, { backups: [], problems: [] });
      assert.deepEqual(await keysUnder(prefix), []);

      // BUG (fails today): the message says "The operation was aborted", with no hint — the
      // upload's own failure (the lost connection) is masked by the echo it caused in the source
      // pipeline (src/storage/s3-storage.ts, putArtifact: sourceError wins over the upload error).
      assert.match(
        backup.all,
        new RegExp(`✖ app: Writing .* failed: cannot reach http://127\\.0\\.0\\.1:${port}`),
      );
      assert.match(backup.all, /hint: Check the S3 endpoint/);
    } finally {
      proxy.close();
      for (const s of sockets) s.destroy();
    }
  });
});
