/**
 * Running the dump tool for a backup: one consistent snapshot (`--single-transaction`) of one
 * database as SQL on stdout, counted as it streams (mysql-backup-row-counter.ts), and proven
 * complete by the tool's exit code and its `-- Dump completed` trailer.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import type { DumpOutcome, RunningDump } from '../backup-role.js';
import { backupRoleErrors } from '../backup-role.js';
import { DumpRowCounter } from './mysql-backup-row-counter.js';
import {
  backupError,
  collectStderr,
  databaseArg,
  exitText,
  toolEnv,
  writeOptionFile,
} from './mysql-backup-tools.js';
import type { DumpTool } from './mysql-schema-dump.js';

const dumpHint =
  'Check that the user may read everything in the database (SELECT, SHOW VIEW, TRIGGER, EVENT, and SHOW_ROUTINE or SELECT on mysql.proc), that the server stayed up, and that max_allowed_packet fits the largest row.';

/** The dump tool's arguments after the option file; no `--databases`, so it loads under any name. */
export function dumpArgs(tool: Pick<DumpTool, 'mariadb'>, database: string): string[] {
  return [
    '--single-transaction',
    // Row by row from the server instead of whole tables buffered in the tool's memory.
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--skip-dump-date',
    // CREATE TABLESPACE needs the PROCESS privilege to dump and is rarely wanted on restore.
    '--no-tablespaces',
    '--max-allowed-packet=1G',
    // Oracle's mysqldump writes the server's GTID set into the dump when GTIDs are on.
    ...(tool.mariadb ? [] : ['--set-gtid-purged=OFF']),
    database,
  ];
}

export async function startDump(tool: DumpTool, spec: ConnectionSpec, tempDir: string): Promise<RunningDump> {
  const database = databaseArg(spec.database, 'dump');
  const optionFile = await writeOptionFile(tempDir, spec, tool);
  const name = path.basename(tool.command);
  // `--defaults-extra-file` is only honoured as the very first argument.
  const child = spawn(tool.command, [`--defaults-extra-file=${optionFile}`, ...dumpArgs(tool, database)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: toolEnv(),
  });
  const stderr = collectStderr(child, spec.password);
  const counter = new DumpRowCounter();
  child.stdout.on('error', (err) => counter.destroy(err));
  child.stdout.pipe(counter);

  let aborted = false;
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  // The reader gave up early (a later stage failed): nothing will drain the tool's pipe.
  counter.on('close', () => {
    if (!counter.readableEnded) kill();
  });

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.on('error', (error) => resolve({ code: null, signal: null, error }));
      child.on('close', (code, signal) => resolve({ code, signal }));
    },
  );
  const fail = (why: string, cause?: unknown): never => {
    throw backupError(backupRoleErrors.dump, `${name} ${why} (database "${database}").`, dumpHint, cause);
  };

  const done = (async (): Promise<DumpOutcome> => {
    const [streamed, exit] = await Promise.all([
      finished(counter).then(
        () => undefined,
        (err: unknown) => err,
      ),
      exited,
    ]);
    await rm(optionFile, { force: true });
    if (exit.error) fail(`could not be started: ${exit.error.message}`, exit.error);
    if (aborted) fail('was stopped before it finished, because the backup was aborted');
    if (exit.code !== 0) fail(`failed (${exitText(exit.code, exit.signal)}): ${stderr()}`);
    if (streamed !== undefined) fail(`output could not be read to the end: ${String(streamed)}`, streamed);
    if (counter.bytes === 0) fail('exited successfully but wrote nothing');
    if (!counter.endsWithTrailer()) {
      fail('output does not end with its "-- Dump completed" line, so the dump is incomplete');
    }
    return {
      tables: counter.tables().map(({ table, rows }) => ({ name: `${database}.${table}`, rows })),
    };
  })();
  // The caller awaits `done` once its pipeline is over; until then a rejection is not unhandled.
  done.catch(() => undefined);

  return {
    stream: counter,
    done,
    abort() {
      aborted = true;
      kill();
      // Without an error: the reader may have stopped listening, and `done` reports the abort.
      counter.destroy();
    },
  };
}
