/**
 * The test runner behind `npm test`:
 *
 *   node --import tsx test/harness/run-tests.ts [--node-test-flag=value …] [file-or-dir …]
 *
 * 1. For each server engine (postgres, mysql, redis, s3): use `DBWARD_TEST_<ENGINE>_URL` if it is set,
 *    otherwise start a throwaway server (all in parallel; s3 is moto, see servers/s3-server.ts). An engine that cannot be started
 *    is skipped with a printed reason, except under CI=true, where that is a failure.
 * 2. Run `node --import tsx --test` over the given files (directories are searched), or over every
 *    `test/**\/*.test.ts`, with the URLs in the environment. Arguments starting with `-` are passed
 *    to node before the files (use the `--flag=value` form, e.g. `--test-name-pattern=ping`).
 * 3. Stop the servers — also on SIGINT/SIGTERM — and exit with the tests' exit code.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start as startMariadb } from './servers/mariadb-server.js';
import { start as startPostgres } from './servers/postgres-server.js';
import { start as startRedis } from './servers/redis-server.js';
import { start as startS3 } from './servers/s3-server.js';
import { errorMessage, isSkipped, stopAllServers } from './servers/server-process.js';
import type { StartedServer, StartResult } from './servers/server-process.js';

const repoRoot = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const inCi = process.env.CI === 'true' || process.env.CI === '1';

interface Engine {
  name: 'postgres' | 'mysql' | 'redis' | 's3';
  envVar: string;
  start: () => Promise<StartResult>;
}

const engines: Engine[] = [
  { name: 'postgres', envVar: 'DBWARD_TEST_POSTGRES_URL', start: startPostgres },
  { name: 'mysql', envVar: 'DBWARD_TEST_MYSQL_URL', start: startMariadb },
  { name: 'redis', envVar: 'DBWARD_TEST_REDIS_URL', start: startRedis },
  { name: 's3', envVar: 'DBWARD_TEST_S3_URL', start: startS3 },
];

const started: StartedServer[] = [];
let testChild: ReturnType<typeof spawn> | undefined;
let interrupted = false;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const nodeFlags = args.filter((a) => a.startsWith('-'));
  const { files, missing } = collectTestFiles(args.filter((a) => !a.startsWith('-')));
  if (missing.length > 0) {
    for (const m of missing) console.error(`run-tests: no such file or directory: ${m}`);
    return 1;
  }
  if (files.length === 0) {
    console.error('run-tests: no test files found');
    return 1;
  }

  const failures = await startServers();
  if (interrupted) return 130;
  if (failures.length > 0 && inCi) {
    for (const reason of failures) console.error(`run-tests: ${reason}`);
    console.error('run-tests: CI=true and an engine could not be started; failing.');
    return 1;
  }

  const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...nodeFlags, ...files], {
    cwd: repoRoot,
    env: process.env,
    stdio: 'inherit',
  });
  testChild = child;
  return new Promise<number>((resolve) => {
    child.once('error', (error) => {
      console.error(`run-tests: could not run node --test: ${error.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + signalNumber(signal) : 1)));
  });
}

/** Start (or adopt from the env) each engine; returns the reasons of those that are unavailable. */
async function startServers(): Promise<string[]> {
  const t0 = performance.now();
  const results = await Promise.all(
    engines.map(async (engine): Promise<string | undefined> => {
      const existing = process.env[engine.envVar];
      if (existing) {
        console.log(`${engine.name.padEnd(8)} using ${engine.envVar} (${hostOf(existing)})`);
        return undefined;
      }
      const t = performance.now();
      let result: StartResult;
      try {
        result = await engine.start();
      } catch (error) {
        result = { skip: `${engine.name}: failed to start: ${errorMessage(error)}` };
      }
      if (isSkipped(result)) {
        if (!inCi) console.log(`skipping ${engine.name}: ${result.skip.replace(`${engine.name}: `, '')}`);
        return result.skip;
      }
      started.push(result);
      if (interrupted) return undefined;
      process.env[engine.envVar] = result.adminUrl;
      Object.assign(process.env, result.env);
      const seconds = ((performance.now() - t) / 1000).toFixed(1);
      const notes = result.notes.length > 0 ? `; ${result.notes.join('; ')}` : '';
      console.log(
        `${engine.name.padEnd(8)} ${result.version} on 127.0.0.1:${result.port}, started in ${seconds} s${notes}`,
      );
      return undefined;
    }),
  );
  if (started.length > 0) {
    console.log(`servers ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return results.filter((r): r is string => r !== undefined);
}

async function stopServers(): Promise<void> {
  const servers = started.splice(0);
  await Promise.allSettled(servers.map((s) => s.stop()));
  await stopAllServers(); // anything still half-started
}

/** Explicit files and directories (searched for *.test.ts), or all of test/; sorted, repo-relative. */
function collectTestFiles(requested: string[]): { files: string[]; missing: string[] } {
  const found = new Set<string>();
  const missing: string[] = [];
  const roots = requested.length > 0 ? requested.map((r) => path.resolve(r)) : [path.join(repoRoot, 'test')];
  for (const root of roots) {
    let isDir: boolean;
    try {
      isDir = statSync(root).isDirectory();
    } catch {
      missing.push(root);
      continue;
    }
    if (isDir) walk(root, found);
    else found.add(root);
  }
  return { files: [...found].map((f) => path.relative(repoRoot, f) || f).sort(), missing };
}

function walk(dir: string, into: Set<string>): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, into);
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) into.add(full);
  }
}

function hostOf(url: string): string {
  try {
    const u = new URL(url);
    return u.host || u.searchParams.get('host') || u.protocol;
  } catch {
    return 'unparsable URL';
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGINT: 2, SIGTERM: 15, SIGKILL: 9, SIGHUP: 1 } as Record<string, number>)[signal] ?? 0;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(128 + signalNumber(signal)); // second signal: the exit hook kills the rest
    interrupted = true;
    console.error(`\nrun-tests: ${signal}; stopping servers`);
    testChild?.kill(signal);
    void stopServers().finally(() => process.exit(128 + signalNumber(signal)));
  });
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  console.error(`run-tests: ${errorMessage(error)}`);
} finally {
  await stopServers();
}
process.exit(exitCode);
