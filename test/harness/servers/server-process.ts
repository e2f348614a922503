/**
 * Shared plumbing for the throwaway test servers: finding binaries, free ports, private temp dirs
 * owned by the server's system user, spawning as that user (we usually run as root, and neither
 * PostgreSQL nor a sane MariaDB setup runs as root), waiting for readiness and stopping.
 *
 * Secrets never go into process arguments: every password reaches a server through a file in its
 * private (0700) temp dir or over a connection, so `ps` shows nothing worth stealing.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  chownSync,
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server that is up and answering, with an admin URL that carries its password. */
export interface StartedServer {
  /** e.g. "PostgreSQL 15.20". */
  version: string;
  port: number;
  adminUrl: string;
  /** Further env vars the tests may use (e.g. DBWARD_TEST_POSTGRES_NOHBA_URL). */
  env: Record<string, string>;
  /** Extra facts worth printing next to the version (e.g. a missing optional extension). */
  notes: string[];
  /** Graceful shutdown, then removal of the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Why an engine could not be started: a missing binary or system user, or a failed start-up. */
export interface SkippedServer {
  skip: string;
}

export type StartResult = StartedServer | SkippedServer;

export const isSkipped = <T extends object>(r: T | SkippedServer): r is SkippedServer => 'skip' in r;

/** The system user a server runs as. `undefined` means "as ourselves" (we are not root). */
export interface RunAs {
  name: string;
  uid: number;
  gid: number;
}

export const randomPassword = (): string => randomBytes(18).toString('hex');

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Resolve the user to run a server as. When we are root this must be a real system user
 * (`postgres`, `mysql`, …); returns a skip reason if it does not exist. When we are not root,
 * servers run as ourselves.
 */
export function runAsFor(userName: string): RunAs | undefined | SkippedServer {
  if (!isRoot()) return undefined;
  const entry = lookupUser(userName);
  if (!entry) return { skip: `system user '${userName}' not found; run scripts/install-deps.sh` };
  return entry;
}

export function lookupUser(userName: string): RunAs | undefined {
  let line: string | undefined;
  try {
    line = execFileSync('getent', ['passwd', userName], { encoding: 'utf8' }).trim();
  } catch {
    try {
      line = readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${userName}:`));
    } catch {
      return undefined;
    }
  }
  const fields = line?.split(':');
  if (!fields || fields.length < 4) return undefined;
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  return { name: userName, uid, gid };
}

/** First executable named `name` in `dirs`, then on PATH. */
export function findBinary(name: string, dirs: string[] = []): string | undefined {
  const pathDirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, ...pathDirs, '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/**
 * A new private directory (mode 0700) owned by `runAs`. The base is the OS temp dir, unless a
 * dropped-privilege user could not reach it (e.g. TMPDIR under /root), in which case /tmp.
 */
export function makeServerDir(prefix: string, runAs: RunAs | undefined): string {
  let base = tmpdir();
  if (runAs && !everyoneCanTraverse(base)) base = '/tmp';
  const dir = mkdtempSync(path.join(base, prefix));
  chmodSync(dir, 0o700);
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  return dir;
}

function everyoneCanTraverse(dir: string): boolean {
  let current = path.resolve(dir);
  for (;;) {
    try {
      if ((statSync(current).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** Write a file only the server user can read (passwords, init SQL). */
export function writePrivateFile(file: string, content: string, runAs: RunAs | undefined): void {
  writeFileSync(file, content, { mode: 0o600 });
  if (runAs) chownSync(file, runAs.uid, runAs.gid);
}

/** The environment a server process gets: a minimal one, so none of our secrets or PG* vars leak in. */
function serverEnv(dir: string, runAs: RunAs | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dir,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    TZ: 'UTC',
  };
  if (runAs) {
    env.USER = runAs.name;
    env.LOGNAME = runAs.name;
  }
  return env;
}

export interface SpawnOptions {
  /** Directory the process runs in; also its HOME. */
  dir: string;
  runAs: RunAs | undefined;
  /** stdout and stderr are appended here. */
  logFile: string;
}

function spawnLogged(command: string, args: string[], opts: SpawnOptions): ChildProcess {
  const fd = openSync(opts.logFile, 'a', 0o600);
  try {
    return spawn(command, args, {
      cwd: opts.dir,
      env: serverEnv(opts.dir, opts.runAs),
      stdio: ['ignore', fd, fd],
      // libuv also drops supplementary groups when uid/gid are given.
      ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
    });
  } finally {
    closeSync(fd);
  }
}

/** The last lines of a log, for error messages. */
export function logTail(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Run a setup command (initdb, mariadb-install-db) to completion; throws with the log tail on failure. */
export async function runToCompletion(
  command: string,
  args: string[],
  opts: SpawnOptions,
  timeoutMs = 60_000,
): Promise<void> {
  const child = spawnLogged(command, args, opts);
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        resolve({ code: null, signal: null, error });
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    },
  );
  if (result.error || result.code !== 0) {
    const how = result.error ? result.error.message : `exit ${result.code ?? result.signal}`;
    throw new Error(`${path.basename(command)} failed (${how}):\n${logTail(opts.logFile)}`);
  }
}

/** A long-running server process, registered so it is stopped even if the runner is interrupted. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    readonly opts: SpawnOptions,
    /** Signal for a quick, graceful shutdown (PostgreSQL: SIGINT = "fast" shutdown). */
    private readonly stopSignal: NodeJS.Signals = 'SIGTERM',
  ) {
    this.child = spawnLogged(command, args, opts);
    this.exited = new Promise((resolve) => {
      this.child.once('error', () => {
        this.exitInfo ??= { code: null, signal: null };
        resolve(this.exitInfo);
      });
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    live.add(this);
    installExitHook();
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /**
   * Call `probe` every `intervalMs` until it resolves; fail early, with the server log, if the
   * process dies, and after `timeoutMs`.
   */
  async waitUntilReady<T>(probe: () => Promise<T>, timeoutMs = 30_000, intervalMs = 50): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      if (this.exitInfo) {
        const { code, signal } = this.exitInfo;
        throw new Error(
          `${this.name} exited during start-up (${code ?? signal}):\n${logTail(this.opts.logFile)}`,
        );
      }
      try {
        return await probe();
      } catch (error) {
        lastError = error;
      }
      if (Date.now() > deadline) {
        const reason = lastError instanceof Error ? lastError.message : String(lastError);
        throw new Error(
          `${this.name} not ready after ${timeoutMs} ms (${reason}):\n${logTail(this.opts.logFile)}`,
        );
      }
      await Promise.race([sleep(intervalMs), this.exited]);
    }
  }

  /**
   * Graceful stop (SIGKILL after `timeoutMs`), then remove the server's dir unless `keepDir`
   * (a failed start-up attempt that will be retried on another port). Idempotent.
   */
  stop({ keepDir = false, timeoutMs = 15_000 } = {}): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.exitInfo) {
        this.child.kill(this.stopSignal);
        const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
        await this.exited;
        clearTimeout(timer);
      }
      live.delete(this);
      if (!keepDir) removeDir(this.opts.dir);
    })();
    return this.stopping;
  }

  /** Last resort from a synchronous `exit` handler: no waiting is possible there. */
  killNow(): void {
    if (!this.exitInfo) this.child.kill('SIGKILL');
    removeDir(this.opts.dir);
  }
}

function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // A backend still exiting may race us; the OS temp dir cleaner gets the rest.
  }
}

const live = new Set<ServerProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) server.killNow();
  });
}

/** Stop every server still running (used by the runner's signal handlers). */
export async function stopAllServers(): Promise<void> {
  await Promise.allSettled([...live].map((s) => s.stop()));
}

/** Remove a setup-time dir when start-up fails before a ServerProcess owns it. */
export function discardDir(dir: string): void {
  removeDir(dir);
}

/**
 * Try `attempt` with a fresh free port up to `tries` times: another process may grab the port
 * between our probe and the server's bind.
 */
export async function withPortRetry<T>(attempt: (port: number) => Promise<T>, tries = 3): Promise<T> {
  for (let i = 1; ; i++) {
    const port = await freePort();
    try {
      return await attempt(port);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (i >= tries || !/address already in use|could not bind|Can't start server: Bind/i.test(message)) {
        throw error;
      }
    }
  }
}

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
