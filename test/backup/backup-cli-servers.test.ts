/**
 * The backup workflow through the CLI on the server engines, as a user runs it: a config with one
 * target, `backup --verify`, `backups list --json`, `backup verify`, `restore` into an empty
 * database (and with `--create` into one that does not exist yet), the refusal to overwrite a
 * non-empty database, and on PostgreSQL `-j 2` (directory format) and `restore --tables`.
 * Restored data is compared value by value, not only counted.
 *
 * Redis dumps and restores whole servers (restore is FLUSHALL + load), so its round trip runs on
 * two password-protected redis-servers of this file's own; the shared one serves other files.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { findPgTool } from '../../src/engines/postgres/postgres-schema-dump.js';
import { findBinary } from '../harness/servers/server-process.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { runCli } from '../helpers/run-cli.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/throwaway-redis.js';

interface Manifest {
  id: string;
  engine: string;
  artifact: string;
  tables: { name: string; rows: number }[];
  verification: { ok: boolean; details: string[] } | null;
}

interface Listed {
  backups: Manifest[];
  problems: unknown[];
}

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A project folder whose config has one target `app` at `url`, backed up to ./backups. */
function project(url: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-bk-srv-'));
  dirs.push(dir);
  const config = { targets: { app: url }, backups: { storage: './backups' } };
  writeFileSync(path.join(dir, 'dbward.config.json'), JSON.stringify(config, null, 2));
  return dir;
}

async function list(dir: string): Promise<Listed> {
  const run = await runCli(['backups', 'list', '--json'], { cwd: dir });
  assert.equal(run.code, 0, run.all);
  return JSON.parse(run.stdout) as Listed;
}

/** `backup --verify` (plus `extra` flags) → exit 0; returns the new manifest from `backups list`. */
async function backupVerified(dir: string, extra: string[] = []): Promise<Manifest> {
  const before = new Set((await list(dir)).backups.map((b) => b.id));
  const run = await runCli(['backup', '--verify', ...extra], { cwd: dir });
  assert.equal(run.code, 0, run.all);
  assert.match(run.stdout, /✔ app: app-\d{8}T\d{6}Z-[0-9a-f]{4}/);
  assert.match(run.stdout, /verified/);
  assert.ok(!/\n\s+at /.test(run.all), 'no stack trace');
  const listed = await list(dir);
  assert.deepEqual(listed.problems, []);
  const fresh = listed.backups.filter((b) => !before.has(b.id));
  assert.equal(fresh.length, 1, 'one new backup is listed');
  const m = fresh[0]!;
  assert.equal(m.verification?.ok, true, JSON.stringify(m.verification));
  return m;
}

const tableRows = (m: Manifest): [string, number][] =>
  m.tables.map((t): [string, number] => [t.name, t.rows]).sort((a, b) => a[0].localeCompare(b[0]));

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

// ---------------------------------------------------------------- PostgreSQL

async function pgQuery<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Every row of the seeded tables, in a fixed order, as text: equal text = equal data. */
async function pgSnapshot(url: string, tables = ['public.customers', 'public.orders', 'billing.invoices']) {
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const rows = await pgQuery<{ r: string }>(url, `SELECT t::text AS r FROM ${t} t ORDER BY 1`);
    out[t] = rows.map((x) => x.r);
  }
  return out;
}

/** Every index and constraint definition in user schemas, sorted: equal lists = same structure. */
async function pgDefinitions(url: string): Promise<string[]> {
  const rows = await pgQuery<{ d: string }>(
    url,
    `SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS d FROM pg_constraint
       WHERE connamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema')
     UNION ALL
     SELECT indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
     ORDER BY 1`,
  );
  return rows.map((r) => r.d);
}

