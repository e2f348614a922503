/**
 * Migrations on PostgreSQL, dbward against dbmate on the same files:
 *
 * 1. `migrate up` of 1,000 small migrations (each creates one table with an index) into a fresh
 *    database. Target: dbward's mean ≤ 1.5 × dbmate's.
 * 2. `migrate status` with 5,000 applied migrations. Target: dbward's mean ≤ 0.5 s.
 *
 * The files are generated in a scratch directory in dbmate's format, which dbward reads unchanged:
 * `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down`, versions zero-padded 00001…
 * Every timed `up` starts from an empty database: hyperfine's `--prepare` drops and recreates it
 * (psql from the server's installation, `DROP DATABASE … WITH (FORCE)`), for warm-up and timed runs
 * alike, and so does every peak-RSS run. Peak RSS is the client process's (dbward's node, dbmate's
 * Go binary), not the server backends'.
 *
 * dbmate comes from its npm package, whose binary ships in a per-platform package
 * (@dbmate/linux-x64 …). `scripts/install-deps.sh --bench` installs it outside the project's
 * lockfile (see the comment there); it is found through DBMATE_BIN, or an install made with
 *   npm install --prefix /tmp/dbward-bench-dbmate dbmate
 * dbmate gets its URL through an environment variable (`--env`), never `--url` (argv shows in ps),
 * and `--no-dump-schema`; it runs in a scratch directory, so no `.env` of the checkout applies.
 *
 * Sizes: BENCH_MIGRATIONS (1000) for `up`, BENCH_STATUS_MIGRATIONS (5000) for `status`.
 *
 *   node --import tsx bench/migrate-postgres.ts
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { findPostgresBin, start } from '../test/harness/servers/postgres-server.js';
import { isSkipped } from '../test/harness/servers/server-process.js';
import type { StartedServer } from '../test/harness/servers/server-process.js';
import {
  dbwardBin,
  pick,
  report,
  requireProgram,
  runBenchmark,
  runToJson,
  scratchDir,
  type Command,
  type Measured,
} from './lib/bench-kit.js';

const upCount = Number(process.env.BENCH_MIGRATIONS ?? 1000);
const statusCount = Number(process.env.BENCH_STATUS_MIGRATIONS ?? 5000);
const upTargetRatio = 1.5;
const statusTargetSeconds = 0.5;
const dbmatePrefix = '/tmp/dbward-bench-dbmate';
const installHint = `npm install --prefix ${dbmatePrefix} dbmate   (or set DBMATE_BIN to a dbmate binary)`;

let server: StartedServer | undefined;
const scratch: { cleanup: () => void }[] = [];

runBenchmark(
  async () => {
    const dbmate = findDbmate();
    const bin = findPostgresBin();
    const result = await start();
    if (isSkipped(result)) throw new Error(result.skip);
    server = result;
    const pgBin = path.dirname(bin!.postgres);
    const psql = path.join(pgBin, 'psql');
    const dbmateVersion = spawnSync(dbmate, ['--version'], { encoding: 'utf8' }).stdout.trim();
    console.log(`${server.version} on port ${server.port}; ${dbmateVersion} (${dbmate})`);

    const work = scratchDir('dbward-bench-migrate-');
    scratch.push(work);
    const upDir = path.join(work.dir, 'up');
    const statusDir = path.join(work.dir, 'status');
    writeMigrations(upDir, upCount);
    writeMigrations(statusDir, statusCount);
    console.log(`generated ${upCount} + ${statusCount} migrations in ${work.dir}`);

    const admin = new URL(server.adminUrl);
    const urlFor = (db: string): string => Object.assign(new URL(admin.href), { pathname: `/${db}` }).href;
    // dbmate's postgres driver defaults to sslmode=require; the throwaway server has no TLS.
    const dbmateUrl = (db: string): string => `${urlFor(db)}?sslmode=disable`;
    const baseEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PGHOST: admin.hostname,
      PGPORT: admin.port,
      PGUSER: decodeURIComponent(admin.username),
      PGPASSWORD: decodeURIComponent(admin.password),
      PGDATABASE: 'postgres',
    };
    const recreate = (db: string): string[] => [
      psql,
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      `drop database if exists ${db} with (force)`,
      '-c',
      `create database ${db}`,
      // Flush what the drop and create left dirty now, not during the timed run.
      '-c',
      'checkpoint',
    ];

    // ---- 1. migrate up: 1,000 migrations into a fresh database each run ----
    const upEnv = {
      ...baseEnv,
      DATABASE_URL: urlFor('bench_up'),
      DBMATE_DATABASE_URL: dbmateUrl('bench_up'),
    };
    const dbwardUp = [process.execPath, dbwardBin, 'migrate', 'up', '--migrations-dir', upDir];
    const dbmateUp = [
      dbmate,
      '--env',
      'DBMATE_DATABASE_URL',
      '--migrations-dir',
      upDir,
      '--no-dump-schema',
      'up',
    ];
    // Sanity: each tool, once, really applies every migration.
    for (const [argv, table] of [
      [dbwardUp, 'dbward_migrations'],
      [dbmateUp, 'schema_migrations'],
    ] as const) {
      run(recreate('bench_up'), baseEnv);
      run(argv, upEnv, work.dir);
      await expectApplied(urlFor('bench_up'), table, upCount);
    }
    const upResults = measureWithPrepare(
      [
        { name: `dbward migrate up`, argv: dbwardUp },
        { name: `dbmate up`, argv: dbmateUp },
      ],
      { warmup: 1, runs: 5, env: upEnv, prepare: recreate('bench_up'), cwd: work.dir },
    );
    const upSubject = pick(upResults, 'dbward migrate up');
    const upReference = pick(upResults, 'dbmate up');
    const upRatio = upSubject.mean / upReference.mean;
    report(upResults, {
      benchmark: 'migrate-up-postgres',
      subject: upSubject,
      reference: upReference,
      target: `dbward ≤ ${upTargetRatio}× dbmate for ${upCount} migrations (measured ${upRatio.toFixed(2)}×)`,
      pass: upRatio <= upTargetRatio,
    });

    // ---- 2. migrate status with 5,000 applied migrations ----
    const statusEnv = {
      ...baseEnv,
      DATABASE_URL: urlFor('bench_status'),
      DBMATE_DATABASE_URL: dbmateUrl('bench_status_dbmate'),
    };
    run(recreate('bench_status'), baseEnv);
    run(recreate('bench_status_dbmate'), baseEnv);
    let started = Date.now();
    run([process.execPath, dbwardBin, 'migrate', 'up', '--migrations-dir', statusDir], statusEnv, work.dir);
    console.log(
      `dbward applied ${statusCount} migrations in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    started = Date.now();
    run(
      [dbmate, '--env', 'DBMATE_DATABASE_URL', '--migrations-dir', statusDir, '--no-dump-schema', 'up'],
      statusEnv,
      work.dir,
    );
    console.log(
      `dbmate applied ${statusCount} migrations in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    await expectApplied(urlFor('bench_status'), 'dbward_migrations', statusCount);
    await expectApplied(urlFor('bench_status_dbmate'), 'schema_migrations', statusCount);

    const dbwardStatus = [
      process.execPath,
      dbwardBin,
      'migrate',
      'status',
      '--json',
      '--migrations-dir',
      statusDir,
    ];
    const dbmateStatus = [dbmate, '--env', 'DBMATE_DATABASE_URL', '--migrations-dir', statusDir, 'status'];
    // Sanity: dbward's JSON lists every migration as applied; dbmate's listing says so too.
    const entries = runToJson(dbwardStatus, statusEnv) as unknown;
    const list = (
      Array.isArray(entries) ? entries : ((entries as { migrations?: unknown[] }).migrations ?? [])
    ) as {
      state?: string;
      status?: string;
    }[];
    const applied = list.filter((e) => (e.state ?? e.status) === 'applied').length;
    console.log(`dbward status reported ${list.length} migrations, ${applied} applied`);
    if (list.length !== statusCount || applied !== statusCount) {
      throw new Error(`expected ${statusCount} applied migrations in dbward's status`);
    }
    const dbmateOut = run(dbmateStatus, statusEnv, work.dir);
    const dbmateApplied = (dbmateOut.match(/^\[X\]/gm) ?? []).length;
    console.log(`dbmate status listed ${dbmateApplied} applied`);
    if (dbmateApplied !== statusCount) throw new Error(`expected ${statusCount} applied in dbmate's status`);

    const statusResults = measureWithPrepare(
      [
        { name: 'dbward migrate status --json', argv: dbwardStatus },
        { name: 'dbmate status', argv: dbmateStatus },
      ],
      { warmup: 2, runs: 10, env: statusEnv, cwd: work.dir },
    );
    const statusSubject = pick(statusResults, 'dbward migrate status --json');
    report(statusResults, {
      benchmark: 'migrate-status-postgres',
      subject: statusSubject,
      reference: pick(statusResults, 'dbmate status'),
      target: `dbward migrate status ≤ ${statusTargetSeconds} s with ${statusCount} applied (measured ${statusSubject.mean.toFixed(3)} s)`,
      pass: statusSubject.mean <= statusTargetSeconds,
    });
  },
  async () => {
    await server?.stop();
    for (const s of scratch) s.cleanup();
  },
);

/** DBMATE_BIN, else the platform binary of the npm package installed under `dbmatePrefix`. */
function findDbmate(): string {
  const platform = `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch}`;
  const candidates = process.env.DBMATE_BIN
    ? [process.env.DBMATE_BIN]
    : [
        path.join(dbmatePrefix, 'node_modules', '@dbmate', platform, 'bin', 'dbmate'),
        path.join(
          dbmatePrefix,
          'node_modules',
          'dbmate',
          'node_modules',
          '@dbmate',
          platform,
          'bin',
          'dbmate',
        ),
      ];
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  throw new Error(`dbmate not found (looked at ${candidates.join(', ')}); install with: ${installHint}`);
}

