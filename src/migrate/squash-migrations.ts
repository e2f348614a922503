/**
 * `dbward migrate squash --to V`: replace the migrations up to V with one baseline, built from
 * the schema dump of a scratch database migrated to V. Databases that already ran V keep working
 * (the baseline counts as applied there, see migration-status.ts); new databases run the baseline
 * instead of the history. Engine-neutral: the engine's scratchDatabase, schemaDump and
 * migrationStore roles do the engine work.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SqlDatabase } from '../connect/database-handle.js';
import { openSql } from '../connect/open.js';
import { DbwardError, NotAvailableError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import type {
  EngineDefinition,
  EngineId,
  MigrationStoreRole,
  SchemaDumpRole,
  ScratchDatabase,
  ScratchDatabaseRole,
} from '../engines/contract.js';
import { engineById } from '../engines/registry.js';
import { discoverMigrations } from './discover-migrations.js';
import { compareVersions, type MigrationFile } from './migration-file.js';
import { parseSqlMigration } from './parse-sql-migration.js';
import { migrateUp, readMigrationStatus } from './run-migrations.js';

/** The migrations cannot be squashed as asked (nothing was changed). Exit 1. */
export class MigrationSquashError extends DbwardError {
  constructor(message: string, hint: string) {
    super('E_MIGRATION_SQUASH', message, { hint, exitCode: ExitCode.failed });
  }
}

export interface SquashOptions {
  /** The target's database: its tracking table must show the squashed migrations in order. */
  db: SqlDatabase;
  /** The target `db` was opened from: the scratch databases are made beside it. */
  target: Target;
  /** The migrations directory. */
  dir: string;
  /** The newest migration to squash (inclusive). */
  to: string;
  /** Tracking table. Default `dbward_migrations`. */
  table?: string;
  /** How long migrating a scratch database waits for its lock. Default 60 s. */
  lockTimeoutMs?: number;
  /** Build and check the baseline, but write and delete nothing. */
  dryRun?: boolean;
  /** For the scratch databases' connections. */
  logger?: Logger;
  /** One line per step, for progress output. */
  onProgress?: (message: string) => void;
}

export interface SquashResult {
  target: string;
  dryRun: boolean;
  /** The first and last versions replaced (the range in the baseline's header). */
  from: string;
  to: string;
  /** The baseline (absolute path): written, or with dryRun what would be. */
  file: string;
  /** The migration files it replaces: deleted from the directory (kept with dryRun). */
  removed: { version: string; name: string; file: string }[];
  /** The baseline's whole content. */
  content: string;
}

const defaultTable = 'dbward_migrations';
/**
 * dbward's own tables, which must not end up in a baseline: the tracking table, and the lock
 * table of engines without advisory locks (SQLite's `dbward_migration_lock`, see
 * src/engines/sqlite/sqlite-migration-lock.ts).
 */
const ownTables = (table: string): string[] => [table, 'dbward_migration_lock'];

