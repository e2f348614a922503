/**
 * Applying and rolling back migrations, engine-neutral: the engine's migration store records
 * rows and provides the lock; capability flags decide whether a migration runs in a transaction.
 * Every run takes the lock first, reads the tracking table under it, plans, and only then runs.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { SqlDatabase } from '../connect/database-handle.js';
import { NotAvailableError } from '../core/errors.js';
import { dbwardVersion } from '../core/version.js';
import type { AppliedMigration, EngineId, LockHolder, MigrationStoreRole } from '../engines/contract.js';
import { engineById } from '../engines/registry.js';
import { discoverMigrations } from './discover-migrations.js';
import { MigrationError } from './migration-error.js';
import { compareVersions, type MigrationFile, type MigrationSection } from './migration-file.js';
import { MigrationPlanError, planDown, planUp, type DownOptions, type UpOptions } from './migration-plan.js';
import { migrationStatus, type MigrationStatusEntry } from './migration-status.js';

export interface MigrateContext {
  db: SqlDatabase;
  /** The migrations directory. */
  dir: string;
  /** Tracking table. Default `dbward_migrations`. */
  table?: string;
  /** How long to wait for another run's lock. Default 60 s. */
  lockTimeoutMs?: number;
  /** Called before and after each migration, for progress output. */
  onProgress?: (event: MigrateProgress) => void;
}

export interface MigrateProgress {
  phase: 'start' | 'done';
  version: string;
  name: string;
  durationMs?: number;
}

export interface MigrateRunResult {
  target: string;
  direction: 'up' | 'down';
  dryRun: boolean;
  migrations: {
    version: string;
    name: string;
    file: string;
    durationMs: number | null;
    sql: string | null;
  }[];
}

const defaultTable = 'dbward_migrations';

/** Where every migration stands (no lock needed: it only reads). */
export async function readMigrationStatus(ctx: MigrateContext): Promise<MigrationStatusEntry[]> {
  const store = await storeFor(ctx.db);
  const files = discoverMigrations(ctx.dir);
  return migrationStatus(files, await store.listApplied(ctx.db.connection, ctx.table ?? defaultTable));
}

/** Apply pending migrations (all, `--to`, or `--step`); with dryRun, only say what would run. */
export function migrateUp(
  ctx: MigrateContext,
  options: UpOptions & { dryRun?: boolean } = {},
): Promise<MigrateRunResult> {
  return locked(ctx, (run) =>
    execute(ctx, run, 'up', planUp(run.status, run.files, options), !!options.dryRun),
  );
}

/** Roll back the newest migration (or `--step N`, or down `--to V`); with dryRun, only say what would run. */
export function migrateDown(
  ctx: MigrateContext,
  options: DownOptions & { dryRun?: boolean } = {},
): Promise<MigrateRunResult> {
  return locked(ctx, (run) =>
    execute(ctx, run, 'down', planDown(run.status, run.files, options), !!options.dryRun),
  );
}

/** Roll back the newest applied migration and apply it again, under one lock. */
export function migrateRedo(ctx: MigrateContext): Promise<MigrateRunResult[]> {
  return locked(ctx, async (run) => {
    const down = await execute(ctx, run, 'down', planDown(run.status, run.files, { step: 1 }), false);
    const version = down.migrations[0]?.version;
    if (version === undefined) return [down];
    const status = migrationStatus(run.files, await run.store.listApplied(ctx.db.connection, run.table));
    return [down, await execute(ctx, run, 'up', planUp(status, run.files, { to: version }), false)];
  });
}

/** What a locked run works with: read under the lock, so no other run can change it meanwhile. */
interface LockedRun {
  store: MigrationStoreRole;
  table: string;
  status: MigrationStatusEntry[];
  files: MigrationFile[];
}

async function execute(
  ctx: MigrateContext,
  run: LockedRun,
  direction: 'up' | 'down',
  plan: MigrationFile[],
  dryRun: boolean,
): Promise<MigrateRunResult> {
  const result = emptyResult(ctx, direction, dryRun);
  for (const file of plan) {
    const section = direction === 'up' ? file.up : file.down;
    let durationMs: number | null = null;
    if (!dryRun) {
      durationMs = await runOne(
        ctx,
        run.store,
        file,
        section,
        (session, startedAt) =>
          direction === 'up'
            ? run.store.recordApplied(session, run.table, appliedRow(file, startedAt))
            : run.store.removeApplied(session, run.table, file.version),
        direction,
      );
    }
    result.migrations.push({
      version: file.version,
      name: file.name,
      file: file.path,
      durationMs,
      sql: dryRun ? (section?.sql ?? null) : null,
    });
  }
  return result;
}

/**
 * Adopt an existing database: record every migration up to and including `version` as applied
 * without running it (for a database whose schema already has them). Nothing else changes.
 */
export function migrateBaseline(ctx: MigrateContext, version: string): Promise<MigrateRunResult> {
  return locked(ctx, async ({ store, table, status, files }) => {
    if (!files.some((f) => compareVersions(f.version, version) === 0)) {
      throw new MigrationPlanError(
        `No migration has version ${version}.`,
        'Run `dbward migrate status` to see the versions.',
      );
    }
    const adopt = new Set(
      status
        .filter((s) => s.state !== 'applied' && compareVersions(s.version, version) <= 0)
        .map((s) => s.version),
    );
    const result = emptyResult(ctx, 'up', false);
    await ctx.db.transaction(
      async (session) => {
        for (const file of files.filter((f) => adopt.has(f.version))) {
          await store.recordApplied(session, table, {
            ...appliedRow(file, performance.now()),
            statementsApplied: 0,
            statementsTotal: 0,
          });
          result.migrations.push({
            version: file.version,
            name: file.name,
            file: file.path,
            durationMs: 0,
            sql: null,
          });
        }
      },
      { retries: 0 },
    );
    return result;
  });
}