async function pgTables(url: string): Promise<string[]> {
  const rows = await pgQuery<{ name: string }>(
    url,
    `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
     WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

describe('dbward backup on PostgreSQL, through the CLI', { skip: skipReason('postgres') }, () => {
  const made: TestDatabase[] = [];
  const created: string[] = [];
  const roles: string[] = [];
  let source: TestDatabase;
  let dir: string;
  let first: Manifest;
  const fresh = async (): Promise<TestDatabase> => {
    const db = await freshDatabase('postgres');
    made.push(db);
    return db;
  };

  before(async () => {
    source = await fresh();
    await pgQuery(
      source.url,
      `CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, joined date);
       CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
         note text, total numeric(10,2), tags text[], meta jsonb);
       CREATE INDEX orders_customer ON orders (customer_id);
       CREATE SCHEMA billing;
       CREATE TABLE billing.invoices (id bigint PRIMARY KEY, amount numeric, paid boolean);
       CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
       INSERT INTO customers (name, joined)
         SELECT 'customer ' || g || ' ''quoted'' ü', date '2020-01-01' + g FROM generate_series(1, 40) g;
       INSERT INTO orders (customer_id, note, total, tags, meta)
         SELECT 1 + g % 40, md5(g::text), g * 1.25, ARRAY['a', 'b' || g], jsonb_build_object('n', g)
         FROM generate_series(1, 300) g;
       INSERT INTO billing.invoices SELECT g, g / 3.0, g % 2 = 0 FROM generate_series(1, 25) g;`,
    );
    dir = project(source.url);
  });
  after(async () => {
    for (const db of made) await db.cleanup();
    for (const name of created) {
      await pgQuery(adminUrl('postgres')!, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    for (const role of roles) await pgQuery(adminUrl('postgres')!, `DROP ROLE IF EXISTS ${role}`);
  });

  it('backs up with --verify: the manifest names every table with its exact row count', async () => {
    first = await backupVerified(dir);
    assert.equal(first.engine, 'postgres');
    assert.match(first.artifact, /\.pgdump\.zst$/);
    assert.deepEqual(tableRows(first), [
      ['billing.invoices', 25],
      ['public.customers', 40],
      ['public.orders', 300],
    ]);
    const verify = await runCli(['backup', 'verify', first.id], { cwd: dir });
    assert.equal(verify.code, 0, verify.all);
    assert.match(verify.stdout, /row counts match/);
  });

  it('restores into another empty database, identical row by row', async () => {
    const target = await fresh();
    const restore = await runCli(['restore', first.id, '--to-url', target.url], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.match(restore.stdout, /✔ restored/);
    assert.deepEqual(await pgSnapshot(target.url), await pgSnapshot(source.url));
    assert.deepEqual(await pgTables(target.url), await pgTables(source.url), 'the view came back too');
  });

  it('restore --create makes a database that does not exist yet', async () => {
    const name = `dbward_t_${randomBytes(5).toString('hex')}`;
    created.push(name);
    const url = withDatabase(source.url, name);
    const without = await runCli(['restore', first.id, '--to-url', url], { cwd: dir });
    assert.equal(without.code, 3, without.all);
    assert.match(without.all, /does not exist/);
    const restore = await runCli(['restore', first.id, '--to-url', url, '--create'], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgSnapshot(url), await pgSnapshot(source.url));
  });

  it('refuses to restore over a non-empty database without --force, and changes nothing', async () => {
    await pgQuery(source.url, `INSERT INTO customers (name) VALUES ('after the backup')`);
    const before = await pgSnapshot(source.url);
    const refused = await runCli(['restore', first.id], { cwd: dir });
    assert.equal(refused.code, 1, refused.all);
    assert.match(refused.all, /not empty/);
    assert.match(refused.all, /public\.customers/);
    assert.match(refused.all, /--force/);
    assert.ok(!/\n\s+at /.test(refused.all), 'no stack trace');
    assert.deepEqual(await pgSnapshot(source.url), before, 'nothing changed');

    const forced = await runCli(['restore', first.id, '--force'], { cwd: dir });
    assert.equal(forced.code, 0, forced.all);
    const [count] = await pgQuery<{ n: number }>(source.url, 'SELECT count(*)::int AS n FROM customers');
    assert.equal(count?.n, 40, 'back to the backup');
  });

  it('-j 2 dumps the directory format and restores it with -j 2', async () => {
    const m = await backupVerified(dir, ['-j', '2']);
    assert.match(m.artifact, /\.pgdir\.tar\.zst$/);
    assert.deepEqual(tableRows(m), tableRows(first));
    const target = await fresh();
    const restore = await runCli(['restore', m.id, '--to-url', target.url, '-j', '2'], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgSnapshot(target.url), await pgSnapshot(source.url));
  });

  // Fails today about one run in four (BUG): GNU `tar -x` exits at the archive's end marker without
  // reading the zero padding after it; postgres-backup-load.ts ignores the EPIPE, but pipeline()
  // has destroyed the artifact stream, so its `done` rejects with "Premature close" (E_UNEXPECTED).
  it('-j 2 on a database of some size: every verification and restore of the tar succeeds', async () => {
    const big = await fresh();
    await pgQuery(
      big.url,
      `CREATE TABLE accounts (id serial PRIMARY KEY, email text, balance numeric);
       INSERT INTO accounts (email, balance) SELECT 'user' || g || '@example.com', g FROM generate_series(1, 20000) g;`,
    );
    const bigDir = project(big.url);
    const m = await backupVerified(bigDir, ['-j', '2']);
    assert.match(m.artifact, /\.pgdir\.tar\.zst$/);
    const failures: string[] = [];
    for (let i = 0; i < 8; i++) {
      const verify = await runCli(['backup', 'verify', m.id], { cwd: bigDir });
      if (verify.code !== 0) failures.push(`verify: ${verify.all.trim()}`);
    }
    const target = await fresh();
    for (let i = 0; i < 4; i++) {
      const restore = await runCli(['restore', m.id, '--to-url', target.url, '--force', '-j', '2'], {
        cwd: bigDir,
      });
      if (restore.code !== 0) failures.push(`restore: ${restore.all.trim()}`);
    }
    assert.deepEqual(failures, []);
  });

  it('-j 2 restores a custom-format backup into an empty database: same rows, indexes, constraints', async () => {
    const target = await fresh();
    // An empty schema that is not in the way: the restore still drops and recreates it.
    await pgQuery(target.url, 'CREATE SCHEMA billing');
    const restore = await runCli(['restore', first.id, '--to-url', target.url, '-j', '2'], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgSnapshot(target.url), await pgSnapshot(source.url));
    assert.deepEqual(await pgDefinitions(target.url), await pgDefinitions(source.url));
  });

  it('-j 2 loads a table that holds most rows in two parts at once: every row once, same definitions', async () => {
    // 150,000 rows (over minSplitRows, and most of the dump): both pg_restores COPY a part of it.
    const big = await fresh();
    await pgQuery(
      big.url,
      `CREATE TABLE kinds (id int PRIMARY KEY, label text UNIQUE);
       INSERT INTO kinds SELECT g, 'kind ' || g FROM generate_series(1, 50) g;
       CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL REFERENCES kinds(id),
         at timestamptz NOT NULL, note text);
       INSERT INTO events SELECT g, 1 + g % 50, '2024-01-01'::timestamptz + g * interval '1 min',
         CASE WHEN g % 1000 = 0 THEN repeat(E'tab\there, a backslash \\ and a newline\n', 3) ELSE md5(g::text) END
       FROM generate_series(1, 150000) g;
       CREATE INDEX events_at ON events (at);`,
    );
    const bigDir = project(big.url);
    const m = await backupVerified(bigDir);
    const target = await fresh();
    const restore = await runCli(['restore', m.id, '--to-url', target.url, '-j', '2', '--verbose'], {
      cwd: bigDir,
    });
    assert.equal(restore.code, 0, restore.all);
    assert.match(restore.all, /public events loads in 2 parts at once/);
    const digest = `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids,
      md5(string_agg(t::text, '|' ORDER BY id)) AS md5 FROM events t`;
    assert.deepEqual(await pgQuery(target.url, digest), await pgQuery(big.url, digest));
    assert.deepEqual(await pgDefinitions(target.url), await pgDefinitions(big.url));

    // One part refused by the server: the other pg_restore and the shared stream stop too.
    const refused = await fresh();
    const failing = await runCli(['restore', m.id, '--to-url', refused.url, '-j', '2'], {
      cwd: bigDir,
      env: { DBWARD_PG_RESTORE: pgRestoreSpy(path.join(bigDir, 'lists'), 'data-0.list') },
    });
    assert.equal(failing.code, 1, failing.all);
    assert.match(failing.all, /read-only transaction/);
    assert.doesNotMatch(failing.all, /EPIPE|broken pipe|zstd|SIGTERM/i);
    assert.ok(!/\n\s+at /.test(failing.all), 'no stack trace');
  });

  it('-j 2 into an empty database whose table of contents spans many reads', async () => {
    // 300 tables, each with an index and a foreign key: a TOC of a few hundred kilobytes, so the
    // head written for the parallel post-data step is many stream chunks long.
    const wide = await fresh();
    await pgQuery(
      wide.url,
      `CREATE TABLE hub (id int PRIMARY KEY);
       INSERT INTO hub SELECT generate_series(1, 10);
       DO $$ BEGIN
         FOR i IN 1..300 LOOP
           EXECUTE format('CREATE TABLE spoke_%s (id serial PRIMARY KEY, hub_id int REFERENCES hub(id),
             label text DEFAULT %L)', i, repeat('a long default label ', 20));
           EXECUTE format('CREATE INDEX spoke_%s_label ON spoke_%s (label, hub_id)', i, i);
           EXECUTE format('INSERT INTO spoke_%s (hub_id) SELECT 1 + g %% 10 FROM generate_series(1, 20) g', i);
         END LOOP;
       END $$;`,
    );
    const wideDir = project(wide.url);
    const m = await backupVerified(wideDir);
    const target = await fresh();
    const restore = await runCli(['restore', m.id, '--to-url', target.url, '-j', '2'], { cwd: wideDir });
    assert.equal(restore.code, 0, restore.all);
    const definitions = await pgDefinitions(target.url);
    assert.equal(definitions.filter((d) => d.includes('FOREIGN KEY')).length, 300);
    assert.deepEqual(definitions, await pgDefinitions(wide.url));
    const [rows] = await pgQuery<{ n: number }>(target.url, 'SELECT count(*)::int AS n FROM spoke_300');
    assert.equal(rows?.n, 20);
  });

  /**
   * A pg_restore that copies each data or early list it is given into the directory `log`, then
   * runs the real one; with `readOnlyList`, the worker given that list connects read-only, so the
   * server rejects its COPY.
   */
  function pgRestoreSpy(log: string, readOnlyList?: string): string {
    mkdirSync(log, { recursive: true });
    const real = findPgTool('pg_restore', 'DBWARD_PG_RESTORE', {});
    assert.ok(real, 'pg_restore is installed');
    const spy = path.join(dir, `pg_restore-spy-${randomBytes(3).toString('hex')}`);
    const readOnly = readOnlyList
      ? `case "$a" in *${readOnlyList}) export PGOPTIONS='-c default_transaction_read_only=on';; esac`
      : '';
    writeFileSync(
      spy,
      `#!/bin/sh
