import { existsSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { redactUrl } from '../core/redact.js';
import { defaultTargetOptions, type Target, type TargetOptions } from '../core/target.js';
import { engineForUrl } from '../engines/registry.js';
import type { configSchema, TargetConfigInput } from './config-schema.js';
import { loadDotenv } from './dotenv.js';
import { findConfigFile } from './find-config-file.js';
import { interpolateEnv } from './interpolate.js';

export interface LoadConfigOptions {
  /** Where to start looking for dbward.config.* and .env. Default: process.cwd(). */
  cwd?: string;
  /** An explicit config file (`--config`); it must exist. */
  configFile?: string;
  /** A URL that replaces any config (`--url`); becomes the target `main`. */
  url?: string;
  /** Environment overrides to apply (`$production: {…}` in the file). Default: DBWARD_ENV, then NODE_ENV. */
  envName?: string;
  /** The environment to read variables from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface ResolvedConfig {
  /** The config file used, or null when targets came from --url or DATABASE_URL. */
  file: string | null;
  /** Where the targets came from, for messages: a file path, `--url` or `DATABASE_URL`. */
  source: string | null;
  targets: Target[];
  defaultTarget: string | null;
}

/**
 * Resolve the targets to work on: `--url` first, then `--config` or the nearest
 * dbward.config.*, then DATABASE_URL. Loads `.env` from the config's directory (or the cwd).
 * Every error names the file and key at fault.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  if (options.url !== undefined) {
    return single(options.url, '--url');
  }
  let file: string | null;
  if (options.configFile !== undefined) {
    file = path.resolve(cwd, options.configFile);
    if (!existsSync(file)) {
      throw new ConfigError(`Config file not found: ${file}`, {
        file,
        hint: 'Check the path given to --config, or leave --config out to use the nearest dbward.config.*.',
      });
    }
  } else {
    file = findConfigFile(cwd);
  }
  loadDotenv(file ? path.dirname(file) : cwd, env);
  if (file) return loadFile(file, options.envName ?? env.DBWARD_ENV ?? env.NODE_ENV, env);
  if (env.DATABASE_URL) return single(env.DATABASE_URL, 'DATABASE_URL');
  return { file: null, source: null, targets: [], defaultTarget: null };
}

function single(url: string, source: string): ResolvedConfig {
  const target = buildTarget('main', url, source, 'url');
  return { file: null, source, targets: [target], defaultTarget: 'main' };
}

async function loadFile(
  file: string,
  envName: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<ResolvedConfig> {
  const raw = await readConfigFile(file, envName);
  // c12 merges `$production` / `$env.<name>` overrides but leaves the keys in place.
  for (const key of Object.keys(raw)) if (key.startsWith('$')) delete raw[key];
  // zod loads only for a config file: a DATABASE_URL-only run (CI, containers) skips ~30 ms of it.
  const { configSchema } = await import('./config-schema.js');
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw schemaError(file, parsed.error);
  const config = interpolateEnv(parsed.data, env, file) as z.output<typeof configSchema>;
  const targets = Object.entries(config.targets).map(([name, entry]) =>
    withProjectPaths(buildTarget(name, entry, file, `targets.${name}`), entry, config, path.dirname(file)),
  );
  if (config.defaultTarget !== undefined && !config.targets[config.defaultTarget]) {
    throw new ConfigError(
      `${file}: "defaultTarget" names "${config.defaultTarget}", which is not a target.`,
      {
        file,
        key: 'defaultTarget',
        hint: `Use one of: ${targets.map((t) => t.name).join(', ') || '(no targets defined)'}.`,
      },
    );
  }
  const defaultTarget =
    config.defaultTarget ?? (targets.length === 1 ? targets[0]!.name : config.targets.main ? 'main' : null);
  return { file, source: file, targets, defaultTarget };
}

async function readConfigFile(file: string, envName: string | undefined): Promise<Record<string, unknown>> {
  try {
    // c12 (with jiti) loads .ts/.js/.json alike and applies environment overrides.
    const { loadConfig: c12Load } = await import('c12');
    const result = await c12Load({
      cwd: path.dirname(file),
      configFile: path.basename(file),
      rcFile: false,
      globalRc: false,
      packageJson: false,
      dotenv: false,
      giget: false,
      envName: envName ?? false,
    });
    const config: unknown = result.config;
    if (!config || typeof config !== 'object' || Array.isArray(config)) {
      throw new ConfigError(`${file} does not export a config object.`, {
        file,
        hint: 'Export one: `export default defineConfig({ targets: { main: "${DATABASE_URL}" } })`.',
      });
    }
    return { ...(config as Record<string, unknown>) };
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`Could not load ${file}: ${reason}`, {
      file,
      cause: err,
      hint: 'Fix the syntax error in the config file (run it with node/tsx to see the full error).',
    });
  }
}

function schemaError(file: string, error: z.ZodError): ConfigError {
  const issue = mostSpecific(error.issues[0]!);
  const key = issue.path.map(String).join('.') || '(top level)';
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return new ConfigError(`${file}: "${key}": ${describeIssue(issue)}${more}`, {
    file,
    key,
    hint: 'See docs/config.md for the config file format.',
  });
}

/**
 * A target may be a string or an object, so a mistake inside an object fails both branches of
 * the union. Report the branch that got furthest (the deepest path): "pool.max: expected number"
 * helps, "expected a string or an object" does not.
 */
function mostSpecific(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    for (const inner of branch) {
      if (inner.path.length > 0 && (!best || inner.path.length > best.path.length)) best = inner;
    }
  }
  return best ? { ...mostSpecific(best), path: [...issue.path, ...best.path] } : issue;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_union') return 'expected a URL string, or an object with "url" and options';
  return issue.message;
}