/** `<version>_<name>.sql` files in dbmate's format, each creating one small table with an index. */
function writeMigrations(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true });
  const width = Math.max(5, String(count).length);
  for (let i = 1; i <= count; i++) {
    const v = String(i).padStart(width, '0');
    const t = `t${v}`;
    writeFileSync(
      path.join(dir, `${v}_create_${t}.sql`),
      `-- migrate:up
create table ${t} (id bigint primary key, name text not null, created_at timestamptz not null default now());
create index ${t}_name on ${t} (name);

-- migrate:down
drop table ${t};
`,
    );
  }
}

/** Run a command to completion (no shell), returning its stdout; throw with its stderr on failure. */
function run(argv: string[], env: NodeJS.ProcessEnv, cwd?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { env, cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    throw new Error(
      `${path.basename(argv[0]!)} ${argv.slice(1, 4).join(' ')} … failed (${r.error?.message ?? r.status}):\n${r.stderr}`,
    );
  }
  return r.stdout;
}

async function expectApplied(url: string, table: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tracked: number; tables: number }>(
      `select (select count(*) from ${table})::int as tracked,
              (select count(*) from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace
                 and relname ~ '^t[0-9]+$')::int as tables`,
    );
    const { tracked, tables } = rows[0]!;
    if (tracked !== count || tables !== count) {
      throw new Error(
        `${table}: expected ${count} migrations and tables, found ${tracked} rows and ${tables} tables`,
      );
    }
  } finally {
    await client.end();
  }
}

