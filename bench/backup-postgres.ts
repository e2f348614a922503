/**
 * `dbward backup` and `dbward restore` of a ~1.6 GB PostgreSQL database (bench/lib/backup-fixture.ts:
 * customers and orders of random prose, md5 tokens, numbers and timestamps, four secondary
 * indexes), side by side with pg_dump and pg_restore, in one run on one throwaway server.
 *
 * Targets (issue 5):
 * - `dbward backup` (encrypted, zstd level 3) wall time ≤ 0.3× `pg_dump -Fc -f file`, and its
 *   artifact ≤ 0.9× pg_dump's file;
 * - `dbward restore` into an empty database ≤ 1.05× `pg_restore -d` of pg_dump's file, at the same
 *   -j (by default -j 1 and -j 2; pg_restore gets dbward's `--no-owner --no-privileges
 *   --exit-on-error`);
 * - peak RSS of dbward's own node process ≤ 150 MB in both.
 *
 * Every command runs once per round, the sides alternating (BENCH_BACKUP_RUNS rounds of backups,
 * BENCH_RESTORE_RUNS of restores, 2 each by default); each restore starts from a freshly created
 * empty database (hyperfine --prepare: DROP … WITH (FORCE), CREATE, CHECKPOINT) and is checked
 * afterwards (the orders row count). The restore uses the last backup each side made.
 * Passwords travel only in the environment: DATABASE_URL / RESTORE_URL for dbward (through a
 * dbward.config.json in the scratch directory with `${…}` references), PGPASSWORD for the tools.
 *
 * Knobs: BENCH_BACKUP_GB (1.6; 0.1 for a quick run), BENCH_PG_URL (reuse a server, below), BENCH_BACKUP_RUNS, BENCH_RESTORE_RUNS,
 * BENCH_RESTORE_JOBS ("1,2"), BENCH_BACKUP_EXTRA=jobs2 (also time `dbward backup -j 2`),
 * BENCH_BACKUP_LOG (append the figures as JSON lines).
 *
 *   node --import tsx bench/backup-postgres.ts
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { findPostgresBin, start } from '../test/harness/servers/postgres-server.js';
import { isSkipped } from '../test/harness/servers/server-process.js';
import type { StartedServer } from '../test/harness/servers/server-process.js';
import { dbwardBin, report, runBenchmark, scratchDir } from './lib/bench-kit.js';
import type { Measured } from './lib/bench-kit.js';
import {
  artifactSize,
  gb,
  line,
  mb,
  run,
  withDatabase,
  fixtureGb,
  generatePostgres,
  jsonOf,
  logFigures,
  measureRounds,
  printTable,
  type RoundsResult,
  type Generated,
  type TimedCommand,
} from './lib/backup-fixture.js';

const backupRounds = Number(process.env.BENCH_BACKUP_RUNS ?? 2);
const restoreRounds = Number(process.env.BENCH_RESTORE_RUNS ?? 2);
const restoreJobs = (process.env.BENCH_RESTORE_JOBS ?? '1,2').split(',').map(Number);
const extra = new Set((process.env.BENCH_BACKUP_EXTRA ?? '').split(',').filter(Boolean));
const target = { backupTime: 0.3, size: 0.9, restoreTime: 1.05, rssMb: 150 };
/**
 * BENCH_PG_URL: the admin URL of a running server whose `bench` database this fixture filled
 * before (a rerun skips the minutes of generating it); its `restored` database is dropped.
 */
const reuseUrl = process.env.BENCH_PG_URL;

async function existingVersion(adminUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>(
      `select 'PostgreSQL ' || current_setting('server_version') as v`,
    );
    return rows[0]!.v;
  } finally {
    await client.end();
  }
}

async function existingData(benchUrl: string): Promise<Generated> {
  const client = new pg.Client({ connectionString: benchUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ orders: string; customers: string; bytes: string }>(
      `select (select count(*) from orders) as orders, (select count(*) from customers) as customers,
              pg_database_size(current_database()) as bytes`,
    );
    const row = rows[0]!;
    return { orders: Number(row.orders), customers: Number(row.customers), bytes: Number(row.bytes) };
  } finally {
    await client.end();
  }
}

let server: StartedServer | undefined;
let work: { dir: string; cleanup: () => void } | undefined;