for a in "$@"; do
  case "$a" in --use-list=*data-*|--use-list=*early-*)
    cp "\${a#--use-list=}" '${log}'/"$(basename "\${a#--use-list=}" | sed 's/^restore-[0-9a-f]*[.]//')"; ${readOnly};; esac
done
exec '${real}' "$@"
`,
      { mode: 0o755 },
    );
    return spy;
  }

  it('-j 2 into an empty database loads the tables’ data with two pg_restores, each a share', async () => {
    const log = path.join(dir, `lists-${randomBytes(3).toString('hex')}`);
    const target = await fresh();
    const restore = await runCli(['restore', first.id, '--to-url', target.url, '-j', '2'], {
      cwd: dir,
      env: { DBWARD_PG_RESTORE: pgRestoreSpy(log) },
    });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgSnapshot(target.url), await pgSnapshot(source.url));
    assert.deepEqual(await pgDefinitions(target.url), await pgDefinitions(source.url));
    const lists = spiedLists(log, 'data').map((l) =>
      [...l.matchAll(/TABLE DATA (\S+ \S+)/g)].map((m) => m[1]).sort(),
    );
    assert.equal(lists.length, 2, 'two data workers');
    // Balanced by rows: the 300 orders alone, the 40 customers and 25 invoices together.
    assert.deepEqual(
      lists.sort((a, b) => a.length - b.length),
      [['public orders'], ['billing invoices', 'public customers']],
    );
  });

  /** The lists of kind `data` or `early` the spy kept (one file each: the workers run at once). */
  const spiedLists = (log: string, kind: 'data' | 'early'): string[] =>
    readdirSync(log)
      .filter((f) => f.startsWith(`${kind}-`))
      .map((f) => readFileSync(path.join(log, f), 'utf8'));

  it('-j 2: a small table’s indexes are built while a big table still loads; foreign keys wait', async () => {
    const db = await fresh();
    await pgQuery(
      db.url,
      // zbig: its data comes after small's in the archive, so small's share never has to read
      // through big's rows first (that made which share finished first a race).
      `CREATE TABLE zbig (id int PRIMARY KEY, v text);
       CREATE INDEX zbig_v ON zbig (v);
       INSERT INTO zbig SELECT g, md5(g::text) FROM generate_series(1, 500000) g;
       CREATE TABLE small (id int PRIMARY KEY, big_id int REFERENCES zbig (id), label text UNIQUE);
       CREATE INDEX small_big ON small (big_id);
       INSERT INTO small SELECT g, g * 7, 'label ' || g FROM generate_series(1, 10) g;`,
    );
    const dbDir = project(db.url);
    const m = await backupVerified(dbDir);
    const log = path.join(dbDir, 'lists');
    const target = await fresh();
    const restore = await runCli(['restore', m.id, '--to-url', target.url, '-j', '2'], {
      cwd: dbDir,
      // One share per table (big would otherwise load in two parts, one in each share).
      env: { DBWARD_PG_RESTORE: pgRestoreSpy(log), DBWARD_RESTORE_SPLIT_ROWS: 'off' },
    });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgDefinitions(target.url), await pgDefinitions(db.url));
    const counts = `SELECT (SELECT count(*) FROM zbig)::int AS big, (SELECT count(*) FROM small)::int AS small`;
    assert.deepEqual(await pgQuery(target.url, counts), [{ big: 500000, small: 10 }]);
    const early = spiedLists(log, 'early');
    assert.equal(early.length, 1, 'one early step, for the small table’s share');
    const names = [...early[0]!.matchAll(/(?:CONSTRAINT|INDEX) public (.*) \S+$/gm)].map((x) => x[1]).sort();
    assert.deepEqual(names, ['small small_label_key', 'small small_pkey', 'small_big']);
  });

  it('-j 8 loads the data with at most four pg_restores (memory), and builds the rest with -j 8', async () => {
    const db = await fresh();
    await pgQuery(
      db.url,
      `DO $$ BEGIN
         FOR i IN 1..6 LOOP
           EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
           EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 100 * %s) g', i, i);
         END LOOP;
       END $$;`,
    );
    const dbDir = project(db.url);
    const m = await backupVerified(dbDir);
    const log = path.join(dbDir, 'lists');
    const target = await fresh();
    const restore = await runCli(['restore', m.id, '--to-url', target.url, '-j', '8'], {
      cwd: dbDir,
      env: { DBWARD_PG_RESTORE: pgRestoreSpy(log) },
    });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgDefinitions(target.url), await pgDefinitions(db.url));
    const data = spiedLists(log, 'data');
    assert.equal(data.length, 4, 'four data workers');
    const tables = data.flatMap((l) => [...l.matchAll(/TABLE DATA public (t\d)/g)].map((x) => x[1]));
    assert.deepEqual(tables.sort(), ['t1', 't2', 't3', 't4', 't5', 't6'], 'each table once');
  });

  it('-j 2 of a database without any table data restores its definitions', async () => {
    const db = await fresh();
    await pgQuery(
      db.url,
      `CREATE SCHEMA reports; CREATE VIEW reports.now AS SELECT now() AS at;
       CREATE FUNCTION reports.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';`,
    );
    const dbDir = project(db.url);
    const m = await backupVerified(dbDir);
    assert.deepEqual(m.tables, []);
    const target = await fresh();
    const restore = await runCli(['restore', m.id, '--to-url', target.url, '-j', '2'], { cwd: dbDir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgQuery(target.url, 'SELECT reports.answer() AS n'), [{ n: 42 }]);
  });

  it('-j 2: a data worker the server refuses stops the restore with the server’s reason', async () => {
    const log = path.join(dir, `lists-${randomBytes(3).toString('hex')}`);
    const target = await fresh();
    const restore = await runCli(['restore', first.id, '--to-url', target.url, '-j', '2'], {
      cwd: dir,
      env: { DBWARD_PG_RESTORE: pgRestoreSpy(log, 'data-1.list') },
    });
    assert.equal(restore.code, 1, restore.all);
    assert.match(restore.all, /pg_restore/);
    assert.match(restore.all, /read-only transaction/);
    assert.doesNotMatch(restore.all, /EPIPE|broken pipe|zstd|SIGTERM/i);
    assert.ok(!/\n\s+at /.test(restore.all), 'no stack trace');
    const [fks] = await pgQuery<{ n: number }>(
      target.url,
      `SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f'`,
    );
    assert.equal(fks?.n, 0, 'the post-data step did not run');
  });

  it('-j 2 over a non-empty database with --force replaces it (foreign keys dropped first)', async () => {
    const target = await fresh();
    const initial = await runCli(['restore', first.id, '--to-url', target.url], { cwd: dir });
    assert.equal(initial.code, 0, initial.all);
    await pgQuery(target.url, `INSERT INTO customers (name) VALUES ('to be replaced')`);
    const restore = await runCli(['restore', first.id, '--to-url', target.url, '--force', '-j', '2'], {
      cwd: dir,
    });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgSnapshot(target.url), await pgSnapshot(source.url));
    assert.deepEqual(await pgDefinitions(target.url), await pgDefinitions(source.url));
  });

  it('a restore the server rejects reports pg_restore’s error, not a broken pipe', async () => {
    const target = await fresh();
    // A login role that may connect but not create anything: the database is empty, so the
    // restore goes ahead, and pg_restore fails at its first CREATE while the dump streams in.
    const user = `dbward_t_${randomBytes(4).toString('hex')}`;
    roles.push(user);
    await pgQuery(adminUrl('postgres')!, `CREATE ROLE ${user} LOGIN PASSWORD 'not-secret-pw'`);
    const url = new URL(target.url);
    url.username = user;
    url.password = 'not-secret-pw';
    const restore = await runCli(['restore', first.id, '--to-url', url.toString()], { cwd: dir });
    assert.equal(restore.code, 1, restore.all);
    assert.match(restore.all, /pg_restore/);
    assert.match(restore.all, /permission denied/);
    assert.doesNotMatch(restore.all, /EPIPE|broken pipe|zstd/i);
    assert.ok(!/\n\s+at /.test(restore.all), 'no stack trace');
    assert.deepEqual(await pgTables(target.url), [], 'nothing was created');
  });

  it('restore --tables brings back only the named table', async () => {
    const target = await fresh();
    const restore = await runCli(
      ['restore', first.id, '--to-url', target.url, '--tables', 'public.customers'],
      {
        cwd: dir,
      },
    );
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await pgTables(target.url), ['public.customers']);
    const [count] = await pgQuery<{ n: number }>(target.url, 'SELECT count(*)::int AS n FROM customers');
    assert.equal(count?.n, 40);
  });
});

