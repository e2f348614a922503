/**
 * Loading a SQL dump: the stream piped into the client (`mariadb`/`mysql`) on one database,
 * optionally through a filter (restore --tables), counting raw bytes for progress.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import { backupRoleErrors } from '../backup-role.js';
import {
  backupError,
  collectStderr,
  databaseArg,
  exitText,
  toolEnv,
  writeOptionFile,
} from './mysql-backup-tools.js';
import type { DumpTool } from './mysql-schema-dump.js';

export interface LoadOptions {
  tool: DumpTool;
  spec: ConnectionSpec;
  database: string;
  tempDir: string;
  /** Between the raw bytes and the client, e.g. the --tables filter. */
  filter?: Transform;
  onProgress?: (rawBytes: number) => void;
  /** What is being loaded where, for messages: `the backup into scratch database "x"`. */
  what: string;
  hint: string;
}

/** The client's arguments after the option file. */
export function clientArgs(database: string): string[] {
  return [
    // Blobs and strings pass byte for byte (no \r\n rewriting, no `\` client commands).
    '--binary-mode',
    // The client's own limit on one statement; the server's max_allowed_packet still applies.
    '--max-allowed-packet=1G',
    database,
  ];
}

/** Pipe `source` into the client; rejects with E_BACKUP_RESTORE carrying the client's message. */
export async function loadDump(source: Readable, options: LoadOptions): Promise<void> {
  const { tool, spec, tempDir } = options;
  const database = databaseArg(options.database, 'restore');
  const optionFile = await writeOptionFile(tempDir, spec, options.tool);
  const name = path.basename(tool.command);
  try {
    const child = spawn(tool.command, [`--defaults-extra-file=${optionFile}`, ...clientArgs(database)], {
      // Nothing a dump runs prints rows worth keeping (`DO SETVAL` prints none).
      stdio: ['pipe', 'ignore', 'pipe'],
      env: toolEnv(),
    });
    const stderr = collectStderr(child, spec.password);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
      (resolve) => {
        child.on('error', (error) => resolve({ code: null, signal: null, error }));
        child.on('close', (code, signal) => resolve({ code, signal }));
      },
    );
    // The backup could not be read (a failed decryption or hash check): kill the client before
    // it sees EOF, or it would run the half statement it holds. Listening before pipeline() does
    // puts this first.
    let sourceError: unknown;
    source.once('error', (err) => {
      sourceError = err;
      child.kill('SIGKILL');
    });
    // When the client fails, stop feeding it (and stop reading the backup) at once.
    const stop = new AbortController();
    void exited.then((exit) => {
      if (exit.code !== 0) stop.abort();
    });
    let bytes = 0;
    const progress = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        options.onProgress?.(bytes);
        callback(null, chunk);
      },
    });
    const { filter } = options;
    const piping = filter
      ? pipeline(source, progress, filter, child.stdin, { signal: stop.signal })
      : pipeline(source, progress, child.stdin, { signal: stop.signal });
    const piped = await piping.then(
      () => undefined,
      (err: unknown) => err,
    );
    const exit = await exited;
    if (sourceError !== undefined) {
      // The source's own error says more than ours would.
      if (sourceError instanceof DbwardError) throw sourceError;
      throw backupError(
        backupRoleErrors.restore,
        `Reading the backup failed while loading ${options.what}: ${(sourceError as Error).message}`,
        options.hint,
        sourceError,
      );
    }
    if (exit.error) {
      throw backupError(
        backupRoleErrors.restore,
        `${name} could not be started: ${exit.error.message}`,
        options.hint,
        exit.error,
      );
    }
    if (exit.code !== 0) {
      throw backupError(
        backupRoleErrors.restore,
        `${name} failed (${exitText(exit.code, exit.signal)}) loading ${options.what}: ${stderr()}`,
        options.hint,
      );
    }
    if (piped !== undefined) {
      throw backupError(
        backupRoleErrors.restore,
        `Loading ${options.what} failed: ${(piped as Error).message}`,
        options.hint,
        piped,
      );
    }
  } finally {
    await rm(optionFile, { force: true });
  }
}
