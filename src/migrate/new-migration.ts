import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { discoverMigrations } from './discover-migrations.js';
import { compareVersions } from './migration-file.js';

export interface NewMigrationOptions {
  /** Write a TypeScript migration (`up(db)` / `down(db)`) instead of SQL. */
  script?: boolean;
  /** The clock, for tests. */
  now?: Date;
}

/** `2026-11-22T04:30:05Z` → `20261122043005`. */
export function timestampVersion(date: Date): string {
  return date.toISOString().replace(/\D/g, '').slice(0, 14);
}

/**
 * Create a new, empty migration in `dir` and return its path. The version is the current UTC
 * time, moved past the newest existing version if needed, so versions stay unique and ordered
 * even when two are created in the same second.
 */
export function createMigrationFile(dir: string, name: string, options: NewMigrationOptions = {}): string {
  const slug = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!slug) {
    throw new UsageError(
      `"${name}" is not a usable migration name.`,
      'Use letters and digits, e.g. create_users.',
    );
  }
  const existing = discoverMigrations(dir);
  let version = timestampVersion(options.now ?? new Date());
  const newest = existing.at(-1)?.version;
  if (newest && compareVersions(version, newest) <= 0) version = (BigInt(newest) + 1n).toString();
  mkdirSync(dir, { recursive: true });
  const file = path.join(path.resolve(dir), `${version}_${slug}.${options.script ? 'ts' : 'sql'}`);
  if (existsSync(file)) throw new UsageError(`${file} already exists.`);
  writeFileSync(file, options.script ? scriptTemplate : sqlTemplate);
  return file;
}

const sqlTemplate = `-- migrate:up


-- migrate:down

`;

const scriptTemplate = `import type { Database } from 'dbward';

export async function up(db: Database): Promise<void> {
  // SQL:   if (db.kind === 'sql') await db.query('CREATE TABLE …');
  // Redis: if (db.kind === 'keyvalue') await db.command('HSET', 'config', 'theme', 'dark');
}

export async function down(db: Database): Promise<void> {
  // undo what up() did
}
`;
