/**
 * Applying and rolling back migrations, engine-neutral: the engine's migration store records
 * rows and provides the lock; capability flags decide whether a migration runs in a transaction.
 * Every run takes the lock first, reads the tracking table under it, plans, and only then runs.
 */
import { performance } from 'node:perf_hooks';
import type { Database } from '../connect/database-handle.js';
import type { SqlSession } from '../engines/contract.js';
import { engineById } from '../engines/registry.js';
import type { EngineId } from '../engines/contract.js';
import { serializeError } from '../connect/per-target.js';
import type { Target } from '../core/target.js';
import { discoverMigrations } from './discover-migrations.js';
import { writeSchemaFile } from './schema-file.js';
import { appliedRow, applyKeyValueMigration, applyMigration } from './apply-migration.js';
import { MigrationFileError } from './migration-errors.js';
import { newLockOwner, trackingStoreFor, type TrackingStore } from './tracking-store.js';
import { compareVersions, type MigrationFile } from './migration-file.js';
import { MigrationPlanError, planDown, planUp, type DownOptions, type UpOptions } from './migration-plan.js';
import { migrationStatus, type MigrationStatusEntry } from './migration-status.js';

export interface MigrateContext {
  /** A SQL database, or a key-value store (Redis: script migrations only). */
  db: Database;
  /** The migrations directory. */
  dir: string;
  /** Tracking table. Default `dbward_migrations`. */
  table?: string;
  /** How long to wait for another run's lock. Default 60 s. */
  lockTimeoutMs?: number;
  /**
   * After a run that changed something, write the schema here (e.g. `schema.sql`), using the
   * engine's dump tool. Needs `target` (for the tool's credentials). Omit to skip.
   */
  schemaFile?: string;
  /** The target `db` was opened from; required with `schemaFile`. */
  target?: Target;
  /** Called before and after each migration, for progress output. */
  onProgress?: (event: MigrateProgress) => void;
}

export interface MigrateProgress {
  phase: 'start' | 'done';
  direction: 'up' | 'down';
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
  /** The schema file written after the run, if any. */
  schemaFile?: string;
  /** Why the schema file could not be written (the migrations themselves succeeded). */
  schemaDumpError?: { code: string; message: string; hint?: string };
}

const defaultTable = 'dbward_migrations';

/** Where every migration stands (no lock needed: it only reads). */
export async function readMigrationStatus(ctx: MigrateContext): Promise<MigrationStatusEntry[]> {
  const store = await trackingStoreFor(ctx.db);
  const files = discoverMigrations(ctx.dir);
  return migrationStatus(files, await store.listApplied(ctx.table ?? defaultTable));
}

/** Apply pending migrations (all, `--to`, or `--step`); with dryRun, only say what would run. */
export function migrateUp(
  ctx: MigrateContext,
  options: UpOptions & { dryRun?: boolean } = {},
): Promise<MigrateRunResult> {
  return locked(ctx, async (run) =>
    dumpAfter(ctx, await execute(ctx, run, 'up', planUp(run.status, run.files, options), !!options.dryRun)),
  );
}

/** Roll back the newest migration (or `--step N`, or down `--to V`); with dryRun, only say what would run. */
export function migrateDown(
  ctx: MigrateContext,
  options: DownOptions & { dryRun?: boolean } = {},
): Promise<MigrateRunResult> {
  return locked(ctx, async (run) =>
    dumpAfter(
      ctx,
      await execute(ctx, run, 'down', planDown(run.status, run.files, options), !!options.dryRun),
    ),
  );
}

/** Roll back the newest applied migration and apply it again, under one lock. */
export function migrateRedo(ctx: MigrateContext): Promise<MigrateRunResult[]> {
  return locked(ctx, async (run) => {
    const down = await execute(ctx, run, 'down', planDown(run.status, run.files, { step: 1 }), false);
    const version = down.migrations[0]?.version;
    if (version === undefined) return [down];
    const status = migrationStatus(run.files, await run.store.listApplied(run.table));
    return [
      down,
      await dumpAfter(ctx, await execute(ctx, run, 'up', planUp(status, run.files, { to: version }), false)),
    ];
  });
}

/**
 * Write the schema file after a run that changed the database (still under the lock, so the
 * dump matches the recorded state). A failed dump is reported in the result, not thrown: the
 * migrations did apply, and the user needs to hear both.
 */
async function dumpAfter(ctx: MigrateContext, result: MigrateRunResult): Promise<MigrateRunResult> {
  if (!ctx.schemaFile || result.dryRun || result.migrations.length === 0) return result;
  // Engines without a schema (Redis) have nothing to dump: not an error worth a warning.
  if (ctx.db.kind !== 'sql' || !engineById(ctx.db.engine.id as EngineId).roles.schemaDump) return result;
  if (!ctx.target) throw new Error('migrate: schemaFile needs the target the database was opened from');
  try {
    result.schemaFile = await writeSchemaFile(ctx.db, ctx.target, ctx.schemaFile);
  } catch (err) {
    result.schemaDumpError = serializeError(err);
  }
  return result;
}

