/**
 * The command-line tools MySQL backups run — the dump tool (`mariadb-dump`/`mysqldump`) and the
 * client (`mariadb`/`mysql`) that loads a dump — and what every run of them shares: a 0600 option
 * file with the credentials (never argv, never MYSQL_PWD), stderr quoted without the password, and
 * the role's error codes.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { REDACTED } from '../../core/redact.js';
import { backupRoleErrors } from '../backup-role.js';
import {
  clientOptionFile,
  dumpToolEnvVar,
  lookupTool,
  toolOlderThanServer,
  type DumpTool,
} from './mysql-schema-dump.js';

/** Overrides the client that loads dumps (tests point it at fakes); no fallback when set. */
export const clientToolEnvVar = 'DBWARD_MYSQL_CLIENT';

const packageHint = 'Install mariadb-client (Debian/Ubuntu: apt install mariadb-client) or mysql-client';

export function backupError(
  code: (typeof backupRoleErrors)[keyof typeof backupRoleErrors],
  message: string,
  hint: string,
  cause?: unknown,
): DbwardError {
  return new DbwardError(code, message, {
    hint,
    exitCode: ExitCode.failed,
    ...(cause === undefined ? {} : { cause }),
    context: { engine: 'mysql' },
  });
}

/** The dump tool, refused when it is older than the server (it may dump newer syntax wrongly). */
export async function findBackupDumpTool(serverVersion: string): Promise<DumpTool> {
  const tool = await findTool(dumpToolEnvVar, ['mariadb-dump', 'mysqldump'], 'the dump tool');
  const older = toolOlderThanServer(tool, serverVersion);
  if (older) {
    const pkg = tool.mariadb ? 'mariadb-client' : 'mysql-client';
    throw backupError(
      backupRoleErrors.tool,
      `${path.basename(tool.command)} is from ${tool.mariadb ? 'MariaDB' : 'MySQL'} ${older.tool}, older than the server (${serverVersion}); its dump could be wrong or incomplete.`,
      `Install ${pkg} ${older.server} or newer (the server's own release is best), or point ${dumpToolEnvVar} at one.`,
    );
  }
  return tool;
}

/** The client that loads a dump: `DBWARD_MYSQL_CLIENT`, else `mariadb`, else `mysql`. */
export function findClientTool(): Promise<DumpTool> {
  return findTool(clientToolEnvVar, ['mariadb', 'mysql'], 'the client');
}

async function findTool(envVar: string, defaults: string[], what: string): Promise<DumpTool> {
  const override = process.env[envVar];
  const tool = await lookupTool(override ? [override] : defaults, (command, err) =>
    backupError(backupRoleErrors.tool, `Could not run ${command}: ${err.message}`, packageHint, err),
  );
  if (tool) return tool;
  throw backupError(
    backupRoleErrors.tool,
    override
      ? `${override} (from ${envVar}) was not found.`
      : `${defaults.join(' (or ')}) was not found on PATH; it is ${what} MySQL backups run.`,
    packageHint,
  );
}

/** The release a tool's `--version` names: `10.11.19-MariaDB` (MariaDB `Distrib`), `8.0.36`. */
export function toolVersion(tool: DumpTool): string {
  const m = /Distrib (\S+?),?\s/.exec(`${tool.versionText} `) ?? /Ver (\S+)/.exec(tool.versionText);
  return m?.[1] ?? tool.versionText;
}

/** Write the credentials to a fresh 0600 option file in `dir`; returns its path. */
export async function writeOptionFile(dir: string, spec: ConnectionSpec, tool: DumpTool): Promise<string> {
  const file = path.join(dir, `mysql-${randomBytes(6).toString('hex')}.cnf`);
  await writeFile(file, clientOptionFile(spec, tool.mariadb), { mode: 0o600 });
  return file;
}

/** The environment for a tool: MYSQL_PWD dropped, so only the option file supplies a password. */
export function toolEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.MYSQL_PWD;
  return env;
}

/** A database name as the tools' last argument; a leading `-` would make it an option. */
export function databaseArg(database: string | undefined, doing: string): string {
  if (!database) {
    throw backupError(
      doing === 'dump' ? backupRoleErrors.dump : backupRoleErrors.restore,
      `The MySQL URL names no database to ${doing}.`,
      'Add the database to the URL: mysql://user:pass@host:3306/dbname',
    );
  }
  if (database.startsWith('-')) {
    throw backupError(
      doing === 'dump' ? backupRoleErrors.dump : backupRoleErrors.restore,
      `Cannot ${doing} database "${database}": a name starting with "-" would be read as an option.`,
      'Rename the database, or use one whose name does not start with "-".',
    );
  }
  return database;
}

const stderrLimit = 16 * 1024;

/** Gathers a child's stderr (the first 16 KiB) and gives it back one-line, without the password. */
export function collectStderr(child: ChildProcess, password: string | undefined): () => string {
  let text = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    if (text.length < stderrLimit) text += s.slice(0, stderrLimit - text.length);
  });
  return () => {
    let out = text;
    if (password) out = out.split(password).join(REDACTED);
    const lines = out
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return lines.slice(0, 5).join(' ') || '(no error output)';
  };
}

/** How a child ended, as words: `exit 2`, `signal SIGKILL`. */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return code !== null ? `exit ${String(code)}` : `signal ${signal ?? 'unknown'}`;
}