function buildTarget(name: string, entry: TargetConfigInput, source: string, key: string): Target {
  const object = typeof entry === 'string' ? { url: entry } : entry;
  const url = object.url.trim();
  try {
    engineForUrl(url);
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new ConfigError(`${source}: "${key}${typeof entry === 'string' ? '' : '.url'}": ${err.message}`, {
        file: source,
        key,
        hint: err.hint,
      });
    }
    throw err;
  }
  const options: TargetOptions = {
    pool: {
      max: object.pool?.max ?? defaultTargetOptions.pool.max,
      idleTimeoutMs:
        object.pool?.idleTimeout !== undefined
          ? parseDuration(object.pool.idleTimeout)
          : defaultTargetOptions.pool.idleTimeoutMs,
    },
    connectTimeoutMs:
      object.connectTimeout !== undefined
        ? parseDuration(object.connectTimeout)
        : defaultTargetOptions.connectTimeoutMs,
    leakWarningMs:
      object.leakWarning !== undefined
        ? parseDuration(object.leakWarning)
        : defaultTargetOptions.leakWarningMs,
    driver: object.driver ?? {},
  };
  return { name, url, displayUrl: redactUrl(url), options };
}

type MigrationsBlock = NonNullable<z.output<typeof configSchema>['migrations']>;
type SeedsBlock = NonNullable<z.output<typeof configSchema>['seeds']>;
type DoctorBlock = NonNullable<z.output<typeof configSchema>['doctor']>;
type BackupsBlock = NonNullable<z.output<typeof configSchema>['backups']>;

/** The target's backups block over the top-level one, with local paths made absolute. */
function backupSettings(
  top: BackupsBlock | undefined,
  own: BackupsBlock | undefined,
  resolve: (p: string) => string,
): Target['backups'] {
  if (!top && !own) return undefined;
  const merged: BackupsBlock = { ...top, ...own };
  const isUrl = (spec: string): boolean => /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(spec);
  return {
    ...merged,
    ...(merged.storage !== undefined
      ? { storage: isUrl(merged.storage) ? merged.storage : resolve(merged.storage) }
      : {}),
    ...(merged.keyFile !== undefined ? { keyFile: resolve(merged.keyFile) } : {}),
  };
}

/**
 * Add the target's migrations and seeds settings: its own block over the top-level one, key by
 * key, with paths resolved against the config file's folder (so commands work from any cwd).
 */
function withProjectPaths(
  target: Target,
  entry: TargetConfigInput,
  config: z.output<typeof configSchema>,
  baseDir: string,
): Target {
  const own: {
    migrations?: MigrationsBlock;
    seeds?: SeedsBlock;
    doctor?: DoctorBlock;
    backups?: BackupsBlock;
  } = typeof entry === 'string' ? {} : entry;
  const m: MigrationsBlock = { ...config.migrations, ...own.migrations };
  const s: SeedsBlock = { ...config.seeds, ...own.seeds };
  const resolve = (p: string): string => path.resolve(baseDir, p);
  const migrations: NonNullable<Target['migrations']> = {
    ...(m.dir !== undefined ? { dir: resolve(m.dir) } : {}),
    ...(m.table !== undefined ? { table: m.table } : {}),
    ...(m.schemaFile !== undefined
      ? { schemaFile: m.schemaFile === false ? false : resolve(m.schemaFile) }
      : {}),
  };
  const seeds: NonNullable<Target['seeds']> = {
    ...(s.dir !== undefined ? { dir: resolve(s.dir) } : {}),
    ...(s.table !== undefined ? { table: s.table } : {}),
  };
  // Thresholds merge key by key; skip lists add up.
  const thresholds = { ...config.doctor?.thresholds, ...own.doctor?.thresholds };
  const skip = [...(config.doctor?.skip ?? []), ...(own.doctor?.skip ?? [])];
  const doctor: NonNullable<Target['doctor']> = {
    ...(Object.keys(thresholds).length > 0 ? { thresholds } : {}),
    ...(skip.length > 0 ? { skip } : {}),
  };
  const backups = backupSettings(config.backups, own.backups, resolve);
  return {
    ...target,
    ...(backups ? { backups } : {}),
    ...(Object.keys(doctor).length > 0 ? { doctor } : {}),
    ...(Object.keys(migrations).length > 0 ? { migrations } : {}),
    ...(Object.keys(seeds).length > 0 ? { seeds } : {}),
  };
}

/** Build one Target from a URL or a target object (as in config), for `open()`. */
export function targetFromInput(input: string | (TargetConfigInput & { name?: string })): Target {
  const name = typeof input === 'object' && input.name ? input.name : 'main';
  if (typeof input === 'object') {
    const { name: _name, ...rest } = input;
    return buildTarget(name, rest, 'open()', 'target');
  }
  return buildTarget(name, input, 'open()', 'url');
}
