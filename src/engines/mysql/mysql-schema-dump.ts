/**
 * The MySQL/MariaDB schema dump: `mariadb-dump` (or `mysqldump`) with `--no-data`, normalized so
 * the same schema always dumps to the same bytes. Credentials go through a temporary option file
 * (mode 0600, removed afterwards), never through argv or the environment, where `ps` would see them.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { SchemaDumpRole } from '../contract.js';

/** Overrides the tool to run (tests point it at a missing path); no fallback when set. */
export const dumpToolEnvVar = 'DBWARD_MYSQL_DUMP';

const missingHint = 'Install mariadb-client (or mysql-client), or pass --no-dump';

/** What we learned from `<tool> --version`. */
export interface DumpTool {
  command: string;
  /** `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, …` or `mysqldump  Ver 8.0.36 for Linux …`. */
  versionText: string;
  mariadb: boolean;
  /** major.minor of the server release the tool ships with, when it could be read. */
  version: [number, number] | undefined;
}

export const mysqlSchemaDumpRole: SchemaDumpRole = {
  async dumpSchema(conn, { spec }) {
    const database = spec.database;
    if (!database) {
      throw dumpError('The MySQL URL names no database, so there is no schema to dump.', {
        hint: 'Add the database to the URL (mysql://user:pass@host:3306/dbname), or pass --no-dump',
      });
    }
    const tool = await findDumpTool();
    checkToolVersion(tool, await conn.serverVersion());

    const dir = await mkdtemp(path.join(tmpdir(), 'dbward-mysqldump-'));
    try {
      const optionFilePath = path.join(dir, 'client.cnf');
      const { args, optionFile } = buildDumpInvocation(spec, optionFilePath, tool);
      await writeFile(optionFilePath, optionFile, { mode: 0o600 });
      const { code, stdout, stderr } = await run(tool.command, args);
      if (code !== 0) {
        throw dumpError(
          `${path.basename(tool.command)} failed (exit ${String(code)}) dumping database "${database}": ${firstLines(stderr)}`,
          {
            hint: 'Check that the user may read the schema (SHOW VIEW, TRIGGER, EVENT, and SELECT on mysql.proc or SHOW_ROUTINE), or pass --no-dump',
          },
        );
      }
      return normalizeMysqlDump(stdout);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/**
 * The dump tool's argv and the option-file text for `spec`. Pure: no I/O. The credentials are
 * only in `optionFile`; `--defaults-extra-file` must be the first argument (the tools ignore it
 * anywhere else).
 */
export function buildDumpInvocation(
  spec: ConnectionSpec,
  optionFilePath: string,
  tool: Pick<DumpTool, 'mariadb'>,
): { args: string[]; optionFile: string } {
  const database = spec.database ?? '';
  if (database.startsWith('-')) {
    throw dumpError(
      `Cannot dump database "${database}": a name starting with "-" would be read as an option.`,
    );
  }
  const args = [
    `--defaults-extra-file=${optionFilePath}`,
    '--no-data',
    '--skip-comments',
    '--skip-dump-date',
    '--routines',
    '--triggers',
    '--events',
    '--single-transaction',
    '--no-tablespaces',
    // Oracle's mysqldump writes the server's GTID set into the dump when GTIDs are on.
    ...(tool.mariadb ? [] : ['--set-gtid-purged=OFF']),
    database,
  ];
  return { args, optionFile: clientOptionFile(spec, tool.mariadb) };
}

/**
 * The `[client]` option-file text for `spec` (user, password, host/port or socket, charset,
 * TLS), read by every MySQL client tool through `--defaults-extra-file`. Write it with mode 0600.
 */
export function clientOptionFile(spec: ConnectionSpec, mariadb: boolean): string {
  const lines = ['[client]'];
  const set = (key: string, value: string | number | undefined): void => {
    if (value !== undefined) lines.push(`${key}=${optionValue(String(value))}`);
  };
  set('user', spec.user);
  set('password', spec.password);
  const socket = spec.params.socket ?? spec.params.socketPath;
  if (socket) {
    set('socket', socket);
    lines.push('protocol=socket');
  } else {
    set('host', spec.host ?? 'localhost');
    set('port', spec.port ?? 3306);
    // The tools treat host=localhost as "use the default socket"; the driver uses TCP. Match it.
    lines.push('protocol=tcp');
  }
  if (spec.params.charset) set('default-character-set', spec.params.charset);
  lines.push(...sslOptionLines(spec.params, mariadb));

  return `${lines.join('\n')}\n`;
}

/**
 * An option-file value, double-quoted. The tools strip one pair of matching quotes and then
 * unescape `\\`, `\"`, `\'`, `\n`, `\t`, `\r`, `\b`; `#` inside quotes is not a comment.
 */
export function optionValue(value: string): string {
  const escaped = value.replace(/[\\"'\n\r\t\b]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      case '\b':
        return '\\b';
      default:
        return `\\${c}`;
    }
  });
  return `"${escaped}"`;
}

/** The URL's TLS parameters as option-file lines; the two tool families spell them differently. */
function sslOptionLines(params: Record<string, string>, mariadb: boolean): string[] {
  const mode = (params.sslmode ?? params['ssl-mode'])?.toLowerCase().replace(/-/g, '_');
  const ssl = params.ssl;
  let want: 'off' | 'required' | 'verify' | undefined;
  if (mode === 'disabled' || mode === 'disable') want = 'off';
  else if (mode === 'required' || mode === 'require') want = 'required';
  else if (mode === 'verify_ca' || mode === 'verify_identity' || mode === 'verify_full') want = 'verify';
  else if (ssl !== undefined && ssl !== '' && ssl !== 'false' && ssl !== '0') want = 'required';
  if (want === undefined) return [];
  if (mariadb) {
    if (want === 'off') return ['skip-ssl'];
    return want === 'verify' ? ['ssl', 'ssl-verify-server-cert'] : ['ssl'];
  }
  return [`ssl-mode=${want === 'off' ? 'DISABLED' : want === 'verify' ? 'VERIFY_IDENTITY' : 'REQUIRED'}`];
}

/** `DBWARD_MYSQL_DUMP`, else `mariadb-dump`, else `mysqldump`, found by running `--version`. */
export async function findDumpTool(env: NodeJS.ProcessEnv = process.env): Promise<DumpTool> {
  const override = env[dumpToolEnvVar];
  const candidates = override ? [override] : ['mariadb-dump', 'mysqldump'];
  const found = await lookupTool(candidates, (command, err) =>
    dumpError(`Could not run ${command}: ${err.message}`, { hint: missingHint, cause: err }),
  );
  if (found) return found;
  throw dumpError(
    override
      ? `${override} (from ${dumpToolEnvVar}) was not found; cannot dump the MySQL schema.`
      : 'mariadb-dump (or mysqldump) was not found on PATH; cannot dump the MySQL schema.',
    { hint: missingHint },
  );
}

/**
 * The first of `candidates` that runs, with what its `--version` says; undefined when none is
 * installed. A tool that exists but cannot run is an error made by `runError`.
 */
export async function lookupTool(
  candidates: string[],
  runError: (command: string, err: Error) => Error,
): Promise<DumpTool | undefined> {
  for (const command of candidates) {
    let result: RunResult;
    try {
      result = await run(command, ['--version']);
    } catch (err) {
      if (isNotFound(err)) continue;
      throw runError(command, err as Error);
    }
    const versionText = result.stdout.trim() || result.stderr.trim();
    return { command, versionText, ...parseToolVersion(versionText) };
  }
  return undefined;
}

/** Flavor and major.minor from `--version` output. MariaDB's `Distrib` is the server release. */
export function parseToolVersion(text: string): Pick<DumpTool, 'mariadb' | 'version'> {
  const mariadb = /mariadb/i.test(text);
  const m = /Distrib (\d+)\.(\d+)/.exec(text) ?? /Ver (\d+)\.(\d+)/.exec(text);
  return { mariadb, version: m ? [Number(m[1]), Number(m[2])] : undefined };
}

/**
 * Refuse a tool older (major.minor) than the server of the same flavor: it may not know the
 * server's syntax and dump it wrongly. A MariaDB tool against a MySQL server or the other way
 * round is not compared (their version numbers are unrelated); that mostly works for schema
 * dumps, and we let it run.
 */
export function checkToolVersion(
  tool: Pick<DumpTool, 'command' | 'mariadb' | 'version'>,
  serverVersion: string,
): void {
  const older = toolOlderThanServer(tool, serverVersion);
  if (!older) return;
  const flavor = tool.mariadb ? 'MariaDB' : 'MySQL';
  const name = path.basename(tool.command);
  throw dumpError(
    `${name} is from ${flavor} ${older.tool}, older than the server (${serverVersion}); it may dump the schema wrongly.`,
    {
      hint: `Install the ${tool.mariadb ? 'mariadb-client' : 'mysql-client'} ${older.server} or newer (or point ${dumpToolEnvVar} at it), or pass --no-dump`,
    },
  );
}

/**
 * When `tool` is older (major.minor) than a server of the same flavor: both versions as
 * `major.minor` text; undefined when it is not, or when the versions cannot be compared.
 */
export function toolOlderThanServer(
  tool: Pick<DumpTool, 'mariadb' | 'version'>,
  serverVersion: string,
): { tool: string; server: string } | undefined {
  const serverMariadb = /mariadb/i.test(serverVersion);
  const m = /(\d+)\.(\d+)/.exec(serverVersion.replace(/^5\.5\.5-/, ''));
  if (!m || !tool.version || serverMariadb !== tool.mariadb) return undefined;
  const server: [number, number] = [Number(m[1]), Number(m[2])];
  const [tMajor, tMinor] = tool.version;
  if (tMajor > server[0] || (tMajor === server[0] && tMinor >= server[1])) return undefined;
  return { tool: `${String(tMajor)}.${String(tMinor)}`, server: `${String(server[0])}.${String(server[1])}` };
}

// A quoted identifier or user part: `a``b` or 'a''b', or a bare word.
const part = String.raw`(?:\`(?:[^\`]|\`\`)*\`|'(?:[^'\\]|\\.|'')*'|[\w.$%-]+)`;
const definer = String.raw`DEFINER\s*=\s*${part}@${part}`;

/**
 * Make a dump deterministic and environment-free: no AUTO_INCREMENT counters, no definers, no
 * host/date comments, at most two blank lines in a row, one final newline. The `/*!40101 SET …`
 * session preambles are deterministic and kept (the dump needs them to load as it was written).
 */
export function normalizeMysqlDump(dump: string): string {
  let out = dump.replace(/\r\n/g, '\n');
  out = out
    .split('\n')
    .filter((line) => !/^-- (?:Dump completed|Host:|Server version|MySQL dump|MariaDB dump)/.test(line))
    .map((line) => (line.startsWith(')') ? line.replace(/ AUTO_INCREMENT=\d+\b/g, '') : line))
    .join('\n');
  // Views: `/*!50013 DEFINER=… SQL SECURITY DEFINER */` (the default) goes; INVOKER stays.
  out = out.replace(new RegExp(String.raw`^/\*!50013 ${definer} SQL SECURITY DEFINER \*/\n`, 'gm'), '');
  out = out.replace(
    new RegExp(String.raw`/\*!50013 ${definer} (SQL SECURITY \w+) \*/`, 'g'),
    '/*!50013 $1 */',
  );
  // Triggers and events: `/*!50017 DEFINER=…*/ `; routines: `CREATE DEFINER=… PROCEDURE`.
  out = out.replace(new RegExp(String.raw`/\*!\d+ ${definer}\s*\*/ ?`, 'g'), '');
  out = out.replace(new RegExp(String.raw`${definer} ?`, 'g'), '');
  out = out.replace(/\n{4,}/g, '\n\n\n');
  return `${out.trim()}\n`;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run without a shell; MYSQL_PWD is dropped so only the option file supplies a password. */
function run(command: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.MYSQL_PWD;
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function firstLines(text: string): string {
  const lines = text.trim().split('\n').slice(0, 5).join(' ').trim();
  return lines || '(no error output)';
}

function dumpError(message: string, options: { hint?: string; cause?: unknown } = {}): DbwardError {
  return new DbwardError('E_SCHEMA_DUMP', message, {
    hint: options.hint ?? missingHint,
    exitCode: ExitCode.failed,
    ...(options.cause === undefined ? {} : { cause: options.cause }),
  });
}
