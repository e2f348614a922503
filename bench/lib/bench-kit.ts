/**
 * Shared plumbing for the benchmarks in bench/: timing with hyperfine (its JSON export, parsed
 * here), peak RSS with GNU time, the printed report, and one summary line per benchmark for
 * run-all.sh (appended to $BENCH_SUMMARY_FILE when it is set).
 *
 * Commands run without a shell (hyperfine -N), in a scratch directory so no dbward.config.* or .env
 * of the checkout is picked up, with the environment given: passwords travel in env vars
 * (DATABASE_URL, PGPASSWORD), never in arguments.
 */
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  appendFileSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const dbwardBin = path.join(repoRoot, 'bin', 'dbward.js');

/** A command to measure; `argv[0]` is the program. */
export interface Command {
  name: string;
  argv: string[];
}

export interface Measured {
  name: string;
  /** Seconds. */
  mean: number;
  stddev: number;
  median: number;
  min: number;
  max: number;
  runs: number;
  /** Largest max-RSS of the command's process over a few runs, in KiB (client side only). */
  peakRssKb: number;
}

export interface RunOptions {
  warmup: number;
  runs: number;
  env: NodeJS.ProcessEnv;
  /** Runs for the peak-RSS measurement (the largest is reported). */
  rssRuns?: number;
}

/** A private scratch directory, removed by `cleanup()`. */
export function scratchDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** POSIX single-quoting where needed: hyperfine -N splits its command strings like a shell. */
const quote = (arg: string): string =>
  /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;