// ---------------------------------------------------------------- MariaDB

async function myQuery<T>(url: string, sql: string): Promise<T[]> {
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true });
  try {
    const [rows] = await conn.query(sql);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

async function mySnapshot(url: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of ['customers', 'orders', 'invoices']) {
    out[t] = JSON.stringify(await myQuery(url, `SELECT * FROM ${t} ORDER BY id`));
  }
  return out;
}

async function myTables(url: string): Promise<string[]> {
  const rows = await myQuery<{ n: string }>(
    url,
    'SELECT table_name AS n FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1',
  );
  return rows.map((r) => r.n);
}

describe('dbward backup on MariaDB, through the CLI', { skip: skipReason('mysql') }, () => {
  const made: TestDatabase[] = [];
  const created: string[] = [];
  let source: TestDatabase;
  let dir: string;
  let first: Manifest;
  const fresh = async (): Promise<TestDatabase> => {
    const db = await freshDatabase('mysql');
    made.push(db);
    return db;
  };

  before(async () => {
    source = await fresh();
    await myQuery(
      source.url,
      `CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, joined DATE);
       CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL,
         note TEXT, total DECIMAL(10,2), blob_col VARBINARY(16),
         FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB;
       CREATE TABLE invoices (id BIGINT PRIMARY KEY, amount DOUBLE, paid BOOLEAN);
       CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
       INSERT INTO customers (name, joined)
         SELECT CONCAT('customer ', seq, ' ''quoted'' ü'), DATE_ADD('2020-01-01', INTERVAL seq DAY) FROM seq_1_to_40;
       INSERT INTO orders (customer_id, note, total, blob_col)
         SELECT 1 + seq % 40, MD5(seq), seq * 1.25, UNHEX(MD5(seq)) FROM seq_1_to_300;
       INSERT INTO invoices SELECT seq, seq / 3, seq % 2 = 0 FROM seq_1_to_25;`,
    );
    dir = project(source.url);
  });
  after(async () => {
    for (const db of made) await db.cleanup();
    for (const name of created) await myQuery(adminUrl('mysql')!, `DROP DATABASE IF EXISTS ${name}`);
  });

  it('backs up with --verify: the manifest names every table with its exact row count', async () => {
    first = await backupVerified(dir);
    assert.equal(first.engine, 'mysql');
    assert.match(first.artifact, /\.sql\.zst$/);
    assert.deepEqual(tableRows(first), [
      [`${source.name}.customers`, 40],
      [`${source.name}.invoices`, 25],
      [`${source.name}.orders`, 300],
    ]);
    const verify = await runCli(['backup', 'verify', first.id], { cwd: dir });
    assert.equal(verify.code, 0, verify.all);
    assert.match(verify.stdout, /row counts match/);
  });

  it('restores into another empty database, identical row by row', async () => {
    const target = await fresh();
    const restore = await runCli(['restore', first.id, '--to-url', target.url], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await mySnapshot(target.url), await mySnapshot(source.url));
    assert.deepEqual(await myTables(target.url), await myTables(source.url), 'the view came back too');
  });

  it('restore --create makes a database that does not exist yet', async () => {
    const name = `dbward_t_${randomBytes(5).toString('hex')}`;
    created.push(name);
    const url = withDatabase(source.url, name);
    const restore = await runCli(['restore', first.id, '--to-url', url, '--create'], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await mySnapshot(url), await mySnapshot(source.url));
  });

  it('refuses to restore over a non-empty database without --force, and changes nothing', async () => {
    await myQuery(source.url, `INSERT INTO customers (name) VALUES ('after the backup')`);
    const before = await mySnapshot(source.url);
    const refused = await runCli(['restore', first.id], { cwd: dir });
    assert.equal(refused.code, 1, refused.all);
    assert.match(refused.all, /not empty/);
    assert.match(refused.all, /customers/);
    assert.match(refused.all, /--force/);
    assert.ok(!/\n\s+at /.test(refused.all), 'no stack trace');
    assert.deepEqual(await mySnapshot(source.url), before, 'nothing changed');

    const forced = await runCli(['restore', first.id, '--force'], { cwd: dir });
    assert.equal(forced.code, 0, forced.all);
    const [count] = await myQuery<{ n: number }>(source.url, 'SELECT count(*) AS n FROM customers');
    assert.equal(Number(count?.n), 40, 'back to the backup');
  });
});