/**
 * Like bench-kit's `measure`, plus a `--prepare` command run before every timed (and warm-up) run
 * and before every peak-RSS run, so each starts from the same state (here: an empty database).
 */
function measureWithPrepare(
  commands: Command[],
  opts: {
    warmup: number;
    runs: number;
    env: NodeJS.ProcessEnv;
    cwd: string;
    prepare?: string[];
    rssRuns?: number;
  },
): Measured[] {
  for (const program of ['hyperfine', '/usr/bin/time', ...commands.map((c) => c.argv[0]!)]) {
    requireProgram(program, opts.env);
  }
  const quote = (arg: string): string =>
    /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
  const json = path.join(opts.cwd, 'hyperfine.json');
  const args = ['-N', '--style', 'basic', '--warmup', String(opts.warmup), '--runs', String(opts.runs)];
  if (opts.prepare) args.push('--prepare', opts.prepare.map(quote).join(' '));
  args.push('--export-json', json);
  for (const c of commands) args.push('--command-name', c.name, c.argv.map(quote).join(' '));
  const r = spawnSync('hyperfine', args, { cwd: opts.cwd, env: opts.env, stdio: 'inherit' });
  if (r.error) throw new Error(`hyperfine could not run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`hyperfine failed (exit ${r.status ?? r.signal})`);
  const results = (
    JSON.parse(readFileSync(json, 'utf8')) as {
      results: {
        mean: number;
        stddev: number | null;
        median: number;
        min: number;
        max: number;
        times: number[];
      }[];
    }
  ).results;
  return commands.map((c, i) => {
    const h = results[i];
    if (!h) throw new Error(`hyperfine reported no result for ${c.name}`);
    let peak = 0;
    const out = path.join(opts.cwd, 'time.out');
    for (let k = 0; k < (opts.rssRuns ?? 3); k++) {
      if (opts.prepare) run(opts.prepare, opts.env);
      const t = spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, ...c.argv], {
        cwd: opts.cwd,
        env: opts.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      if (t.error || t.status !== 0) throw new Error(`${c.name} failed under /usr/bin/time:\n${t.stderr}`);
      peak = Math.max(peak, Number(readFileSync(out, 'utf8').trim().split('\n').pop()));
    }
    return {
      name: c.name,
      mean: h.mean,
      stddev: h.stddev ?? 0,
      median: h.median,
      min: h.min,
      max: h.max,
      runs: h.times.length,
      peakRssKb: peak,
    };
  });
}