/** Throw a clear message when a program a benchmark needs is not installed. */
export function requireProgram(program: string, env: NodeJS.ProcessEnv = process.env): void {
  const dirs = path.isAbsolute(program) ? [''] : (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const found = dirs.some((dir) => {
    try {
      accessSync(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) throw new Error(`${program} not found; install it (sudo bash scripts/install-deps.sh --bench)`);
}

/** Time `commands` side by side in one hyperfine run, then measure each one's peak RSS. */
export function measure(commands: Command[], opts: RunOptions): Measured[] {
  for (const program of ['hyperfine', '/usr/bin/time', ...commands.map((c) => c.argv[0]!)]) {
    requireProgram(program, opts.env);
  }
  const work = scratchDir('dbward-bench-');
  try {
    const json = path.join(work.dir, 'hyperfine.json');
    const args = ['-N', '--style', 'basic', '--warmup', String(opts.warmup), '--runs', String(opts.runs)];
    args.push('--export-json', json);
    for (const c of commands) args.push('--command-name', c.name, c.argv.map(quote).join(' '));
    const run = spawnSync('hyperfine', args, { cwd: work.dir, env: opts.env, stdio: 'inherit' });
    if (run.error) throw new Error(`hyperfine could not run: ${run.error.message}`);
    if (run.status !== 0) throw new Error(`hyperfine failed (exit ${run.status ?? run.signal})`);
    const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: HyperfineResult[] }).results;
    return commands.map((c, i) => {
      const r = results[i];
      if (!r) throw new Error(`hyperfine reported no result for ${c.name}`);
      return {
        name: c.name,
        mean: r.mean,
        stddev: r.stddev ?? 0,
        median: r.median,
        min: r.min,
        max: r.max,
        runs: r.times.length,
        peakRssKb: peakRssKb(c.argv, opts.env, work.dir, opts.rssRuns ?? 3),
      };
    });
  } finally {
    work.cleanup();
  }
}

interface HyperfineResult {
  mean: number;
  stddev: number | null;
  median: number;
  min: number;
  max: number;
  times: number[];
}

/** Max RSS of one process (GNU time's %M, KiB), the largest of `runs` runs. */
export function peakRssKb(argv: string[], env: NodeJS.ProcessEnv, cwd: string, runs: number): number {
  const out = path.join(cwd, 'time.out');
  let peak = 0;
  for (let i = 0; i < runs; i++) {
    const run = spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, ...argv], {
      cwd,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    if (run.error) throw new Error(`/usr/bin/time could not run: ${run.error.message}`);
    if (run.status !== 0) throw new Error(`${argv.join(' ')} failed under /usr/bin/time:\n${run.stderr}`);
    peak = Math.max(peak, Number(readFileSync(out, 'utf8').trim().split('\n').pop()));
  }
  return peak;
}

/**
 * Run a command once with its stdout going to a file, and parse that as JSON. Not through a pipe:
 * dbward 0.1.0 exits before a large (> 64 KiB) write to a pipe has drained, truncating it.
 */
export function runToJson(argv: string[], env: NodeJS.ProcessEnv): unknown {
  const work = scratchDir('dbward-bench-out-');
  try {
    const file = path.join(work.dir, 'out.json');
    const fd = openSync(file, 'w');
    try {
      const run = spawnSync(argv[0]!, argv.slice(1), {
        cwd: work.dir,
        env,
        stdio: ['ignore', fd, 'inherit'],
      });
      if (run.error || run.status !== 0)
        throw new Error(`${argv.join(' ')} failed (${run.error?.message ?? run.status})`);
    } finally {
      closeSync(fd);
    }
    return JSON.parse(readFileSync(file, 'utf8'));
  } finally {
    work.cleanup();
  }
}

/** Seconds as ms below 1 s; `unitOf` picks the unit (a stddev is shown in its mean's unit). */
export const formatSeconds = (s: number, unitOf = s): string =>
  unitOf < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(3)} s`;
export const formatKb = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;

export interface Verdict {
  benchmark: string;
  /** The measured subject (dbward's command) and what it is compared with. */
  subject: Measured;
  reference: Measured;
  target: string;
  pass: boolean;
}

/** Print the results as a table (ratio against `reference`), the verdict, and record the summary line. */
export function report(results: Measured[], verdict: Verdict): void {
  const rows = results.map((r) => [
    r.name,
    `${formatSeconds(r.mean)} ± ${formatSeconds(r.stddev, r.mean)}`,
    `${(r.mean / verdict.reference.mean).toFixed(2)}×`,
    formatKb(r.peakRssKb),
  ]);
  const header = ['command', 'mean ± stddev', `vs ${verdict.reference.name}`, 'peak RSS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('   ')
      .trimEnd();
  console.log(`\n${verdict.benchmark} (node ${process.version}, ${cpus().length} CPUs)`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log(`target: ${verdict.target} -> ${verdict.pass ? 'PASS' : 'FAIL'}\n`);

  const file = process.env.BENCH_SUMMARY_FILE;
  if (file) {
    const summary = {
      benchmark: verdict.benchmark,
      subject: verdict.subject.name,
      mean: verdict.subject.mean,
      stddev: verdict.subject.stddev,
      peakRssKb: verdict.subject.peakRssKb,
      reference: verdict.reference.name,
      referenceMean: verdict.reference.mean,
      referencePeakRssKb: verdict.reference.peakRssKb,
      ratio: verdict.subject.mean / verdict.reference.mean,
      target: verdict.target,
      pass: verdict.pass,
    };
    appendFileSync(file, `${JSON.stringify(summary)}\n`);
  }
}

/** Find a measured command by name (throws if missing: a typo in the benchmark itself). */
export function pick(results: Measured[], name: string): Measured {
  const r = results.find((x) => x.name === name);
  if (!r) throw new Error(`no result named ${name}`);
  return r;
}

/**
 * Run `main`, always running `cleanup` afterwards — also on SIGINT/SIGTERM. Exit code: main's
 * result (0: the benchmark ran, whatever its verdict), 1 if it threw (it could not run).
 */
export function runBenchmark(
  main: () => Promise<void>,
  cleanup: () => Promise<void> | void = () => {},
): void {
  let cleaning: Promise<void> | undefined;
  const clean = (): Promise<void> => (cleaning ??= Promise.resolve().then(cleanup));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void clean().finally(() => process.exit(130));
    });
  }
  main()
    .then(
      () => 0,
      (error: unknown) => {
        console.error(`benchmark could not run: ${error instanceof Error ? error.message : String(error)}`);
        return 1;
      },
    )
    .then(async (code) => {
      await clean();
      process.exit(code);
    })
    .catch(() => process.exit(1));
}
