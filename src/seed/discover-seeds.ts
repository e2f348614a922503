/**
 * Seeds as found on disk: `seeds/*.sql|.ts|.mts|.js|.mjs` for every environment, then
 * `seeds/<env>/*` for the environment `<env>` only, each group in natural file-name order
 * (`2_x` before `10_x`). Everything else in the directory is left alone. Reading files is the
 * only thing this module does besides computing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { migrationChecksum } from '../migrate/migration-checksum.js';
import { SeedFileError } from './seed-errors.js';

export interface SeedFile {
  /** The path relative to the seeds directory, with `/`: `01_countries.sql`, `dev/02_demo_users.ts`. */
  id: string;
  /** The file name without its extension: `01_countries`. */
  name: string;
  /** Absolute path. */
  path: string;
  kind: 'sql' | 'script';
  /** The environment folder it came from, or null for the seeds every environment runs. */
  env: string | null;
  /** SHA-256 of the normalized content (the same checksum migrations use). */
  checksum: string;
  /** Marked `-- seed:repeatable` (SQL) or `export const repeatable = true` (TS/JS). */
  repeatable: boolean;
  /** The file's SQL (SQL seeds); null for scripts. */
  sql: string | null;
}

const seedFileName = /^(.+)\.(sql|ts|mts|js|mjs)$/;
/** Type declarations are not seeds. */
const declarationFile = /\.d\.m?ts$/;

/**
 * Read the seeds to run for `env` (null: only the common ones). A missing directory, or a
 * missing `<env>` folder, simply has no seeds.
 */
export function discoverSeeds(dir: string, env: string | null = null): SeedFile[] {
  const root = path.resolve(dir);
  if (env !== null) checkEnvName(env);
  const common = readGroup(root, root, null);
  const envDir = env === null ? null : path.join(root, env);
  return envDir === null ? common : [...common, ...readGroup(root, envDir, env)];
}

function readGroup(root: string, dir: string, env: string | null): SeedFile[] {
  if (!existsSync(dir)) return [];
  const seeds: SeedFile[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.startsWith('.') || declarationFile.test(entry.name)) continue;
    const match = seedFileName.exec(entry.name);
    if (!match) continue;
    const [, name, extension] = match as unknown as [string, string, string];
    const file = path.join(dir, entry.name);
    const content = readFileSync(file, 'utf8');
    const kind = extension === 'sql' ? 'sql' : 'script';
    seeds.push({
      id: path.relative(root, file).split(path.sep).join('/'),
      name,
      path: file,
      kind,
      env,
      checksum: migrationChecksum(content),
      repeatable:
        kind === 'sql' ? parseSqlSeedHeader(file, content).repeatable : scriptIsRepeatable(file, content),
      sql: kind === 'sql' ? content : null,
    });
  }
  return seeds.sort((a, b) => compareNatural(path.basename(a.path), path.basename(b.path)));
}

function checkEnvName(env: string): void {
  if (env === '' || env === '.' || env === '..' || /[/\\]/.test(env)) {
    throw new UsageError(
      `"${env}" cannot be an environment name for seeds.`,
      'Use a plain name such as dev, test or staging: seeds for it live in seeds/<name>/.',
    );
  }
}

const directive = /^--\s*seed:\s*(.*?)\s*$/;

/**
 * The `-- seed:` directives of a SQL seed. They are comment lines before the first SQL; the only
 * one is `-- seed:repeatable`. An unknown directive, or one after the SQL started, is an error
 * naming the line: silently ignoring a misspelled marker would make the next edit a surprise.
 */
export function parseSqlSeedHeader(file: string, content: string): { repeatable: boolean } {
  let repeatable = false;
  let inHeader = true;
  const lines = content.replace(/^\uFEFF/, '').split(/\r\n?|\n/);
  for (const [index, line] of lines.entries()) {
    const text = line.trim();
    const match = directive.exec(text);
    if (match) {
      if (!inHeader) {
        throw new SeedFileError(file, `"${text}" comes after SQL.`, {
          line: index + 1,
          hint: 'Put `-- seed:` directives on comment lines before the first SQL statement.',
        });
      }
      if (match[1] !== 'repeatable') {
        throw new SeedFileError(file, `Unknown seed directive "${text}".`, {
          line: index + 1,
          hint: 'The only directive is `-- seed:repeatable`, on a comment line before the SQL.',
        });
      }
      repeatable = true;
    } else if (text !== '' && !text.startsWith('--')) {
      inHeader = false;
    }
  }
  return { repeatable };
}

const repeatableExport =
  /^[ \t]*export[ \t]+(?:const|let|var)[ \t]+repeatable\b[ \t]*(?::[^=\n]*)?=[ \t]*([^;\n]*)/m;

/**
 * Whether a TS/JS seed says `export const repeatable = true`. It is read from the source, not by
 * running the file (deciding what to run must not run anything), so the value has to be the
 * literal `true` or `false`.
 */
export function scriptIsRepeatable(file: string, content: string): boolean {
  const match = repeatableExport.exec(content);
  if (!match) return false;
  const value = match[1]!.replace(/\s*(\/\/.*|\/\*.*)?$/, '').trim();
  if (value === 'true') return true;
  if (value === 'false') return false;
  const line = content.slice(0, match.index).split('\n').length;
  throw new SeedFileError(file, `"repeatable" must be the literal true or false, not "${value}".`, {
    line,
    hint: 'dbward reads it without running the file: write `export const repeatable = true`.',
  });
}

/**
 * Natural order of file names: runs of digits compare as numbers (`2_x` before `10_x`), the rest
 * by code unit; ties (`01` vs `1`) fall back to plain comparison, so the order is total.
 */
export function compareNatural(a: string, b: string): number {
  const x = a.match(/\d+|\D+/g) ?? [];
  const y = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const p = x[i]!;
    const q = y[i]!;
    const digits = /^\d/.test(p) && /^\d/.test(q);
    if (digits) {
      const m = p.replace(/^0+(?=\d)/, '');
      const n = q.replace(/^0+(?=\d)/, '');
      if (m.length !== n.length) return m.length - n.length;
      if (m !== n) return m < n ? -1 : 1;
    } else if (p !== q) {
      return p < q ? -1 : 1;
    }
  }
  if (x.length !== y.length) return x.length - y.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
