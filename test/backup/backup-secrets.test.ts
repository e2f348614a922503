/**
 * A password never appears in ps output, logs, manifests or --json. While `dbward backup --verify
 * --json -v` and `dbward restore` run, a poller reads /proc/<pid>/cmdline of every process every
 * 20 ms; the database password (of a dedicated user with a distinctive password) and the backup
 * key must be in none of those command lines, in nothing the CLI prints, and in no file the backup
 * stored. The poller must also have seen the dump and restore tools, or it proved nothing.
 *
 * The password reaches dbward the way the docs recommend: `${DB_PASSWORD}` in the config, from
 * the environment; restores go to a configured target (`--to`), never `--to-url` (argv).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { findBinary } from '../harness/servers/server-process.js';
import { adminUrl, skipReason } from '../harness/test-databases.js';
import { runCli, type CliRun } from '../helpers/run-cli.js';
import { startThrowawayRedis } from '../helpers/throwaway-redis.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Collects the command line of every process seen while it runs. */
function watchCommandLines(): { stop(): string[] } {
  const seen = new Set<string>();
  const scan = (): void => {
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    } catch {
      return;
    }
    for (const pid of pids) {
      try {
        const raw = readFileSync(`/proc/${pid}/cmdline`);
        if (raw.length > 0) seen.add(raw.toString('utf8').replace(/\0/g, ' ').trim());
      } catch {
        // The process ended between readdir and read.
      }
    }
  };
  scan();
  const timer = setInterval(scan, 20);
  return {
    stop: () => {
      clearInterval(timer);
      scan();
      return [...seen];
    },
  };
}

const hasProc = (() => {
  try {
    return readdirSync('/proc').some((p) => /^\d+$/.test(p));
  } catch {
    return false;
  }
})();

const distinctivePassword = (): string => `S3cr3t-pw-${randomBytes(6).toString('hex')}`;
const backupKey = randomBytes(32);
const keyText = backupKey.toString('base64');

/** Everything a secret could leak into must be free of all of `secrets`. */
function assertNowhere(secrets: string[], places: Record<string, string[]>): void {
  for (const [where, texts] of Object.entries(places)) {
    for (const text of texts) {
      for (const secret of secrets) {
        assert.ok(!text.includes(secret), `a secret appeared in ${where}: ${text.slice(0, 500)}`);
      }
    }
  }
}

/** The text of every JSON file (manifests, verification records) under the storage directory. */
function storedJson(dir: string): string[] {
  const root = path.join(dir, 'backups');
  const out: string[] = [];
  for (const target of readdirSync(root)) {
    for (const name of readdirSync(path.join(root, target))) {
      if (name.endsWith('.json')) out.push(readFileSync(path.join(root, target, name), 'utf8'));
    }
  }
  return out;
}

interface Scenario {
  /** URL of the source with the password written as `${DB_PASSWORD}`. */
  sourceUrl: string;
  /** URL of an empty (or not yet existing, with create) restore destination, same placeholder. */
  copyUrl: string;
  create: boolean;
  password: string;
  /** Command-line patterns of the tools the poller must have seen. */
  tools: RegExp[];
}

