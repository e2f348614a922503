/**
 * The PostgreSQL schema-dump role: `pg_dump --schema-only` of the target database, made
 * deterministic so the result can be committed as schema.sql and diffed.
 *
 * Owners and privileges are left out (`--no-owner --no-privileges`), unlike dbmate's default:
 * they differ between a developer's machine, CI and production, so keeping them would make
 * schema.sql change with whoever ran the dump rather than with the schema.
 *
 * The password travels in the child's environment (PGPASSWORD), never in argv, where `ps`
 * would show it to every user on the machine.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { Target } from '../../core/target.js';
import type { SchemaDumpRole, SqlConnection } from '../contract.js';

/** Set to a pg_dump path to use instead of searching (tests point it at a missing or fake tool). */
export const pgDumpEnvOverride = 'DBWARD_PG_DUMP';

export const postgresSchemaDumpRole: SchemaDumpRole = {
  async dumpSchema(conn: SqlConnection, { target, spec }: { target: Target; spec: ConnectionSpec }) {
    const context = { engine: 'postgres', target: target.name, operation: 'schema dump' };
    const pgDump = findPgDump();
    if (!pgDump) {
      throw new DbwardError('E_SCHEMA_DUMP', 'pg_dump was not found, so the schema cannot be dumped.', {
        hint: `Install the PostgreSQL client (postgresql-client-${await serverMajor(conn)}), or pass --no-dump`,
        exitCode: ExitCode.failed,
        context,
      });
    }
    const serverNum = await serverVersionNum(conn);
    const versionOut = await run(pgDump, ['--version'], process.env, context);
    const dumpNum = parsePgDumpVersion(versionOut.stdout);
    if (dumpNum === undefined) {
      throw new DbwardError(
        'E_SCHEMA_DUMP',
        `Cannot tell the version of ${pgDump} from its output: ${versionOut.stdout.trim()}`,
        { hint: 'Check that this is PostgreSQL pg_dump, or pass --no-dump', context },
      );
    }
    if (majorOf(dumpNum) < majorOf(serverNum)) {
      const server = majorLabel(serverNum);
      throw new DbwardError(
        'E_SCHEMA_DUMP',
        `pg_dump ${majorLabel(dumpNum)} cannot dump a PostgreSQL ${server} server (${pgDump}).`,
        {
          hint: `Install postgresql-client-${server} (or newer) so that pg_dump ${server}+ is found, or pass --no-dump`,
          context,
        },
      );
    }
    const { args, env } = pgDumpInvocation(spec, target);
    const { stdout } = await run(
      pgDump,
      args,
      { ...inheritedEnv(process.env), ...env },
      context,
      spec.password,
    );
    return normalizeDump(stdout);
  },
};

/**
 * The arguments and connection environment for one `pg_dump --schema-only`: pure, so a test can
 * check that no secret is in argv. libpq reads the same URL parameters as our pg pool, so
 * `?host=/socket/dir` becomes PGHOST and `sslmode` becomes PGSSLMODE.
 */
export function pgDumpInvocation(
  spec: ConnectionSpec,
  target?: Pick<Target, 'options'>,
): { args: string[]; env: Record<string, string> } {
  return { args: ['--schema-only', '--no-owner', '--no-privileges'], env: libpqEnv(spec, target) };
}

/**
 * The libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, TLS settings, …) for a
 * connection spec: how every PostgreSQL client tool dbward runs gets its connection, so that no
 * secret is ever in argv.
 */
export function libpqEnv(spec: ConnectionSpec, target?: Pick<Target, 'options'>): Record<string, string> {
  const { params } = spec;
  const env: Record<string, string> = {};
  const set = (key: string, value: string | number | undefined): void => {
    if (value !== undefined && value !== '') env[key] = String(value);
  };
  // As in libpq and poolConfig, ?host= wins over the URL's host.
  set('PGHOST', params.host ?? spec.host ?? 'localhost');
  set('PGPORT', spec.port ?? params.port ?? 5432);
  set('PGUSER', spec.user);
  set('PGPASSWORD', spec.password);
  set('PGDATABASE', spec.database);
  set('PGAPPNAME', params.application_name ?? 'dbward');
  set('PGOPTIONS', params.options);
  set('PGSSLMODE', params.sslmode ?? sslModeFromSslParam(params.ssl));
  set('PGSSLROOTCERT', params.sslrootcert);
  set('PGSSLCERT', params.sslcert);
  set('PGSSLKEY', params.sslkey);
  if (target) set('PGCONNECT_TIMEOUT', Math.max(2, Math.ceil(target.options.connectTimeoutMs / 1000)));
  return env;
}

/** node-postgres' `?ssl=` as a libpq sslmode: `no-verify` encrypts only, `true` verifies. */
function sslModeFromSslParam(ssl: string | undefined): string | undefined {
  if (ssl === 'no-verify') return 'require';
  if (ssl === 'true' || ssl === '1') return 'verify-full';
  return undefined;
}

