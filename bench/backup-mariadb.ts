/**
 * `dbward backup` and `dbward restore` of a ~1.6 GB MariaDB database (bench/lib/backup-fixture.ts:
 * the same customers and orders as the PostgreSQL benchmark, four secondary indexes), side by side
 * with the usual shell pipelines, in one run on one throwaway server.
 *
 * Targets (issue 5):
 * - `dbward backup` (encrypted, zstd level 3) wall time ≤ 0.4×
 *   `mariadb-dump --single-transaction bench | gzip > file`;
 * - `dbward restore` into an empty database ≤ 1.05× `gunzip < file | mariadb restored`;
 * - peak RSS of dbward's own node process ≤ 150 MB in both.
 *
 * The reference pipelines run under `bash -c 'set -o pipefail; …'` and log in through a 0600
 * option file (`--defaults-extra-file`), so no password is in any argument; dbward gets
 * DATABASE_URL / RESTORE_URL through a dbward.config.json of `${…}` references in the scratch
 * directory. The server's InnoDB buffer pool is raised to 2 GB first (the harness starts it with
 * 128 MB; a server holding a 1.6 GB database would have more), the same for both sides.
 *
 * Every command runs once per round, alternating (BENCH_BACKUP_RUNS rounds of backups, 2 by
 * default; BENCH_RESTORE_RUNS rounds of restores, 1 by default: a SQL replay of 1.6 GB takes
 * minutes). Each restore starts from a freshly created empty database and is checked afterwards
 * (the orders row count).
 *
 * Knobs: BENCH_BACKUP_GB (1.6; 0.1 for a quick run), BENCH_BACKUP_RUNS, BENCH_RESTORE_RUNS,
 * BENCH_BACKUP_LOG (append the figures as JSON lines).
 *
 *   node --import tsx bench/backup-mariadb.ts
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { start } from '../test/harness/servers/mariadb-server.js';
import { isSkipped } from '../test/harness/servers/server-process.js';
import type { StartedServer } from '../test/harness/servers/server-process.js';
import { dbwardBin, report, requireProgram, runBenchmark, scratchDir } from './lib/bench-kit.js';
import type { Measured } from './lib/bench-kit.js';
import {
  artifactSize,
  gb,
  line,
  mb,
  run,
  withDatabase,
  fixtureGb,
  generateMariadb,
  jsonOf,
  logFigures,
  measureRounds,
  printTable,
  type RoundsResult,
  type TimedCommand,
} from './lib/backup-fixture.js';

const backupRounds = Number(process.env.BENCH_BACKUP_RUNS ?? 2);
const restoreRounds = Number(process.env.BENCH_RESTORE_RUNS ?? 1);
const target = { backupTime: 0.4, restoreTime: 1.05, rssMb: 150 };

let server: StartedServer | undefined;
let work: { dir: string; cleanup: () => void } | undefined;

runBenchmark(
  async () => {
    for (const program of ['mariadb', 'mariadb-dump', 'gzip', 'bash']) requireProgram(program);
    const result = await start();
    if (isSkipped(result)) throw new Error(result.skip);
    server = result;
    console.log(`${server.version} on port ${server.port}; ${fixtureGb} GB of data`);

    work = scratchDir('dbward-bench-backup-');
    const url = new URL(server.adminUrl);
    // The reference tools' login, in a 0600 option file.
    const optionFile = path.join(work.dir, 'client.cnf');
    writeFileSync(
      optionFile,
      `[client]\nhost=${url.hostname}\nport=${url.port}\nuser=${decodeURIComponent(url.username)}\npassword=${decodeURIComponent(url.password)}\n`,
      { mode: 0o600 },
    );
    const client = (...args: string[]): string[] => [
      'mariadb',
      `--defaults-extra-file=${optionFile}`,
      ...args,
    ];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: withDatabase(url, 'bench'),
      RESTORE_URL: withDatabase(url, 'restored'),
      DBWARD_BACKUP_KEY: randomBytes(32).toString('base64'),
    };
    run(client('-e', 'set global innodb_buffer_pool_size = 2147483648; create database bench'), env);
    const data = await generateMariadb(server.adminUrl, 'bench');

    const storage = path.join(work.dir, 'storage');
    const dumpFile = path.join(work.dir, 'bench.sql.gz');
    writeFileSync(
      path.join(work.dir, 'dbward.config.json'),
      JSON.stringify({
        defaultTarget: 'main',
        targets: { main: '${DATABASE_URL}', restored: '${RESTORE_URL}' },
      }),
    );
    const dbward = (...args: string[]): string[] => [process.execPath, dbwardBin, ...args];
    const bash = (script: string): string[] => ['bash', '-c', `set -o pipefail; ${script}`];

    // ---- backup
    const backups = measureRounds(
      [
        {
          name: 'dbward backup',
          argv: dbward('backup', 'main', '--storage', storage, '--no-verify', '--no-prune'),
          prepare: ['rm', '-rf', storage],
        },
        {
          name: 'mariadb-dump | gzip',
          argv: bash(
            `mariadb-dump --defaults-extra-file=${optionFile} --single-transaction bench | gzip > ${dumpFile}`,
          ),
          prepare: ['rm', '-f', dumpFile],
        },
      ],
      { rounds: backupRounds, env, cwd: work.dir },
    );
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
    const orders = manifest.tables.find((t) => t.name.endsWith('orders'));
    if (orders?.rows !== data.orders) {
      throw new Error(`the backup counted ${orders?.rows} orders, the database has ${data.orders}`);
    }
    const artifactBytes = artifactSize(path.join(storage, 'main'));
    const dumpBytes = statSync(dumpFile).size;

    // ---- restore
    const recreate = client('-e', 'drop database if exists restored; create database restored');
    const restoreCommands: TimedCommand[] = [
      {
        name: 'dbward restore',
        argv: dbward('restore', 'latest', '--to', 'restored', '--storage', storage),
        prepare: recreate,
      },
      {
        name: 'gunzip | mariadb',
        argv: bash(`gunzip < ${dumpFile} | mariadb --defaults-extra-file=${optionFile} restored`),
        prepare: recreate,
      },
    ];
    const restores = measureRounds(restoreCommands, {
      rounds: restoreRounds,
      env,
      cwd: work.dir,
      afterEach: (name) => {
        const count = Number(run(client('-N', '-e', 'select count(*) from restored.orders'), env).trim());
        if (count !== data.orders) throw new Error(`${name} restored ${count} orders, not ${data.orders}`);
      },
    });

    // ---- verdicts
    const [ourBackup, theirBackup] = backups as [RoundsResult, RoundsResult];
    const [ourRestore, theirRestore] = restores as [RoundsResult, RoundsResult];
    const verdicts: { what: string; pass: boolean }[] = [];
    const judge = (what: string, pass: boolean): string => {
      verdicts.push({ what, pass });
      return `${what}: ${pass ? 'PASS' : 'FAIL'}`;
    };
    const rssOk = (r: RoundsResult): boolean => (r.nodeRssKb ?? r.treeRssKb) <= target.rssMb * 1024;
    const backupRatio = ourBackup.mean / theirBackup.mean;
    const restoreRatio = ourRestore.mean / theirRestore.mean;
    console.log(
      `\nbackup-mariadb: ${data.orders} orders + ${data.customers} customers, database ${gb(data.bytes)}, ` +
        `raw dump ${gb(manifest.rawBytes)}; ${backupRounds} backup / ${restoreRounds} restore rounds`,
    );
    printTable(
      ['command', 'mean ± sd (runs)', 'ratio', 'artifact', 'node RSS', 'tree RSS', 'targets'],
      [
        line(ourBackup, theirBackup, `${mb(artifactBytes)} (${(artifactBytes / dumpBytes).toFixed(2)}×)`, [
          judge(`time ≤ ${target.backupTime}×`, backupRatio <= target.backupTime),
          judge(`RSS ≤ ${target.rssMb} MB`, rssOk(ourBackup)),
        ]),
        line(theirBackup, theirBackup, mb(dumpBytes), []),
        line(ourRestore, theirRestore, '', [
          judge(`time ≤ ${target.restoreTime}×`, restoreRatio <= target.restoreTime),
          judge(`RSS ≤ ${target.rssMb} MB`, rssOk(ourRestore)),
        ]),
        line(theirRestore, theirRestore, '', []),
      ],
    );

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
    report([measured(ourBackup), measured(theirBackup)], {
      benchmark: 'backup-mariadb',
      subject: measured(ourBackup),
      reference: measured(theirBackup),
      target: `backup ≤ ${target.backupTime}× mariadb-dump | gzip (measured ${backupRatio.toFixed(2)}×)`,
      pass: backupRatio <= target.backupTime && rssOk(ourBackup),
    });
    report([measured(ourRestore), measured(theirRestore)], {
      benchmark: 'restore-mariadb',
      subject: measured(ourRestore),
      reference: measured(theirRestore),
      target: `restore ≤ ${target.restoreTime}× gunzip | mariadb (measured ${restoreRatio.toFixed(2)}×)`,
      pass: restoreRatio <= target.restoreTime && rssOk(ourRestore),
    });
    logFigures({
      benchmark: 'backup-mariadb',
      server: server.version,
      data,
      rawBytes: manifest.rawBytes,
      artifactBytes,
      dumpBytes,
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
