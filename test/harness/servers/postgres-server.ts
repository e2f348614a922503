/**
 * A throwaway PostgreSQL for the test run: `initdb` into a private temp dir, then `postgres` on a
 * free port, listening on 127.0.0.1 only, running as the `postgres` system user when we are root.
 *
 * - The superuser password is random per run and reaches initdb through `--pwfile` (deleted after).
 * - Durability is off (fsync, synchronous_commit, full_page_writes): it is thrown away anyway.
 * - `pg_stat_statements` is preloaded and created in the `postgres` database; `hypopg` is
 *   available to CREATE EXTENSION in any test database when postgresql-<ver>-hypopg is installed.
 *
 * pg_hba.conf has host lines for 127.0.0.1 only and no `local` line at all. PostgreSQL 15 has no
 * way to say "every role except X" or "every database except Y" (regexes arrived in 16, and
 * `reject` produces a different message), so the "no pg_hba.conf entry" case is provoked by the
 * connection type instead: any connection over the Unix socket in the temp dir finds no line.
 * `DBWARD_TEST_POSTGRES_NOHBA_URL` is such a URL (valid user and password, socket host), and the
 * server answers it with `no pg_hba.conf entry for host "[local]", user "postgres", ...` (28000).
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import {
  discardDir,
  errorMessage,
  findBinary,
  isSkipped,
  makeServerDir,
  randomPassword,
  runAsFor,
  runToCompletion,
  ServerProcess,
  withPortRetry,
  writePrivateFile,
} from './server-process.js';
import type { RunAs, StartResult } from './server-process.js';

const HBA = `# Written by dbward's test harness (test/harness/servers/postgres-server.ts).
# TCP from 127.0.0.1 with passwords, and nothing else. There is deliberately no "local" line:
# connections over the Unix socket match no line, which lets tests provoke the server error
# "no pg_hba.conf entry for host ..." (see DBWARD_TEST_POSTGRES_NOHBA_URL).
host    all             all             127.0.0.1/32            scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
`;

/** The newest /usr/lib/postgresql/<ver>/bin with initdb and postgres, else both from PATH. */
export function findPostgresBin(): { initdb: string; postgres: string } | undefined {
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    // not a Debian-style layout
  }
  for (const v of versions) {
    const dir = path.join(root, v, 'bin');
    const initdb = findBinary('initdb', [dir]);
    const postgres = findBinary('postgres', [dir]);
    if (initdb?.startsWith(dir) && postgres?.startsWith(dir)) return { initdb, postgres };
  }
  const initdb = findBinary('initdb');
  const postgres = initdb ? findBinary('postgres', [path.dirname(initdb)]) : undefined;
  return initdb && postgres ? { initdb, postgres } : undefined;
}

export async function start(): Promise<StartResult> {
  const bin = findPostgresBin();
  if (!bin) return { skip: 'postgres: initdb not found; run scripts/install-deps.sh' };
  const runAs = runAsFor('postgres');
  if (runAs && isSkipped(runAs)) return { skip: `postgres: ${runAs.skip}` };

  const dir = makeServerDir('dbward-pg-', runAs);
  try {
    const password = randomPassword();
    const data = path.join(dir, 'data');
    await initCluster(bin.initdb, dir, data, password, runAs);
    writeFileSync(path.join(data, 'pg_hba.conf'), HBA);

    const logFile = path.join(dir, 'postgres.log');
    const { proc, port } = await withPortRetry(async (port) => {
      const proc = new ServerProcess(
        'postgres',
        bin.postgres,
        // prettier-ignore
        [
          '-D', data,
          '-p', String(port),
          '-k', dir,
          '-c', 'listen_addresses=127.0.0.1',
          '-c', 'shared_preload_libraries=pg_stat_statements',
          '-c', 'fsync=off',
          '-c', 'synchronous_commit=off',
          '-c', 'full_page_writes=off',
          '-c', 'max_connections=200',
        ],
        { dir, runAs, logFile },
        'SIGINT', // "fast" shutdown: does not wait for clients to disconnect
      );
      try {
        await proc.waitUntilReady(() => query(adminUrlFor(port, password), 'SELECT 1'));
        return { proc, port };
      } catch (error) {
        await proc.stop({ keepDir: true });
        throw error;
      }
    });

    const adminUrl = adminUrlFor(port, password);
    const notes: string[] = [];
    let version: string;
    try {
      await query(adminUrl, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      const rows = await query(
        adminUrl,
        `SELECT current_setting('server_version') AS v,
                EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') AS hypopg`,
      );
      const row = rows[0] as { v: string; hypopg: boolean } | undefined;
      version = `PostgreSQL ${row?.v.split(' ')[0] ?? '?'}`;
      if (!row?.hypopg) notes.push('hypopg not installed (apt-get install postgresql-<ver>-hypopg)');
    } catch (error) {
      await proc.stop();
      throw error;
    }

    const noHbaUrl = `postgres://postgres:${password}@localhost:${port}/postgres?host=${encodeURIComponent(dir)}`;
    return {
      version,
      port,
      adminUrl,
      env: { DBWARD_TEST_POSTGRES_NOHBA_URL: noHbaUrl },
      notes,
      stop: () => proc.stop(),
    };
  } catch (error) {
    discardDir(dir);
    return { skip: `postgres: failed to start: ${errorMessage(error)}` };
  }
}

async function initCluster(
  initdb: string,
  dir: string,
  data: string,
  password: string,
  runAs: RunAs | undefined,
): Promise<void> {
  const pwfile = path.join(dir, 'pwfile');
  writePrivateFile(pwfile, `${password}\n`, runAs);
  // prettier-ignore
  const args = (locale: string[]): string[] => [
    '-D', data,
    '-U', 'postgres',
    `--pwfile=${pwfile}`,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '--encoding=UTF8',
    ...locale,
    '--no-sync',
    '--no-instructions',
  ];
  const opts = { dir, runAs, logFile: path.join(dir, 'initdb.log') };
  try {
    await runToCompletion(initdb, args(['--locale=C.UTF-8']), opts);
  } catch (error) {
    // C.UTF-8 is everywhere on Debian/Ubuntu, not on every developer machine.
    if (!/locale/i.test(errorMessage(error))) throw error;
    rmSync(data, { recursive: true, force: true });
    await runToCompletion(initdb, args(['--no-locale']), opts);
  } finally {
    rmSync(pwfile, { force: true });
  }
}

function adminUrlFor(port: number, password: string): string {
  return `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const result = await client.query(sql);
    return result.rows as unknown[];
  } finally {
    await client.end().catch(() => {});
  }
}