export async function squashMigrations(options: SquashOptions): Promise<SquashResult> {
  const { db, to } = options;
  const dir = path.resolve(options.dir);
  const table = options.table ?? defaultTable;
  const progress = options.onProgress ?? (() => {});
  const files = discoverMigrations(dir);
  const last = files.find((f) => compareVersions(f.version, to) === 0);
  if (!last) {
    throw new MigrationSquashError(
      `No migration has version ${to}.`,
      'Run `dbward migrate status` to see the versions; --to names the newest migration to squash.',
    );
  }
  const range = files.filter((f) => compareVersions(f.version, to) <= 0);
  const scripts = range.filter((f) => f.kind === 'script');
  if (scripts.length > 0) {
    throw new MigrationSquashError(
      `Cannot squash ${scripts.map(fileName).join(', ')}: ${scripts.length === 1 ? 'it is a script migration' : 'they are script migrations'}, and what a script does to data cannot be captured by a schema dump.`,
      `Squash only up to the migration before the first script (--to an earlier version), or replace the script with SQL first.`,
    );
  }
  const baselineName = `${last.version}_squashed.sql`;
  const baselinePath = path.join(dir, baselineName);
  if (files.some((f) => path.basename(f.path) === baselineName)) {
    throw new MigrationSquashError(
      `${baselinePath} already exists.`,
      `It is already a squashed baseline; squash up to a later version, or remove it first.`,
    );
  }
  await refuseInconsistentDatabase(options, dir, table, range);
  const from = range.reduce((min, f) => {
    const first = f.squashed?.from ?? f.version;
    return compareVersions(first, min) < 0 ? first : min;
  }, range[0]!.squashed?.from ?? range[0]!.version);

  const engine = engineById(db.engine.id as EngineId);
  const roles = await engineRoles(engine);
  progress(`building the schema at ${to} in a scratch database (${range.length} migration(s))`);
  const dump = await inScratch(options, roles, engine, async (scratchDb, scratchTarget) => {
    await migrateUp({ db: scratchDb, dir, table, lockTimeoutMs: options.lockTimeoutMs ?? 60_000 }, { to });
    return dumpWithoutOwnTables(scratchDb, scratchTarget, roles, engine, table);
  });

  const sql = await baselineSql(dump, db, roles.store);
  const content = baselineContent({ from, to: last.version, range, sql });
  // What discovery will read back: the marker parsed, the dump intact as the up section.
  const parsed = parseSqlMigration(baselinePath, content);
  if (parsed.up.sql !== sql.trim() || parsed.down !== null || parsed.squashed?.to !== last.version) {
    throw new MigrationSquashError(
      'The schema dump cannot be written as a migration: it contains a line dbward would read as a "-- migrate:" marker.',
      'Nothing was changed. Report this with the dump (`dbward migrate squash --dry-run --json`).',
    );
  }

  progress('checking that the baseline recreates that schema');
  const rebuilt = await inScratch(options, roles, engine, async (scratchDb, scratchTarget) => {
    const checkDir = mkdtempSync(path.join(tmpdir(), 'dbward-squash-'));
    try {
      writeFileSync(path.join(checkDir, baselineName), content);
      await migrateUp({
        db: scratchDb,
        dir: checkDir,
        table,
        lockTimeoutMs: options.lockTimeoutMs ?? 60_000,
      });
    } finally {
      rmSync(checkDir, { recursive: true, force: true });
    }
    return dumpWithoutOwnTables(scratchDb, scratchTarget, roles, engine, table);
  });
  if (rebuilt !== dump) {
    const { line, expected, actual } = firstDifference(dump, rebuilt);
    throw new MigrationSquashError(
      `The baseline does not recreate the schema at ${to}: applied to an empty database, its schema dump differs at line ${line} (expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}).`,
      'Nothing was changed. This is a limitation of the dump for this schema; keep the history, or squash up to an earlier version.',
    );
  }

  const result: SquashResult = {
    target: db.target.name,
    dryRun: !!options.dryRun,
    from,
    to: last.version,
    file: baselinePath,
    removed: range.map((f) => ({ version: f.version, name: f.name, file: f.path })),
    content,
  };
  if (options.dryRun) return result;
  // `wx`: never overwrite a file that appeared meanwhile. The new file first, so an
  // interrupted run leaves the history plus the baseline, never neither.
  try {
    writeFileSync(baselinePath, content, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new MigrationSquashError(
        `${baselinePath} already exists.`,
        'Remove it, or squash up to another version.',
      );
    }
    throw err;
  }
  for (const f of range) unlinkSync(f.path);
  return result;
}

/**
 * The target database must agree with the files being squashed, or the squash would hide a
 * problem for good: an edited or half-applied migration, a migration the database has but the
 * directory lacks, one it skipped, or a database stranded part-way through the range.
 */