/** Who holds the migration lock now, or null. */
export async function migrationLockHolder(ctx: MigrateContext): Promise<LockHolder | null> {
  return (await storeFor(ctx.db)).lockHolder(ctx.db.connection);
}

async function locked<T>(ctx: MigrateContext, body: (run: LockedRun) => Promise<T>): Promise<T> {
  const store = await storeFor(ctx.db);
  const table = ctx.table ?? defaultTable;
  // Files first: a broken file fails the run before it waits for, or takes, the lock.
  const files = discoverMigrations(ctx.dir);
  await store.ensureStore(ctx.db.connection, table);
  const lock = await store.acquireLock(ctx.db.connection, {
    timeoutMs: ctx.lockTimeoutMs ?? 60_000,
    owner: { pid: process.pid, host: os.hostname(), token: randomBytes(12).toString('hex') },
  });
  try {
    const status = migrationStatus(files, await store.listApplied(ctx.db.connection, table));
    return await body({ store, table, status, files });
  } finally {
    await lock.release();
  }
}

/**
 * Run one migration's section and record the outcome on the same session. Where the engine has
 * transactional DDL and the section allows it, both happen in one transaction: a failure leaves
 * no trace. Otherwise they run on one session, one after the other.
 */
async function runOne(
  ctx: MigrateContext,
  store: MigrationStoreRole,
  file: MigrationFile,
  section: MigrationSection | null,
  record: (session: Parameters<MigrationStoreRole['recordApplied']>[0], startedAt: number) => Promise<void>,
  direction: 'up' | 'down',
): Promise<number> {
  ctx.onProgress?.({ phase: 'start', version: file.version, name: file.name });
  const startedAt = performance.now();
  const inTransaction = (section?.transaction ?? true) && ctx.db.engine.capabilities.supportsTransactionalDdl;
  const work = async (session: Parameters<MigrationStoreRole['recordApplied']>[0]): Promise<void> => {
    if (file.kind === 'script') await runScript(boundTo(ctx.db, session), file, direction);
    else if (section && section.sql !== '') await store.executeScript(session, section.sql);
    await record(session, startedAt);
  };
  try {
    if (inTransaction) await ctx.db.transaction(work, { retries: 0 });
    else await ctx.db.session(work);
  } catch (err) {
    throw new MigrationError(file, section, err, inTransaction);
  }
  const durationMs = Math.round(performance.now() - startedAt);
  ctx.onProgress?.({ phase: 'done', version: file.version, name: file.name, durationMs });
  return durationMs;
}

/** A TypeScript/JavaScript migration: its `up(db)` / `down(db)` get the library handle. */
async function runScript(db: SqlDatabase, file: MigrationFile, direction: 'up' | 'down'): Promise<void> {
  // jiti compiles TypeScript on the fly, so .ts migrations run from the built CLI on Node 20 too.
  const { createJiti } = await import('jiti');
  const module = (await createJiti(import.meta.url).import(pathToFileURL(file.path).href)) as Record<
    string,
    unknown
  >;
  const fn = module[direction];
  if (typeof fn !== 'function') {
    throw new Error(`${file.path} does not export a ${direction}(db) function.`);
  }
  await (fn as (db: SqlDatabase) => Promise<void>)(db);
}

/**
 * The handle a script migration receives: its queries run on the migration's own session, so
 * they are inside the migration's transaction (and roll back with it) where there is one.
 */
function boundTo(db: SqlDatabase, session: Parameters<MigrationStoreRole['recordApplied']>[0]): SqlDatabase {
  return {
    ...db,
    query: (sql, params) => session.query(sql, params),
    transaction: (fn) => fn(session),
    session: (fn) => fn(session),
  };
}

function appliedRow(file: MigrationFile, startedAt: number): AppliedMigration {
  return {
    version: file.version,
    name: file.name,
    checksum: file.checksum,
    appliedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - startedAt),
    appliedBy: appliedBy(),
    dbwardVersion: dbwardVersion(),
    // Until statements are split (next step), a section run as one script counts as one unit.
    statementsApplied: 1,
    statementsTotal: 1,
    status: 'applied',
  };
}

function appliedBy(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return `${user}@${os.hostname()}`;
}

function emptyResult(ctx: MigrateContext, direction: 'up' | 'down', dryRun: boolean): MigrateRunResult {
  return { target: ctx.db.target.name, direction, dryRun, migrations: [] };
}

async function storeFor(db: SqlDatabase): Promise<MigrationStoreRole> {
  const load = engineById(db.engine.id as EngineId).roles.migrationStore;
  if (!load) {
    throw new NotAvailableError(
      `Migrations on ${db.engine.displayName} are not available yet.`,
      'PostgreSQL and SQLite are supported in this release.',
      { engine: db.engine.id, target: db.target.name },
    );
  }
  return load();
}
