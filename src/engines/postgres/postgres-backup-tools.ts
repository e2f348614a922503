/**
 * The PostgreSQL client tools behind backups (pg_dump, pg_restore, GNU tar): finding them,
 * reading their versions, running them with the connection in the environment, and turning how
 * they ended into one readable line with the password taken out.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import type { Target } from '../../core/target.js';
import { findPgTool, inheritedEnv, libpqEnv, pgDumpEnvOverride } from './postgres-schema-dump.js';

/** Set to a pg_restore path to use instead of searching (tests point it at a fake tool). */
export const pgRestoreEnvOverride = 'DBWARD_PG_RESTORE';

export type PgTool = 'pg_dump' | 'pg_restore';

const overrides: Record<PgTool, string> = { pg_dump: pgDumpEnvOverride, pg_restore: pgRestoreEnvOverride };

/** The tool's path, or E_BACKUP_TOOL naming the package to install. */
export function requireTool(tool: PgTool, major: string, context: ErrorContext): string {
  const found = findPgTool(tool, overrides[tool]);
  if (found) return found;
  const override = process.env[overrides[tool]];
  throw new DbwardError(
    'E_BACKUP_TOOL',
    override ? `${tool} at ${override} (${overrides[tool]}) is not executable.` : `${tool} was not found.`,
    { hint: `Install the PostgreSQL client: postgresql-client-${major} (or newer).`, context },
  );
}

/** `pg_dump (PostgreSQL) 15.19 (Debian …)` → `15.19`; undefined when the output is not a PostgreSQL tool's. */
export function toolVersionText(output: string): string | undefined {
  return /\(PostgreSQL\)\s+(\d+(?:\.\d+)*)/.exec(output)?.[1];
}

/** `<tool> --version`'s output (short timeout: a tool that hangs here is broken). */
export function versionOutput(file: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, ['--version'], { timeout: 10_000 }, (err, stdout) => resolve(err ? '' : stdout));
  });
}

export interface ErrorContext {
  engine: string;
  target: string;
  operation: string;
}

export function errorContext(target: Target, operation: string): ErrorContext {
  return { engine: 'postgres', target: target.name, operation };
}

/** The child environment for a tool connecting as `spec`: libpq variables only from the spec. */
export function toolEnv(spec: ConnectionSpec, target: Target): NodeJS.ProcessEnv {
  return { ...inheritedEnv(process.env), ...libpqEnv(spec, target) };
}

/** How a child process ended. */
export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The first 16 KB of stderr, password removed, trimmed. */
  stderr: string;
  /** Set when the process could not be started at all. */
  spawnError?: Error;
}

const stderrLimit = 16 * 1024;

/** Collect a child's stderr (bounded) and resolve once it has exited and its pipes closed. */
export function watchExit(child: ChildProcess, password: string | undefined): Promise<ToolExit> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    child.stderr?.on('data', (chunk: Buffer) => {
      if (size >= stderrLimit) return;
      parts.push(chunk);
      size += chunk.length;
    });
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
      // 'close' may never come for a process that never started.
      if (child.pid === undefined) finish(null, null);
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      resolve({
        code,
        signal,
        stderr: stripSecret(Buffer.concat(parts).toString('utf8').slice(0, stderrLimit).trim(), password),
        ...(spawnError ? { spawnError } : {}),
      });
    };
    child.on('close', finish);
  });
}

export function stripSecret(text: string, password: string | undefined): string {
  return password ? text.split(password).join('***') : text;
}

export function succeeded(exit: ToolExit): boolean {
  return exit.code === 0 && !exit.spawnError;
}

/** `pg_dump exited with code 1: <stderr>` / `pg_dump was killed by SIGKILL` / `could not start`. */
export function describeExit(tool: string, exit: ToolExit): string {
  if (exit.spawnError) return `${tool} could not be started: ${exit.spawnError.message}`;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  return `${tool} ${how}${exit.stderr ? `: ${exit.stderr}` : ''}`;
}

/** Kill a child that may already be gone. */
export function killQuietly(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
}

/**
 * `-d` for pg_restore as a libpq conninfo string, so that a database name containing `=` or
 * starting with `postgresql://` is taken as a name. The rest of the connection (and the
 * password) comes from the environment.
 */
export function dbnameArg(database: string): string {
  return `--dbname=dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function restoreError(message: string, context: ErrorContext, cause?: unknown): DbwardError {
  return new DbwardError('E_BACKUP_RESTORE', `Loading the PostgreSQL dump failed: ${message}`, {
    hint: 'Read pg_restore’s message above; it connects with the target URL’s settings.',
    context,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A writable into a tool's stdin that keeps accepting (and drops) what comes after the tool
 * stopped reading, so the stream feeding it still reads to its end.
 */
export function readToTheEnd(stdin: Writable): Writable {
  let open = true;
  const closed = (): void => {
    open = false;
  };
  stdin.on('error', closed);
  stdin.on('close', closed);
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (!open || stdin.write(chunk)) return callback();
      onDrainOrClose(stdin, () => callback());
    },
    final(callback) {
      if (open) stdin.end();
      callback();
    },
  });
}

/** Call `then` once, when `stream` drains or closes (a closed stream never drains). */
export function onDrainOrClose(stream: Writable, then: () => void): void {
  const go = (): void => {
    stream.off('drain', go);
    stream.off('close', go);
    then();
  };
  stream.on('drain', go);
  stream.on('close', go);
}
