/**
 * The Redis programs a backup runs: `redis-cli --rdb` takes the dump, `redis-check-rdb` proves
 * it whole, `redis-server` loads it for verification and restore. Each can be pointed at
 * explicitly with an environment variable; otherwise it is looked for beside redis-cli (Redis
 * installs them together), then on PATH and in the sbin directories.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import { REDACTED } from '../../core/redact.js';

export const redisCliEnvOverride = 'DBWARD_REDIS_CLI';
export const redisCheckRdbEnvOverride = 'DBWARD_REDIS_CHECK_RDB';
export const redisServerEnvOverride = 'DBWARD_REDIS_SERVER';

const overrides = {
  'redis-cli': redisCliEnvOverride,
  'redis-check-rdb': redisCheckRdbEnvOverride,
  'redis-server': redisServerEnvOverride,
} as const;

export type RedisTool = keyof typeof overrides;

/** The package that ships each tool (Debian/Ubuntu names; Homebrew and others have `redis`). */
const packages: Record<RedisTool, string> = {
  'redis-cli': 'redis-tools',
  'redis-check-rdb': 'redis-tools',
  'redis-server': 'redis-server',
};

/** Where `tool` is, or an E_BACKUP_TOOL error naming the package to install. */
export function findRedisTool(tool: RedisTool, env: NodeJS.ProcessEnv = process.env): string {
  const override = env[overrides[tool]];
  if (override) {
    if (isExecutableFile(override)) return override;
    throw toolError(`${overrides[tool]} points at ${override}, which is not an executable file.`, tool);
  }
  const cli = tool === 'redis-cli' ? undefined : findOnPath('redis-cli', env);
  const dirs = [
    ...(cli ? [path.dirname(cli)] : []),
    ...(env.PATH ?? '').split(path.delimiter).filter(Boolean),
    '/usr/sbin',
    '/usr/local/sbin',
    '/sbin',
  ];
  for (const dir of dirs) {
    const candidate = path.join(dir, tool);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw toolError(`${tool} was not found, so Redis cannot be backed up or restored.`, tool);
}

export function toolError(message: string, tool: RedisTool): DbwardError {
  return new DbwardError('E_BACKUP_TOOL', message, {
    hint: `Install ${packages[tool]} (apt install ${packages[tool]}; Homebrew: brew install redis), or set ${overrides[tool]} to the program's path.`,
    context: { engine: 'redis', operation: 'backup' },
  });
}

/**
 * How to run `redis-cli` against the target: pure, so a test can check no secret is in argv.
 * The password goes in REDISCLI_AUTH (redis-cli reads it when -a is absent); a stray
 * REDISCLI_AUTH in the caller's environment is dropped when the URL has none.
 */
export function redisCliInvocation(spec: ConnectionSpec): { args: string[]; env: NodeJS.ProcessEnv } {
  const args = ['-h', spec.host ?? '127.0.0.1', '-p', String(spec.port ?? 6379)];
  if (spec.user) args.push('--user', spec.user);
  if (spec.scheme === 'rediss') args.push('--tls', ...(spec.host ? ['--sni', spec.host] : []));
  const { REDISCLI_AUTH: _stray, ...env } = process.env;
  return {
    args: [...args, '--no-auth-warning'],
    env: spec.password ? { ...env, REDISCLI_AUTH: spec.password } : env,
  };
}

/** The version a Redis program prints for `--version` (`redis-cli 7.0.15` → `7.0.15`). */
export async function toolVersion(program: string, tool: RedisTool): Promise<string> {
  const { code, output } = await runTool(program, ['--version'], process.env);
  const version = /\b(\d+\.\d+(?:\.\d+)?)\b/.exec(output)?.[1];
  if (code !== 0 || !version) {
    throw toolError(
      `Cannot tell the version of ${program} from its output: ${output.trim() || `exit ${code}`}`,
      tool,
    );
  }
  return version;
}

export const majorOf = (version: string): number => Number(version.split('.')[0]);

export interface ToolRun {
  code: number | null;
  /** stdout and stderr together (these tools write little). */
  output: string;
}

/** Run a short-lived tool to completion, keeping at most 64 KB of its output. */
export function runTool(
  program: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  onSpawn?: (kill: () => void) => void,
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(() => child.kill('SIGTERM'));
    let output = '';
    const keep = (chunk: Buffer): void => {
      if (output.length < 65_536) output += chunk.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** Tool output fit to quote in an error: the password taken out, trimmed to its last lines. */
export function quoteOutput(output: string, password: string | undefined, lines = 5): string {
  const clean = password ? output.split(password).join(REDACTED) : output;
  return clean.trim().split(/\r?\n/).slice(-lines).join(' | ');
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutableFile(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