async function refuseInconsistentDatabase(
  options: SquashOptions,
  dir: string,
  table: string,
  range: MigrationFile[],
): Promise<void> {
  const to = options.to;
  const status = (await readMigrationStatus({ db: options.db, dir, table })).filter(
    (s) => compareVersions(s.version, to) <= 0,
  );
  const problems: [string, string][] = [
    ['edited', 'the file changed after it was applied'],
    ['partial', 'a run stopped part-way through it'],
    ['missing-file', 'the database ran it, but its file is not in the directory'],
    ['out-of-order', 'the database skipped it, though it ran later migrations'],
  ];
  for (const [state, what] of problems) {
    const found = status.filter((s) => s.state === state);
    if (found.length > 0) {
      throw new MigrationSquashError(
        `Cannot squash: on target "${options.db.target.name}", ${found.map((s) => `${s.version}_${s.name}`).join(', ')} ${found.length === 1 ? 'is' : 'are'} ${state}: ${what}.`,
        'Resolve it first (`dbward migrate status` shows each migration), then squash.',
      );
    }
  }
  const applied = status.filter((s) => s.appliedAt !== null);
  if (applied.length > 0 && applied.length < status.length) {
    const at = applied.at(-1)!;
    throw new MigrationSquashError(
      `Cannot squash: target "${options.db.target.name}" is at ${at.version}_${at.name}, part-way through the ${range.length} migration(s) up to ${to}; after the squash it could not finish them.`,
      `Apply up to ${to} first (\`dbward migrate up --to ${to}\`), then squash.`,
    );
  }
}

interface Roles {
  scratch: ScratchDatabaseRole;
  dump: SchemaDumpRole;
  store: MigrationStoreRole;
}

async function engineRoles(engine: EngineDefinition): Promise<Roles> {
  const { scratchDatabase, schemaDump, migrationStore } = engine.roles;
  if (!scratchDatabase || !schemaDump || !migrationStore) {
    throw new NotAvailableError(
      `migrate squash is not available for ${engine.displayName}: it needs scratch databases and schema dumps.`,
      'PostgreSQL, MySQL/MariaDB and SQLite are supported.',
    );
  }
  return { scratch: await scratchDatabase(), dump: await schemaDump(), store: await migrationStore() };
}

/** Run `fn` on a new scratch database beside the target; the database is dropped whatever happens. */
async function inScratch<T>(
  options: SquashOptions,
  roles: Roles,
  engine: EngineDefinition,
  fn: (db: SqlDatabase, target: Target) => Promise<T>,
): Promise<T> {
  const { db, target } = options;
  const scratch: ScratchDatabase = await roles.scratch.createScratch(db.connection, {
    target,
    spec: engine.parseUrl(target.url),
  });
  try {
    const scratchDb = await openSql(scratch.target, options.logger ? { logger: options.logger } : {});
    try {
      return await fn(scratchDb, scratch.target);
    } finally {
      await scratchDb.close();
    }
  } finally {
    await scratch.drop();
  }
}

/** The scratch database's schema without dbward's own tables. */
async function dumpWithoutOwnTables(
  db: SqlDatabase,
  scratchTarget: Target,
  roles: Roles,
  engine: EngineDefinition,
  table: string,
): Promise<string> {
  for (const own of ownTables(table)) await db.query(`DROP TABLE IF EXISTS ${db.ident(own)}`);
  try {
    return await roles.dump.dumpSchema(db.connection, {
      target: scratchTarget,
      spec: engine.parseUrl(scratchTarget.url),
    });
  } catch (err) {
    if (err instanceof DbwardError && err.code === 'E_SCHEMA_DUMP') {
      throw new DbwardError(
        'E_SCHEMA_DUMP',
        `migrate squash builds the baseline from a schema dump: ${err.message}`,
        {
          hint: (err.hint ?? '').replace(/[,;.]?\s*(or )?pass --no-dump[^.]*\.?$/i, '').trim() || undefined,
          exitCode: err.exitCode,
          cause: err,
        },
      );
    }
    throw err;
  }
}

/**
 * The dump as a migration's up section. Two things a dump tool writes for a script runner
 * (psql, mysql) need adjusting for dbward's runner, which runs the section on a pooled session,
 * inside a transaction where the engine has transactional DDL, and records the row after it:
 *
 * - Executable comments (`/*!40014 SET FOREIGN_KEY_CHECKS=0 *\/`, `/*!50003 CREATE*\/ …
 *   TRIGGER …`): the runner's statement splitter skips statements that are only comments, so
 *   they are unwrapped here where the server would run them (its version is at least the
 *   comment's), and left out where it would not.
 * - Session settings at the top of the dump (pg_dump's `SET check_function_bodies = false;` …)
 *   become `SET LOCAL`, so they end with the migration's transaction instead of carrying over
 *   to later migrations on the same session; the `search_path` reset is left out (the dump names
 *   every object with its schema, and the tracking row is written after it on that session).
 */