/** What a locked run works with: read under the lock, so no other run can change it meanwhile. */
interface LockedRun {
  store: TrackingStore;
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
  const record = (file: MigrationFile, durationMs: number | null): void => {
    const section = direction === 'up' ? file.up : file.down;
    result.migrations.push({
      version: file.version,
      name: file.name,
      file: file.path,
      durationMs,
      sql: dryRun ? (section?.sql ?? null) : null,
    });
  };
  if (dryRun || plan.length === 0) {
    for (const file of plan) record(file, null);
    return result;
  }
  const resumeAt = (file: MigrationFile): number =>
    direction === 'up'
      ? (run.status.find((s) => s.version === file.version && s.state === 'partial')?.statementsApplied ?? 0)
      : 0;
  const runFile = async (apply: () => Promise<number>, file: MigrationFile): Promise<void> => {
    ctx.onProgress?.({ phase: 'start', direction, version: file.version, name: file.name });
    const durationMs = await apply();
    ctx.onProgress?.({ phase: 'done', direction, version: file.version, name: file.name, durationMs });
    record(file, durationMs);
  };
  const { store } = run;
  if (store.kind === 'keyvalue') {
    for (const file of plan) {
      await runFile(
        () => applyKeyValueMigration({ db: store.db, store: store.role, table: run.table, file, direction }),
        file,
      );
    }
    return result;
  }
  const onSession = (session: SqlSession, file: MigrationFile): Promise<void> =>
    runFile(
      () =>
        applyMigration({
          db: store.db,
          session,
          store: store.role,
          table: run.table,
          file,
          direction,
          resumeAt: resumeAt(file),
        }),
      file,
    );
  // The connection's own sessions, not the handle's: a long run holding one is expected, not a
  // leak to warn about.
  const conn = store.db.connection;
  if (store.db.engine.capabilities.hasAdvisoryLocks) {
    // The lock lives on its own server session, so the whole run can share one connection:
    // one checkout, one setup and one reset per run instead of per migration.
    await conn.withSession(async (session) => {
      await store.role.prepareSession?.(session);
      for (const file of plan) await onSession(session, file);
    });
  } else {
    // Without advisory locks (SQLite) the lock's heartbeat needs the same single connection:
    // give it a turn between migrations.
    for (const file of plan) {
      await conn.withSession(async (session) => {
        await store.role.prepareSession?.(session);
        await onSession(session, file);
      });
    }
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
    const rows = files
      .filter((f) => adopt.has(f.version))
      .map((file) => ({
        file,
        row: {
          ...appliedRow(file, performance.now(), 'applied', 0, 0),
          statementsApplied: 0,
          statementsTotal: 0,
        },
      }));
    if (store.kind === 'sql') {
      await store.db.transaction(
        async (session) => {
          for (const { row } of rows) await store.role.recordApplied(session, table, row);
        },
        { retries: 0 },
      );
    } else {
      for (const { row } of rows) await store.role.recordApplied(store.db.connection, table, row);
    }
    for (const { file } of rows) {
      result.migrations.push({
        version: file.version,
        name: file.name,
        file: file.path,
        durationMs: 0,
        sql: null,
      });
    }
    return result;
  });
}

async function locked<T>(ctx: MigrateContext, body: (run: LockedRun) => Promise<T>): Promise<T> {
  const store = await trackingStoreFor(ctx.db);
  const table = ctx.table ?? defaultTable;
  // Files first: a broken file fails the run before it waits for, or takes, the lock.
  const files = discoverMigrations(ctx.dir);
  if (store.kind === 'keyvalue') refuseSqlFiles(files, ctx.db.engine.displayName);
  await store.ensureStore(table);
  const lock = await store.acquireLock({
    timeoutMs: ctx.lockTimeoutMs ?? 60_000,
    owner: newLockOwner(),
  });
  try {
    const status = migrationStatus(files, await store.listApplied(table));
    return await body({ store, table, status, files });
  } finally {
    await lock.release();
  }
}

/** A key-value store has no SQL to run: its migrations are scripts that get the handle. */
function refuseSqlFiles(files: readonly MigrationFile[], engine: string): void {
  const sql = files.find((f) => f.kind === 'sql');
  if (sql) {
    throw new MigrationFileError(sql.path, `${engine} migrations are scripts, not SQL.`, {
      hint: 'Write it as a .ts or .js file exporting up(db) / down(db), where db.command(…) sends Redis commands (`dbward migrate new <name> --ts`).',
    });
  }
}

function emptyResult(ctx: MigrateContext, direction: 'up' | 'down', dryRun: boolean): MigrateRunResult {
  return { target: ctx.db.target.name, direction, dryRun, migrations: [] };
}