runBenchmark(
  async () => {
    const bin = findPostgresBin();
    const pgBin = path.dirname(bin!.postgres);
    let adminUrl: string;
    let version: string;
    if (reuseUrl) {
      adminUrl = reuseUrl;
      version = await existingVersion(reuseUrl);
    } else {
      const result = await start();
      if (isSkipped(result)) throw new Error(result.skip);
      server = result;
      adminUrl = server.adminUrl;
      version = server.version;
    }
    const url = new URL(adminUrl);
    console.log(`${version} on port ${url.port}; binaries in ${pgBin}; ${fixtureGb} GB of data`);

    const psql = path.join(pgBin, 'psql');
    const env: NodeJS.ProcessEnv = {
      // The server's own pg_dump / pg_restore first: dbward and the reference use the same ones.
      PATH: `${pgBin}${path.delimiter}${process.env.PATH ?? ''}`,
      HOME: process.env.HOME,
      DATABASE_URL: withDatabase(url, 'bench'),
      RESTORE_URL: withDatabase(url, 'restored'),
      DBWARD_BACKUP_KEY: randomBytes(32).toString('base64'),
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: 'postgres',
    };
    const sql = (database: string, ...statements: string[]): string[] => [
      psql,
      '-X',
      '-q',
      '-tA',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      database,
      ...statements.flatMap((s) => ['-c', s]),
    ];
    let data: Generated;
    if (reuseUrl) {
      data = await existingData(env.DATABASE_URL!);
      console.log(`reusing ${data.orders} orders, ${gb(data.bytes)}`);
    } else {
      run(sql('postgres', 'create database bench'), env);
      data = await generatePostgres(env.DATABASE_URL!);
    }

    work = scratchDir('dbward-bench-backup-');
    const storage = path.join(work.dir, 'storage');
    const pgDumpFile = path.join(work.dir, 'pg_dump.Fc');
    writeFileSync(
      path.join(work.dir, 'dbward.config.json'),
      JSON.stringify({
        defaultTarget: 'main',
        targets: { main: '${DATABASE_URL}', restored: '${RESTORE_URL}' },
      }),
    );
    const dbward = (...args: string[]): string[] => [process.execPath, dbwardBin, ...args];

    // ---- backup
    const backupCommands: TimedCommand[] = [
      {
        name: 'dbward backup',
        argv: dbward('backup', 'main', '--storage', storage, '--no-verify', '--no-prune'),
        prepare: ['rm', '-rf', storage],
      },
      {
        name: 'pg_dump -Fc',
        argv: [path.join(pgBin, 'pg_dump'), '-Fc', '-d', 'bench', '-f', pgDumpFile],
        prepare: ['rm', '-f', pgDumpFile],
      },
    ];
    if (extra.has('jobs2')) {
      backupCommands.push({
        name: 'dbward backup -j 2',
        argv: dbward('backup', 'main', '-j', '2', '--storage', `${storage}-j2`, '--no-verify', '--no-prune'),
        prepare: ['rm', '-rf', `${storage}-j2`],
      });
    }
    const backups = measureRounds(backupCommands, { rounds: backupRounds, env, cwd: work.dir });
    mkdirSync(storage, { recursive: true });
    const listing = jsonOf(
      dbward('backups', 'list', 'main', '--json', '--storage', storage),
      env,
      work.dir,
    ) as {
      backups: { storedBytes: number; rawBytes: number; tables: { name: string; rows: number }[] }[];
    };
    const manifest = listing.backups[0];
    if (!manifest) throw new Error('dbward backups list shows no backup');
    const orders = manifest.tables.find((t) => t.name === 'public.orders');
    if (orders?.rows !== data.orders) {
      throw new Error(`the backup counted ${orders?.rows} orders, the database has ${data.orders}`);
    }
    const artifactBytes = artifactSize(path.join(storage, 'main'));
    const pgDumpBytes = statSync(pgDumpFile).size;

    // ---- restore
    const recreate = sql(
      'postgres',
      'drop database if exists restored with (force)',
      'create database restored',
      'checkpoint',
    );
    const restoreCommands: TimedCommand[] = restoreJobs.flatMap((j) => [
      {
        name: `dbward restore -j ${j}`,
        argv: dbward('restore', 'latest', '--to', 'restored', '--storage', storage, '-j', String(j)),
        prepare: recreate,
      },
      {
        name: `pg_restore -j ${j}`,
        argv: [
          path.join(pgBin, 'pg_restore'),
          '--no-owner',
          '--no-privileges',
          '--exit-on-error',
          '-d',
          'restored',
          '-j',
          String(j),
          pgDumpFile,
        ],
        prepare: recreate,
      },
    ]);
    const restores = measureRounds(restoreCommands, {
      rounds: restoreRounds,
      env,
      cwd: work.dir,
      // pg_restore once, untimed: the first restore after the backup rounds ran ~3 s slower.
      warmup: restoreCommands.filter((c) => c.name.startsWith('pg_restore')).slice(0, 1),
      afterEach: (name) => {
        const count = Number(run(sql('restored', 'select count(*) from orders'), env).trim());
        if (count !== data.orders) throw new Error(`${name} restored ${count} orders, not ${data.orders}`);
      },
    });

    // ---- verdicts
    const byName = (list: RoundsResult[], name: string): RoundsResult => list.find((r) => r.name === name)!;
    const dbwardBackup = byName(backups, 'dbward backup');
    const pgDump = byName(backups, 'pg_dump -Fc');
    const rows: string[][] = [];
    const verdicts: { what: string; pass: boolean }[] = [];
    const judge = (what: string, pass: boolean): string => {
      verdicts.push({ what, pass });
      return `${what}: ${pass ? 'PASS' : 'FAIL'}`;
    };
    const rssOk = (r: RoundsResult): boolean => (r.nodeRssKb ?? r.treeRssKb) <= target.rssMb * 1024;
    const backupRatio = dbwardBackup.mean / pgDump.mean;
    const sizeRatio = artifactBytes / pgDumpBytes;
    rows.push(
      line(dbwardBackup, pgDump, `${mb(artifactBytes)} (${sizeRatio.toFixed(2)}×)`, [
        judge(`time ≤ ${target.backupTime}×`, backupRatio <= target.backupTime),
        judge(`size ≤ ${target.size}×`, sizeRatio <= target.size),
        judge(`RSS ≤ ${target.rssMb} MB`, rssOk(dbwardBackup)),
      ]),
      line(pgDump, pgDump, mb(pgDumpBytes), []),
    );
    for (const r of backups.filter((b) => b !== dbwardBackup && b !== pgDump)) {
      rows.push(line(r, pgDump, mb(artifactSize(path.join(`${storage}-j2`, 'main'))), []));
    }
    for (const j of restoreJobs) {
      const ours = byName(restores, `dbward restore -j ${j}`);
      const theirs = byName(restores, `pg_restore -j ${j}`);
      rows.push(
        line(ours, theirs, '', [
          judge(`-j ${j} time ≤ ${target.restoreTime}×`, ours.mean / theirs.mean <= target.restoreTime),
          judge(`-j ${j} RSS ≤ ${target.rssMb} MB`, rssOk(ours)),
        ]),
        line(theirs, theirs, '', []),
      );
    }
    console.log(
      `\nbackup-postgres: ${data.orders} orders + ${data.customers} customers, database ${gb(data.bytes)}, ` +
        `raw dump (pg_dump -Fc -Z0) ${gb(manifest.rawBytes)}; ${backupRounds} backup / ${restoreRounds} restore rounds`,
    );
    printTable(['command', 'mean ± sd (runs)', 'ratio', 'artifact', 'node RSS', 'tree RSS', 'targets'], rows);

    const measured = (r: RoundsResult): Measured => ({
      name: r.name,
      mean: r.mean,
      stddev: r.stddev,
      median: r.median,
      min: r.min,
      max: r.max,
      runs: r.times.length,
      peakRssKb: r.nodeRssKb ?? r.treeRssKb,
    });
    report([measured(dbwardBackup), measured(pgDump)], {
      benchmark: 'backup-postgres',
      subject: measured(dbwardBackup),
      reference: measured(pgDump),
      target: `backup ≤ ${target.backupTime}× pg_dump -Fc, artifact ≤ ${target.size}× (measured ${backupRatio.toFixed(2)}×, ${sizeRatio.toFixed(2)}×)`,
      pass: backupRatio <= target.backupTime && sizeRatio <= target.size && rssOk(dbwardBackup),
    });
    for (const j of restoreJobs) {
      const ours = measured(byName(restores, `dbward restore -j ${j}`));
      const theirs = measured(byName(restores, `pg_restore -j ${j}`));
      report([ours, theirs], {
        benchmark: `restore-postgres -j ${j}`,
        subject: ours,
        reference: theirs,
        target: `restore ≤ ${target.restoreTime}× pg_restore (measured ${(ours.mean / theirs.mean).toFixed(2)}×)`,
        pass: ours.mean / theirs.mean <= target.restoreTime && ours.peakRssKb <= target.rssMb * 1024,
      });
    }
    logFigures({
      benchmark: 'backup-postgres',
      server: version,
      data,
      rawBytes: manifest.rawBytes,
      artifactBytes,
      pgDumpBytes,
      backups,
      restores,
      verdicts,
    });
  },
  async () => {
    work?.cleanup();
    await server?.stop();
  },
);