// ---------------------------------------------------------------- Redis

const redisServer = findBinary('redis-server');
const redisSkip =
  skipReason('redis') ||
  (!redisServer && 'redis-server not found') ||
  (!findBinary('redis-cli') && 'redis-cli not found');

/** A password-protected redis-server of this file's own on a free port. */
const startOwnRedis = (): Promise<ThrowawayRedis> => startThrowawayRedis({ dirPrefix: 'dbward-cli-redis-' });

/** Every key of databases 0–3 with its type and value, for comparing two servers. */
async function redisSnapshot(server: ThrowawayRedis): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (let db = 0; db < 4; db++) {
    const c = server.client(db);
    for (const key of (await c.keys('*')).sort()) {
      const type = await c.type(key);
      const value =
        type === 'string'
          ? await c.get(key)
          : type === 'hash'
            ? await c.hgetall(key)
            : type === 'list'
              ? await c.lrange(key, 0, -1)
              : type === 'set'
                ? (await c.smembers(key)).sort()
                : type === 'zset'
                  ? await c.zrange(key, 0, -1, 'WITHSCORES')
                  : type;
      out[`db${db}/${key}`] = { type, value, ttl: (await c.ttl(key)) > 0 };
    }
  }
  return out;
}

describe('dbward backup on Redis, through the CLI', { skip: redisSkip }, () => {
  let source: ThrowawayRedis;
  let target: ThrowawayRedis;
  let dir: string;
  let first: Manifest;

  before(async () => {
    [source, target] = await Promise.all([startOwnRedis(), startOwnRedis()]);
    const db0 = source.client(0);
    const db2 = source.client(2);
    for (let i = 0; i < 30; i++) await db0.set(`user:${i}`, `name ${i}`);
    await db0.hset('config', { theme: 'dark', lang: 'de' });
    await db0.set('session', 'x', 'EX', 3600);
    await db2.rpush('queue', 'a', 'b', 'c');
    await db2.sadd('tags', 'x', 'y', 'z');
    await db2.zadd('scores', 1, 'one', 2, 'two');
    dir = project(source.url);
  });
  after(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('backs up with --verify: the manifest counts the keys of each database', async () => {
    first = await backupVerified(dir);
    assert.equal(first.engine, 'redis');
    assert.match(first.artifact, /\.rdb\.zst$/);
    assert.deepEqual(tableRows(first), [
      ['db0', 32],
      ['db2', 3],
    ]);
    const verify = await runCli(['backup', 'verify', first.id], { cwd: dir });
    assert.equal(verify.code, 0, verify.all);
  });

  it('restores into another, empty server: every key, type, value and TTL', async () => {
    const restore = await runCli(['restore', first.id, '--to-url', target.url], { cwd: dir });
    assert.equal(restore.code, 0, restore.all);
    assert.deepEqual(await redisSnapshot(target), await redisSnapshot(source));
  });

  it('refuses to restore over a non-empty server without --force, and changes nothing', async () => {
    await target.client(5).set('written-later', '1');
    const before = await redisSnapshot(target);
    const refused = await runCli(['restore', first.id, '--to-url', target.url], { cwd: dir });
    assert.equal(refused.code, 1, refused.all);
    assert.match(refused.all, /not empty/);
    assert.match(refused.all, /db0: 32 keys/);
    assert.match(refused.all, /--force/);
    assert.deepEqual(await redisSnapshot(target), before, 'nothing changed');
    assert.equal(await target.client(5).get('written-later'), '1');

    const forced = await runCli(['restore', first.id, '--to-url', target.url, '--force'], { cwd: dir });
    assert.equal(forced.code, 0, forced.all);
    assert.equal(await target.client(5).exists('written-later'), 0, 'the whole server was replaced');
    assert.deepEqual(await redisSnapshot(target), await redisSnapshot(source));
  });
});
