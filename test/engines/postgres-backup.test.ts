/**
 * The PostgreSQL backup role on a real server: a dump in an exported snapshot (rows committed
 * during the dump are neither counted nor dumped), verified by loading it into a scratch database,
 * restored into empty and non-empty databases, whole or some tables, single-stream and with
 * parallel jobs; broken, killed, old and fake pg_dumps fail with the right code, and the password
 * is never in pg_dump's argv or in an error message.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { BackupManifest } from '../../src/backup/manifest.js';
import { takeBackup } from '../../src/backup/take-backup.js';
import { DbwardError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Target } from '../../src/core/target.js';
import type { BackupContext, BackupRole, DumpOutcome, LoadContext } from '../../src/engines/backup-role.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { findPgDump, findPgTool } from '../../src/engines/postgres/postgres-schema-dump.js';
import { openStorage } from '../../src/storage/open-storage.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

const schema = `
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('ok', 'meh');
CREATE TABLE app.customers (
  id serial PRIMARY KEY, name text NOT NULL, balance numeric(12,2), mood app.mood,
  created timestamptz DEFAULT now(), photo bytea);
CREATE TABLE app.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id int NOT NULL REFERENCES app.customers (id), total double precision, placed_at timestamp);
CREATE INDEX orders_customer ON app.orders (customer_id);
CREATE VIEW app.big_orders AS SELECT * FROM app.orders WHERE total > 100;
CREATE SEQUENCE app.invoice_no START 1000;
SELECT nextval('app.invoice_no');
CREATE TABLE app.events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.notes (id int PRIMARY KEY, body text);
INSERT INTO app.customers (name, balance, mood, created, photo)
  SELECT 'c' || g || ' ünï ''q''', g * 1.25, 'ok', '2024-01-01'::timestamptz + g * interval '1 hour',
         decode(md5(g::text), 'hex')
  FROM generate_series(1, 300) g;
INSERT INTO app.orders (customer_id, total, placed_at)
  SELECT 1 + g % 300, g * 0.5, '2024-02-01'::timestamp + g * interval '1 minute' FROM generate_series(1, 1000) g;
INSERT INTO app.events SELECT g, '2024-03-01'::date + g FROM generate_series(1, 10) g;
INSERT INTO public.notes SELECT g, repeat('n', g) FROM generate_series(1, 50) g;
`;

const expectedCounts = [
  { name: 'app.customers', rows: 300 },
  { name: 'app.events_2024', rows: 10 },
  { name: 'app.orders', rows: 1000 },
  { name: 'public.notes', rows: 50 },
];
const dataTables = ['app.customers', 'app.orders', 'app.events', 'public.notes'];

/** One md5 over every row of each table, in a stable order: equal digests = equal data. */
async function digests(conn: SqlConnection, tables = dataTables): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const table of tables) {
    const { rows } = await conn.query<{ d: string }>(
      `SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS d FROM ${table} t`,
    );
    out[table] = rows[0]!.d;
  }
  return out;
}