async function baselineSql(dump: string, db: SqlDatabase, store: MigrationStoreRole): Promise<string> {
  let sql = dump.replace(/\r\n/g, '\n');
  if (/\/\*M?!/.test(sql)) {
    const server = await db.connection.serverVersion();
    sql = unwrapExecutableComments(sql, server);
  }
  if (db.engine.capabilities.supportsTransactionalDdl) sql = localSessionSettings(sql, store);
  return `${sql.replace(/\n{4,}/g, '\n\n\n').trim()}\n`;
}

/** `/*!NNNNN body *\/` → `body` when the server is at least version NNNNN; `/*M!…` only on MariaDB. */
export function unwrapExecutableComments(sql: string, serverVersion: string): string {
  const mariadb = /mariadb/i.test(serverVersion);
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(serverVersion.replace(/^5\.5\.5-/, ''));
  const server = m ? Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]) : Number.MAX_SAFE_INTEGER;
  return sql
    .replace(
      /\/\*(M?)!(\d{5,6})?([\s\S]*?)\*\//g,
      (_whole, onlyMariadb: string, version: string | undefined, body: string) => {
        const runs = (onlyMariadb === '' || mariadb) && (version === undefined || server >= Number(version));
        return runs ? body.replace(/^ /, '').replace(/\s+$/, '') : '';
      },
    )
    .replace(/^[ \t]+$/gm, '')
    .replace(/^\n+/, '');
}

function localSessionSettings(sql: string, store: MigrationStoreRole): string {
  const lines = sql.split('\n');
  const drop = new Set<number>();
  for (const statement of store.splitStatements(sql)) {
    // The splitter includes comments before a statement in its text: skip those lines.
    const textLines = statement.text.split('\n');
    let skip = 0;
    while (skip < textLines.length - 1 && /^\s*(--.*)?$/.test(textLines[skip]!)) skip++;
    if (skip !== textLines.length - 1) continue; // a statement of several lines: not a setting
    const index = statement.line + skip;
    const line = lines[index];
    if (line === undefined) continue;
    if (/^SET\s+(?!LOCAL\b|SESSION\b)[\w.]+\s*(=|TO\b)/i.test(line)) {
      lines[index] = line.replace(/^SET\s+/i, 'SET LOCAL ');
    } else if (/^SELECT\s+pg_catalog\.set_config\('search_path',\s*'',\s*false\);?\s*$/i.test(line)) {
      drop.add(index);
    }
  }
  return lines.filter((_, i) => !drop.has(i)).join('\n');
}

/** The baseline file: the marker header, then the schema as its only (up) section. */
function baselineContent(parts: { from: string; to: string; range: MigrationFile[]; sql: string }): string {
  const { from, to, range, sql } = parts;
  const first = fileName(range[0]!);
  const replaced = range.length === 1 ? first : `${first} … ${fileName(range.at(-1)!)}`;
  return [
    `-- dbward:squashed ${from}..${to} (${range.length} migration${range.length === 1 ? '' : 's'})`,
    '--',
    `-- A baseline written by \`dbward migrate squash\`: the schema after ${replaced},`,
    '-- from a schema dump. It replaces those migrations (they remain in version control): a',
    '-- database that ran them counts it as applied, a new database runs it instead. Do not edit',
    '-- it; put changes in a new migration. No down section: a baseline is not rolled back.',
    '',
    '-- migrate:up',
    sql.trimEnd(),
    '',
  ].join('\n');
}

function fileName(f: MigrationFile): string {
  return path.basename(f.path);
}

function firstDifference(a: string, b: string): { line: number; expected: string; actual: string } {
  const x = a.split('\n');
  const y = b.split('\n');
  let i = 0;
  while (i < x.length && i < y.length && x[i] === y[i]) i++;
  return { line: i + 1, expected: x[i] ?? '(end of dump)', actual: y[i] ?? '(end of dump)' };
}