/** backup --verify --json -v, backups list --json, backup verify -v and restore --to copy -v, watched. */
async function runWatched(s: Scenario): Promise<{ runs: CliRun[]; cmdlines: string[]; stored: string[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-bk-secret-'));
  dirs.push(dir);
  const config = {
    targets: { app: s.sourceUrl, copy: s.copyUrl },
    defaultTarget: 'app',
    backups: { storage: './backups' },
  };
  writeFileSync(path.join(dir, 'dbward.config.json'), JSON.stringify(config, null, 2));
  const env = { DB_PASSWORD: s.password, DBWARD_BACKUP_KEY: keyText };
  const watch = watchCommandLines();
  const runs: CliRun[] = [];
  let cmdlines: string[];
  try {
    const backup = await runCli(['backup', '--verify', '--json', '-v'], {
      cwd: dir,
      env,
    });
    runs.push(backup);
    assert.equal(backup.code, 0, backup.all);
    const [result] = JSON.parse(backup.stdout) as { ok: boolean; manifest: { id: string } }[];
    assert.equal(result?.ok, true, backup.stdout);
    const id = result.manifest.id;
    const list = await runCli(['backups', 'list', '--json', '-v'], { cwd: dir, env });
    runs.push(list);
    assert.equal(list.code, 0, list.all);
    const verify = await runCli(['backup', 'verify', id, '-v', '--json'], { cwd: dir, env });
    runs.push(verify);
    assert.equal(verify.code, 0, verify.all);
    const restore = await runCli(['restore', id, '--to', 'copy', '-v', ...(s.create ? ['--create'] : [])], {
      cwd: dir,
      env,
    });
    runs.push(restore);
    assert.equal(restore.code, 0, restore.all);
  } finally {
    cmdlines = watch.stop();
  }
  for (const tool of s.tools) {
    assert.ok(
      cmdlines.some((c) => tool.test(c)),
      `the poller never saw ${tool} (it saw ${cmdlines.length} command lines)`,
    );
  }
  return { runs, cmdlines, stored: storedJson(dir) };
}

function assertNoLeak(password: string, watched: Awaited<ReturnType<typeof runWatched>>): void {
  const secrets = [password, keyText, backupKey.toString('hex'), backupKey.toString('base64url')];
  assertNowhere(secrets, {
    'a process command line': watched.cmdlines,
    'CLI output': watched.runs.map((r) => r.all),
    'a stored manifest or verification record': watched.stored,
  });
  // The key did encrypt: the manifest records only its id.
  assert.ok(
    watched.stored.some((t) => /"keyId": ?"[0-9a-f]{16}"/.test(t)),
    'the backup was encrypted',
  );
}

const hostPart = (admin: string): string => new URL(admin).host;

describe('no password in ps, logs, manifests or --json', { skip: !hasProc && 'no /proc' }, () => {
  describe('PostgreSQL', { skip: skipReason('postgres') }, () => {
    const user = `dbw_secret_${randomBytes(4).toString('hex')}`;
    const password = distinctivePassword();
    const dbs = [`${user}_src`, `${user}_copy`, `${user}_new`];
    const admin = adminUrl('postgres')!;
    const sql = async (text: string, database?: string): Promise<void> => {
      const u = new URL(admin);
      if (database) u.pathname = `/${database}`;
      const client = new pg.Client({ connectionString: u.toString() });
      await client.connect();
      try {
        await client.query(text);
      } finally {
        await client.end();
      }
    };
    const url = (database: string): string =>
      `postgres://${user}:\${DB_PASSWORD}@${hostPart(admin)}/${database}`;

    before(async () => {
      await sql(`CREATE ROLE ${user} LOGIN CREATEDB PASSWORD '${password}'`);
      await sql(`CREATE DATABASE ${dbs[0]} OWNER ${user}`);
      await sql(`CREATE DATABASE ${dbs[1]} OWNER ${user}`);
      // Created as the user, so the dump and restore run with its privileges only.
      const u = new URL(admin);
      u.username = user;
      u.password = password;
      u.pathname = `/${dbs[0]}`;
      const client = new pg.Client({ connectionString: u.toString() });
      await client.connect();
      await client.query(`CREATE TABLE accounts (id serial PRIMARY KEY, email text, balance numeric);
        INSERT INTO accounts (email, balance) SELECT 'user' || g || '@example.com', g FROM generate_series(1, 20000) g;
        CREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), what text);
        INSERT INTO audit (what) SELECT repeat('x', 50) FROM generate_series(1, 5000);`);
      await client.end();
    });
    after(async () => {
      for (const db of dbs) await sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await sql(`DROP ROLE IF EXISTS ${user}`);
    });

    /** Back up the source and restore it into `copy` while watching for the password. */
    const roundTripLeaksNothing = async (copy: string, create: boolean): Promise<void> => {
      const watched = await runWatched({
        sourceUrl: url(dbs[0]!),
        copyUrl: url(copy),
        create,
        password,
        tools: [/pg_dump/, /pg_restore/],
      });
      assertNoLeak(password, watched);
    };

    it('backup, verify and restore into an existing database', () => roundTripLeaksNothing(dbs[1]!, false));

    it('restore --create into a new database', () => roundTripLeaksNothing(dbs[2]!, true));

    it('a failing backup (wrong password) does not print the password it tried', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dbward-bk-secret-'));
      dirs.push(dir);
      const wrong = distinctivePassword();
      writeFileSync(
        path.join(dir, 'dbward.config.json'),
        JSON.stringify({ targets: { app: url(dbs[0]!) }, backups: { storage: './backups' } }),
      );
      const run = await runCli(['backup', '-v', '--json'], { cwd: dir, env: { DB_PASSWORD: wrong } });
      assert.equal(run.code, 3, run.all);
      assert.match(run.all, /password/i);
      assert.ok(!run.all.includes(wrong), run.all);
    });
  });

  describe('MariaDB', { skip: skipReason('mysql') }, () => {
    const user = `dbw_secret_${randomBytes(4).toString('hex')}`;
    const password = distinctivePassword();
    const dbs = [`${user}_src`, `${user}_copy`, `${user}_new`];
    const admin = adminUrl('mysql')!;
    const url = (database: string): string =>
      `mysql://${user}:\${DB_PASSWORD}@${hostPart(admin)}/${database}`;
    const sql = async (text: string): Promise<void> => {
      const conn = await mysql.createConnection({ uri: admin, multipleStatements: true });
      try {
        await conn.query(text);
      } finally {
        await conn.end();
      }
    };

    before(async () => {
      await sql(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}';
        GRANT ALL PRIVILEGES ON *.* TO '${user}'@'%';
        CREATE DATABASE ${dbs[0]}; CREATE DATABASE ${dbs[1]};
        CREATE TABLE ${dbs[0]}.accounts (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(100), balance DECIMAL(12,2));
        USE ${dbs[0]};
        INSERT INTO accounts (email, balance) SELECT CONCAT('user', seq, '@example.com'), seq FROM seq_1_to_20000;`);
    });
    after(async () => {
      await sql(`DROP USER IF EXISTS '${user}'@'%'`);
      for (const db of dbs) await sql(`DROP DATABASE IF EXISTS ${db}`);
    });

    it('backup, verify and restore into an existing database', async () => {
      const watched = await runWatched({
        sourceUrl: url(dbs[0]!),
        copyUrl: url(dbs[1]!),
        create: false,
        password,
        tools: [/mariadb-dump|mysqldump/, /--defaults-extra-file/],
      });
      assertNoLeak(password, watched);
    });

    it('restore --create into a new database', async () => {
      const watched = await runWatched({
        sourceUrl: url(dbs[0]!),
        copyUrl: url(dbs[2]!),
        create: true,
        password,
        tools: [/mariadb-dump|mysqldump/],
      });
      assertNoLeak(password, watched);
    });
  });

  const redisServer = findBinary('redis-server');
  const redisSkip =
    skipReason('redis') ||
    (!redisServer && 'redis-server not found') ||
    (!findBinary('redis-cli') && 'redis-cli not found');

  describe('Redis', { skip: redisSkip }, () => {
    const password = distinctivePassword();
    const servers: { port: number; stop(): Promise<void> }[] = [];

    /** A redis-server of our own whose password is in a 0600 config file, not in its argv. */
    async function ownRedis(): Promise<number> {
      const server = await startThrowawayRedis({ password, dirPrefix: 'dbward-secret-redis-' });
      servers.push(server);
      return server.port;
    }

    after(async () => {
      await Promise.all(servers.map((s) => s.stop()));
    });

    it('backup, verify (a temporary redis-server) and restore into another server', async () => {
      const [source, copy] = await Promise.all([ownRedis(), ownRedis()]);
      const seed = new Redis({ port: source, password, lazyConnect: true });
      await seed.connect();
      for (let i = 0; i < 2000; i++) await seed.set(`k:${i}`, `v${i}`);
      seed.disconnect();
      const watched = await runWatched({
        sourceUrl: `redis://:\${DB_PASSWORD}@127.0.0.1:${source}/0`,
        copyUrl: `redis://:\${DB_PASSWORD}@127.0.0.1:${copy}/0`,
        create: false,
        password,
        tools: [/redis-cli/],
      });
      assertNoLeak(password, watched);
      const check = new Redis({ port: copy, password, lazyConnect: true });
      await check.connect();
      assert.equal(await check.dbsize(), 2000, 'the restore went through');
      check.disconnect();
    });
  });
});