/** An executable shell script standing in for pg_dump. */
function fakeTool(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

const versionLine = `if [ "$1" = --version ]; then echo 'pg_dump (PostgreSQL) 15.20'; exit 0; fi`;

describe('PostgreSQL backup role', { skip: skipReason('postgres') }, () => {
  let role: BackupRole;
  let source: TestDatabase;
  let target: Target;
  let conn: SqlConnection;
  let tempDir: string;
  const password = adminUrl('postgres') ? decodeURIComponent(new URL(adminUrl('postgres')!).password) : '';
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    role = await postgresEngine.roles.backup!();
    source = await freshDatabase('postgres');
    target = testTarget(source.url);
    conn = await connectSql(postgresEngine, target);
    await conn.query(schema);
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await conn?.close();
    await source?.cleanup();
  });
  beforeEach(async () => {
    tempDir = await mkdtemp(path.join(tmpdir(), 'dbward-pgbackup-'));
  });
  afterEach(async () => {
    delete process.env.DBWARD_PG_DUMP;
    await rm(tempDir, { recursive: true, force: true });
  });

  const backupCtx = (jobs = 1): BackupContext => ({
    target,
    spec: postgresEngine.parseUrl(target.url),
    logger: silentLogger,
    tempDir,
    jobs,
  });
  const loadCtx = (into: Target, extension: string, extra: Partial<LoadContext> = {}): LoadContext => ({
    target: into,
    spec: postgresEngine.parseUrl(into.url),
    logger: silentLogger,
    tempDir,
    extension,
    jobs: 1,
    ...extra,
  });

  /** Plan and dump, writing the stream to a file; resolves when done has. */
  async function dumpToFile(jobs = 1): Promise<{ file: string; outcome: DumpOutcome; extension: string }> {
    const ctx = backupCtx(jobs);
    const plan = await role.plan(conn, ctx);
    const running = await role.dump(conn, ctx, plan);
    const file = path.join(tempDir, `dump.${plan.extension}`);
    const [, outcome] = await Promise.all([pipeline(running.stream!, createWriteStream(file)), running.done]);
    return { file, outcome, extension: plan.extension };
  }

  /** A fresh empty database, connected; dropped after the file. */
  async function emptyDatabase(): Promise<{ target: Target; conn: SqlConnection }> {
    const db = await freshDatabase('postgres');
    const restoreTarget = testTarget(db.url);
    const restoreConn = await connectSql(postgresEngine, restoreTarget);
    cleanups.push(async () => {
      await restoreConn.close();
      await db.cleanup();
    });
    return { target: restoreTarget, conn: restoreConn };
  }

  async function scratchDatabases(): Promise<string[]> {
    const { rows } = await conn.query<{ name: string }>(
      "SELECT datname AS name FROM pg_database WHERE datname LIKE 'dbward\\_scratch\\_%'",
    );
    return rows.map((r) => r.name);
  }

  async function expectDumpError(pattern: RegExp): Promise<DbwardError> {
    const ctx = backupCtx();
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    const drained = pipeline(running.stream!, createWriteStream(path.join(tempDir, 'x')));
    const err = await running.done.then(
      () => assert.fail('the dump should have failed'),
      (e: unknown) => e,
    );
    await drained.catch(() => undefined);
    assert.ok(err instanceof DbwardError, String(err));
    assert.equal(err.code, 'E_BACKUP_DUMP');
    assert.match(err.message, pattern);
    if (password) assert.ok(!err.message.includes(password), 'no password in the message');
    assert.equal(conn.poolStats().inUse, 0, 'the snapshot session was given back');
    return err;
  }

  it('plans with the server version, pg_dump’s version and the format by job count', async () => {
    const plan = await role.plan(conn, backupCtx());
    assert.equal(plan.serverVersion, await conn.serverVersion());
    assert.equal(plan.tool.name, 'pg_dump');
    assert.match(plan.tool.version, /^\d+\.\d+$/);
    assert.equal(plan.extension, 'pgdump');
    assert.equal((await role.plan(conn, backupCtx(4))).extension, 'pgdir.tar');
  });

  it('dumps in a snapshot: rows committed during the dump are neither counted nor in the copy', async () => {
    const expected = await digests(conn);
    const ctx = backupCtx();
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    // The snapshot is exported by now, and nothing has been read from the stream yet.
    await conn.query(`INSERT INTO app.customers (name) SELECT 'late' FROM generate_series(1, 5)`);
    await conn.query(`INSERT INTO public.notes VALUES (1000, 'late')`);
    try {
      const file = path.join(tempDir, 'dump.pgdump');
      const [, outcome] = await Promise.all([
        pipeline(running.stream!, createWriteStream(file)),
        running.done,
      ]);
      assert.deepEqual(outcome.tables, expectedCounts);
      assert.ok((await stat(file)).size > 10_000);

      let progressed = 0;
      const scratchBefore = await scratchDatabases();
      const copy = await role.loadCopy(
        createReadStream(file),
        conn,
        loadCtx(target, 'pgdump', { onProgress: (n) => (progressed = n) }),
      );
      // Other test files make scratch databases too: ours is the one that appeared.
      const mine = (await scratchDatabases()).filter((name) => !scratchBefore.includes(name));
      try {
        assert.equal(progressed, (await stat(file)).size);
        const checked = await copy.check();
        assert.deepEqual(checked.tables, outcome.tables);
        assert.deepEqual(checked.problems, []);
        assert.ok(checked.checks.includes('pg_restore exited 0'));
        assert.ok(checked.checks.includes('4 tables counted'));
        assert.equal(mine.length, 1);
        const url = new URL(source.url);
        url.pathname = `/${mine[0]}`;
        const scratchConn = await connectSql(postgresEngine, url.toString());
        try {
          assert.deepEqual(await digests(scratchConn), expected);
        } finally {
          await scratchConn.close();
        }
      } finally {
        await copy.dispose();
      }
      assert.ok(!(await scratchDatabases()).includes(mine[0]!), 'dispose() dropped the scratch database');
    } finally {
      await conn.query(`DELETE FROM app.customers WHERE name = 'late'`);
      await conn.query(`DELETE FROM public.notes WHERE id = 1000`);
    }
  });

  it('restores into an empty database, then over it with parallel jobs, reproducing the data', async () => {
    const { file } = await dumpToFile();
    const restored = await emptyDatabase();
    const ctx = loadCtx(restored.target, 'pgdump');
    assert.deepEqual(await role.existingContents(restored.conn, ctx), []);

    await role.restore(createReadStream(file), restored.conn, ctx);
    assert.deepEqual(await digests(restored.conn), await digests(conn));
    const contents = await role.existingContents(restored.conn, ctx);
    for (const item of [
      'app.customers (table)',
      'app.events (partitioned table)',
      'app.big_orders (view)',
      'app.invoice_no (sequence)',
      'app.mood (type)',
      'public.notes (table)',
    ]) {
      assert.ok(contents.includes(item), `${item} in ${contents.join(', ')}`);
    }
    const { rows } = await restored.conn.query<{ n: string }>('SELECT last_value AS n FROM app.invoice_no');
    assert.equal(rows[0]!.n, '1000');

    // Again over the restored data (--clean), from a temp file with pg_restore -j 2.
    await restored.conn.query("UPDATE public.notes SET body = 'changed'");
    await role.restore(createReadStream(file), restored.conn, { ...ctx, jobs: 2 });
    assert.deepEqual(await digests(restored.conn), await digests(conn));
    assert.deepEqual(readdirSync(tempDir), ['dump.pgdump'], 'temporary files removed');
  });

  it('restores only the named tables', async () => {
    const { file } = await dumpToFile();
    const restored = await emptyDatabase();
    // What the tables depend on exists, as in the live database a few tables are restored into.
    await restored.conn.query("CREATE SCHEMA app; CREATE TYPE app.mood AS ENUM ('ok', 'meh')");
    const ctx = loadCtx(restored.target, 'pgdump', { tables: ['app.customers', 'public.notes'] });
    await role.restore(createReadStream(file), restored.conn, ctx);
    const { rows } = await restored.conn.query<{ name: string }>(
      "SELECT schemaname || '.' || tablename AS name FROM pg_tables WHERE schemaname IN ('app', 'public') ORDER BY 1",
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ['app.customers', 'public.notes'],
    );
    const tables = ['app.customers', 'public.notes'];
    assert.deepEqual(await digests(restored.conn, tables), await digests(conn, tables));
    const { rows: keys } = await restored.conn.query<{ name: string }>(
      "SELECT conname AS name FROM pg_constraint WHERE contype = 'p' AND connamespace <> 'pg_catalog'::regnamespace ORDER BY 1",
    );
    assert.deepEqual(
      keys.map((r) => r.name),
      ['customers_pkey', 'notes_pkey'],
      'their primary keys came along',
    );

    await assert.rejects(
      role.restore(createReadStream(file), restored.conn, { ...ctx, tables: ['app.nope'] }),
      (err: DbwardError) => err.code === 'E_BACKUP_RESTORE' && /app\.nope/.test(err.message),
    );
  });

  it('dumps with parallel jobs as a tar of pg_dump’s directory, and loads it back', async () => {
    const { file, outcome, extension } = await dumpToFile(2);
    assert.equal(extension, 'pgdir.tar');
    assert.deepEqual(outcome.tables, expectedCounts);
    assert.deepEqual(readdirSync(tempDir), ['dump.pgdir.tar'], 'the dump directory was removed');
    assert.equal(readFileSync(file).subarray(0, 2).toString(), './', 'a tar of the directory');

    const copy = await role.loadCopy(createReadStream(file), conn, loadCtx(target, extension, { jobs: 2 }));
    try {
      assert.deepEqual((await copy.check()).tables, outcome.tables);
    } finally {
      await copy.dispose();
    }
    const restored = await emptyDatabase();
    await role.restore(
      createReadStream(file),
      restored.conn,
      loadCtx(restored.target, extension, { jobs: 2 }),
    );
    assert.deepEqual(await digests(restored.conn), await digests(conn));
  });

  it('rejects a pg_dump that fails, outputs nothing or garbage, or is killed', async () => {
    process.env.DBWARD_PG_DUMP = fakeTool(
      tempDir,
      'fail',
      `${versionLine}\necho "auth failed for $PGPASSWORD" >&2; exit 1`,
    );
    const err = await expectDumpError(/pg_dump exited with code 1: auth failed for/);
    if (password) assert.ok(!(err.hint ?? '').includes(password));
    process.env.DBWARD_PG_DUMP = fakeTool(tempDir, 'empty', `${versionLine}\nexit 0`);
    await expectDumpError(/produced no output/);
    process.env.DBWARD_PG_DUMP = fakeTool(
      tempDir,
      'garbage',
      `${versionLine}\necho 'this is not an archive'`,
    );
    await expectDumpError(/table of contents is unreadable/);
    process.env.DBWARD_PG_DUMP = fakeTool(tempDir, 'killed', `${versionLine}\nprintf PGDMP; kill -KILL $$`);
    await expectDumpError(/killed by SIGKILL/);
  });

  /** takeBackup into local storage under tempDir, unencrypted: pg_dump writes straight into zstd. */
  async function backupThroughPipeline(): Promise<BackupManifest> {
    return takeBackup(conn, target, {
      storage: openStorage(path.join(tempDir, 'backups')),
      key: null,
      logger: silentLogger,
    });
  }

  it('through the backup pipeline, pg_dump writes straight into zstd: exact raw size, readable TOC', async () => {
    const manifest = await backupThroughPipeline();
    const artifact = path.join(tempDir, 'backups', target.name, manifest.artifact);
    const raw = path.join(tempDir, 'raw.pgdump');
    const unzstd = spawnSync('zstd', ['-d', '-q', '-f', '-o', raw, artifact]);
    assert.equal(unzstd.status, 0, String(unzstd.stderr));
    // zstd's own report gave the raw size: it is the size of the dump, to the byte.
    assert.equal(manifest.rawBytes, (await stat(raw)).size);
    assert.deepEqual(manifest.tables, expectedCounts);
    const list = spawnSync(findPgTool('pg_restore', 'DBWARD_PG_RESTORE')!, ['--list', raw], {
      encoding: 'utf8',
    });
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /TABLE DATA app orders/);
  });

  it('through the backup pipeline, a pg_dump that fails, outputs nothing or garbage, or is killed stores nothing', async () => {
    const cases: [string, string, RegExp][] = [
      ['fail', 'echo "auth failed" >&2; exit 1', /pg_dump exited with code 1: auth failed/],
      ['empty', 'exit 0', /produced no output|table of contents is unreadable/],
      [
        'garbage',
        "head -c 3000000 /dev/urandom; echo 'this is not an archive'",
        /table of contents is unreadable/,
      ],
      ['killed', 'printf PGDMP; kill -KILL $$', /killed by SIGKILL/],
    ];
    for (const [name, body, pattern] of cases) {
      process.env.DBWARD_PG_DUMP = fakeTool(tempDir, name, `${versionLine}\n${body}`);
      await assert.rejects(backupThroughPipeline(), (err: DbwardError) => {
        assert.equal(err.code, 'E_BACKUP_DUMP', `${name}: ${err.message}`);
        assert.match(err.message, pattern, name);
        return true;
      });
      const stored = readdirSync(path.join(tempDir, 'backups', target.name));
      assert.deepEqual(stored, [], `${name}: nothing left in storage`);
      assert.equal(conn.poolStats().inUse, 0, `${name}: the snapshot session was given back`);
    }
  });

  it('abort() stops pg_dump and gives the snapshot session back', async () => {
    const ctx = backupCtx();
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    running.abort();
    await assert.rejects(
      running.done,
      (err: DbwardError) => err.code === 'E_BACKUP_DUMP' && /aborted/.test(err.message),
    );
    assert.equal(conn.poolStats().inUse, 0);
  });

  it('a dump stream destroyed by its consumer stops the dump like abort()', async () => {
    const ctx = backupCtx();
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    running.stream!.destroy();
    await assert.rejects(running.done, (err: DbwardError) => err.code === 'E_BACKUP_DUMP');
    assert.equal(conn.poolStats().inUse, 0);
  });

  it('a copy that does not load rejects with pg_restore’s message and leaves no scratch database', async () => {
    const file = path.join(tempDir, 'garbage.pgdump');
    writeFileSync(file, 'PGDMP but not really an archive');
    const scratchBefore = await scratchDatabases();
    await assert.rejects(
      role.loadCopy(createReadStream(file), conn, loadCtx(target, 'pgdump')),
      (err: DbwardError) => {
        assert.equal(err.code, 'E_BACKUP_RESTORE');
        assert.match(err.message, /pg_restore exited with code 1: pg_restore: error:/);
        return true;
      },
    );
    const left = (await scratchDatabases()).filter((name) => !scratchBefore.includes(name));
    assert.deepEqual(left, []);
  });

  it('refuses a pg_dump older than the server, naming the package', async () => {
    process.env.DBWARD_PG_DUMP = fakeTool(tempDir, 'old', `echo 'pg_dump (PostgreSQL) 9.6.1'`);
    await assert.rejects(role.plan(conn, backupCtx()), (err: DbwardError) => {
      assert.equal(err.code, 'E_BACKUP_TOOL');
      assert.match(err.message, /pg_dump 9\.6 cannot dump a PostgreSQL 15 server/);
      assert.match(err.hint ?? '', /postgresql-client-15/);
      return true;
    });
  });

  it('keeps the password out of pg_dump’s argv', async () => {
    const real = findPgDump({ PATH: process.env.PATH });
    assert.ok(real);
    const argsFile = path.join(tempDir, 'argv');
    // Records its own /proc cmdline, then becomes the real pg_dump with the same arguments.
    process.env.DBWARD_PG_DUMP = fakeTool(
      tempDir,
      'wrapper',
      `[ "$1" = --version ] || tr '\\0' ' ' < /proc/$$/cmdline > '${argsFile}'\nexec '${real}' "$@"`,
    );
    const { outcome } = await dumpToFile();
    assert.deepEqual(outcome.tables, expectedCounts);
    const argv = readFileSync(argsFile, 'utf8');
    assert.match(argv, /--snapshot=\S+/);
    assert.ok(password.length > 0, 'the test server has a password');
    assert.ok(!argv.includes(password), `password in argv: ${argv}`);
  });

  it('createDatabase creates a missing database and leaves an existing one', async () => {
    const name = `dbward_t_create_${process.pid}`;
    const url = new URL(source.url);
    url.pathname = `/${name}`;
    const ctx = loadCtx(testTarget(url.toString()), 'pgdump');
    cleanups.push(async () => void (await conn.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));
    await role.createDatabase!(ctx);
    await role.createDatabase!(ctx);
    const { rows } = await conn.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    assert.equal(rows.length, 1);
  });
});