/**
 * The caller's environment without libpq's connection variables, so a stray PGHOST, PGSERVICE
 * or PGSSLMODE in the shell cannot point pg_dump at another server than the target. PGPASSFILE
 * stays: it only supplies a password the URL did not.
 */
export function inheritedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (key.startsWith('PG') && key !== 'PGPASSFILE') continue;
    out[key] = value;
  }
  return out;
}

/**
 * The pg_dump to run: $DBWARD_PG_DUMP when set, else the newest
 * /usr/lib/postgresql/<major>/bin/pg_dump (Debian/Ubuntu install every client major side by
 * side there, and the one on PATH is not always the newest), else `pg_dump` on PATH.
 */
export function findPgDump(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return findPgTool('pg_dump', pgDumpEnvOverride, env);
}

/** {@link findPgDump} for any PostgreSQL client tool (`pg_restore`), with its own override variable. */
export function findPgTool(
  tool: string,
  envOverride: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const override = env[envOverride];
  if (override) return isExecutable(override) ? override : undefined;
  const base = '/usr/lib/postgresql';
  let majors: string[] = [];
  try {
    majors = readdirSync(base).filter((d) => /^\d+(\.\d+)?$/.test(d));
  } catch {
    // No such directory: not a Debian-style install.
  }
  majors.sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const candidate = path.join(base, major, 'bin', tool);
    if (isExecutable(candidate)) return candidate;
  }
  const exe = process.platform === 'win32' ? `${tool}.exe` : tool;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, exe);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * `pg_dump (PostgreSQL) 15.14 (Debian …)` as a server_version_num-style number (150014);
 * 9.6.24 → 90624. Undefined when the output is not pg_dump's.
 */
export function parsePgDumpVersion(output: string): number | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(output);
  if (!m) return undefined;
  const [a, b, c] = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  return a >= 10 ? a * 10000 + b : a * 10000 + b * 100 + c;
}

/** The major release of a version number, comparable across eras: 150014 → 1500; 90624 → 906 (9.6). */
export function majorOf(num: number): number {
  return num >= 100000 ? Math.floor(num / 10000) * 100 : Math.floor(num / 100);
}

export function majorLabel(num: number): string {
  return num >= 100000
    ? String(Math.floor(num / 10000))
    : `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}`;
}

async function serverVersionNum(conn: SqlConnection): Promise<number> {
  const { rows } = await conn.query<{ server_version_num: string }>('SHOW server_version_num');
  return Number(rows[0]?.server_version_num ?? 0);
}

/** The server's major for a package name; `<server major>` if the server cannot say. */
async function serverMajor(conn: SqlConnection): Promise<string> {
  try {
    return majorLabel(await serverVersionNum(conn));
  } catch {
    return '<server major>';
  }
}

/**
 * Make a dump reproducible: drop the version banner and the `\restrict`/`\unrestrict` lines
 * (pg_dump 17.6+/15.14+ put a random key on them), squeeze runs of blank lines to two, and end
 * with exactly one newline.
 */
export function normalizeDump(dump: string): string {
  const kept = dump
    .replace(/\r\n/g, '\n')
    .split('\n')
    .filter(
      (line) =>
        !line.startsWith('-- Dumped from database version') &&
        !line.startsWith('-- Dumped by pg_dump version') &&
        !/^\\(un)?restrict(\s|$)/.test(line),
    );
  return `${kept
    .join('\n')
    .replace(/\n{4,}/g, '\n\n\n')
    .replace(/^\n+/, '')
    .trimEnd()}\n`;
}

/**
 * Run `file` without a shell, collecting stdout as buffers (a big schema is many MB; no
 * maxBuffer). A failure carries pg_dump's stderr, with the password taken out.
 */
function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  context: { engine: string; target: string; operation: string },
  password?: string,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e: NodeJS.ErrnoException) => {
      const missing = e.code === 'ENOENT';
      reject(
        new DbwardError(
          'E_SCHEMA_DUMP',
          missing ? `pg_dump was not found at ${file}.` : `Could not run ${file}: ${e.message}`,
          {
            hint: 'Install the PostgreSQL client (postgresql-client-<server major>), or pass --no-dump',
            cause: e,
            context,
          },
        ),
      );
    });
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      let stderr = Buffer.concat(err).toString('utf8').trim();
      if (password) stderr = stderr.split(password).join('***');
      if (code === 0) return resolve({ stdout, stderr });
      const how = signal ? `was killed by ${signal}` : `exited with code ${String(code)}`;
      reject(
        new DbwardError('E_SCHEMA_DUMP', `${path.basename(file)} ${how}${stderr ? `: ${stderr}` : '.'}`, {
          hint: 'Read pg_dump’s message above; the connection settings come from the target URL. Pass --no-dump to skip the dump.',
          context,
        }),
      );
    });
  });
}
