/**
 * Running seeds: reference and demo data, in files under `seeds/`. Engine-neutral: the engine's
 * migration tracking store records each seed (in its own table, `dbward_seeds`) with its
 * checksum, and the same per-database lock as migrations means a seed never runs beside one.
 *
 * A run discovers the files, takes the lock, reads the tracking rows under it, plans (refusing
 * the whole run when a non-repeatable seed changed), then runs seed by seed. On SQL engines a
 * seed and its tracking row commit together, so a failing seed leaves no trace.
 */
import { performance } from 'node:perf_hooks';
import type { Database } from '../connect/database-handle.js';
import { dbwardVersion } from '../core/version.js';
import type { AppliedMigration } from '../engines/contract.js';
import { appliedBy, boundToSession, importScript } from '../migrate/script-files.js';
import { newLockOwner, trackingStoreFor, type TrackingStore } from '../migrate/tracking-store.js';
import { discoverSeeds, type SeedFile } from './discover-seeds.js';
import { SeedFailedError, SeedFileError } from './seed-errors.js';
import { planSeeds, type PlannedSeed, type SeedAction } from './seed-plan.js';

export interface SeedOptions {
  /** An open handle (any engine with a migration store: PostgreSQL, MySQL/MariaDB, SQLite, Redis). */
  db: Database;
  /** The seeds directory. */
  dir: string;
  /** Also run `<dir>/<env>/*`, after the common seeds. Null or omitted: only the common seeds. */
  env?: string | null;
  /** Tracking table (Redis: key). Default `dbward_seeds`. */
  table?: string;
  /** How long to wait for the lock (held by a migration or another seed run). Default 60 s. */
  lockTimeoutMs?: number;
  /** Only decide what would run: no lock, no tracking table created, nothing run. */
  dryRun?: boolean;
  /** Called for each seed as the run goes (not in a dry run), for progress output. */
  onProgress?: (event: SeedProgress) => void;
}

export interface SeedProgress {
  /** `start` and `done` for seeds that run; `skip` for unchanged ones. */
  phase: 'start' | 'done' | 'skip';
  id: string;
  action: SeedAction;
  durationMs?: number;
}

export interface SeedRunEntry {
  /** `01_countries.sql`, `dev/02_demo_users.ts`. */
  id: string;
  /** Absolute path of the file. */
  file: string;
  action: SeedAction;
  /** How long it ran; null when skipped or in a dry run. */
  durationMs: number | null;
}

export interface SeedRunResult {
  target: string;
  env: string | null;
  dryRun: boolean;
  seeds: SeedRunEntry[];
}

/** What a TS/JS seed exports as `seed` (or as its default export). */
export type SeedFunction = (db: Database) => unknown;

export const defaultSeedsTable = 'dbward_seeds';

/** Run the seeds in `dir` that never ran, or changed and are repeatable; skip the rest. */
export async function runSeeds(options: SeedOptions): Promise<SeedRunResult> {
  const { db } = options;
  const env = options.env || null;
  const table = options.table ?? defaultSeedsTable;
  const dryRun = !!options.dryRun;
  // Files first: a broken file fails the run before it waits for, or takes, the lock.
  const seeds = discoverSeeds(options.dir, env);
  if (db.kind === 'keyvalue') {
    const sql = seeds.find((s) => s.kind === 'sql');
    if (sql) {
      throw new SeedFileError(sql.path, `${db.engine.displayName} does not run SQL seeds.`, {
        hint: 'Write it as a TypeScript or JavaScript seed exporting `seed(db)`, which sends commands with db.command(…).',
      });
    }
  }
  const result: SeedRunResult = { target: db.target.name, env, dryRun, seeds: [] };
  if (seeds.length === 0) return result;
  const store = await trackingStoreFor(db);
  if (dryRun) {
    for (const { seed, action } of planSeeds(seeds, await store.listApplied(table))) {
      result.seeds.push({ id: seed.id, file: seed.path, action, durationMs: null });
    }
    return result;
  }
  await store.ensureStore(table);
  const lock = await store.acquireLock({
    timeoutMs: options.lockTimeoutMs ?? 60_000,
    owner: newLockOwner(),
  });
  try {
    // Read under the lock: no other run can record a seed between reading and running.
    const plan = planSeeds(seeds, await store.listApplied(table));
    for (const step of plan) {
      const { seed, action } = step;
      if (action === 'skip') {
        options.onProgress?.({ phase: 'skip', id: seed.id, action });
        result.seeds.push({ id: seed.id, file: seed.path, action, durationMs: null });
        continue;
      }
      options.onProgress?.({ phase: 'start', id: seed.id, action });
      const durationMs = await runOne(store, table, step);
      options.onProgress?.({ phase: 'done', id: seed.id, action, durationMs });
      result.seeds.push({ id: seed.id, file: seed.path, action, durationMs });
    }
  } finally {
    await lock.release();
  }
  return result;
}

/** Run one seed and record it; resolves to its duration in ms, or rejects with a SeedFailedError. */
async function runOne(store: TrackingStore, table: string, { seed }: PlannedSeed): Promise<number> {
  // Loaded before any transaction starts, so compiling a TypeScript seed holds no connection.
  const script = seed.kind === 'script' ? await loadSeedFunction(seed) : null;
  const startedAt = performance.now();
  if (store.kind === 'keyvalue') {
    try {
      await script!(store.db);
    } catch (err) {
      throw new SeedFailedError(seed, err, 'no-transaction');
    }
    await store.role.recordApplied(store.db.connection, table, seedRow(seed, startedAt));
  } else {
    const { db, role } = store;
    try {
      // The seed and its tracking row in one transaction — also on MySQL/MariaDB, where seeds'
      // data statements are transactional (a DDL statement in a seed would commit implicitly).
      await db.connection.withTransaction(async (session) => {
        if (script) await script(boundToSession(db, session));
        else await role.executeScript(session, seed.sql ?? '');
        await role.recordApplied(session, table, seedRow(seed, startedAt));
      });
    } catch (err) {
      throw err instanceof SeedFailedError ? err : new SeedFailedError(seed, err, 'rolled-back');
    }
  }
  return Math.round(performance.now() - startedAt);
}

/** A TS/JS seed's `seed(db)` (or default export function), loaded with jiti. */
async function loadSeedFunction(seed: SeedFile): Promise<SeedFunction> {
  let module: Record<string, unknown>;
  try {
    module = await importScript(seed.path);
  } catch (err) {
    throw new SeedFailedError(seed, err, 'not-run');
  }
  const fallback = module.default as Record<string, unknown> | SeedFunction | undefined;
  const fn =
    typeof module.seed === 'function'
      ? module.seed
      : typeof fallback === 'function'
        ? fallback
        : typeof fallback?.seed === 'function'
          ? fallback.seed
          : undefined;
  if (!fn) {
    throw new SeedFileError(seed.path, 'Does not export a seed(db) function.', {
      hint: 'Write `export async function seed(db) { … }` (or `export default async function (db) { … }`).',
    });
  }
  return fn as SeedFunction;
}

/** The tracking row of a seed: the same columns as a migration's, with the seed id as version. */
function seedRow(seed: SeedFile, startedAt: number): AppliedMigration {
  return {
    version: seed.id,
    name: seed.name,
    checksum: seed.checksum,
    appliedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - startedAt),
    appliedBy: appliedBy(),
    dbwardVersion: dbwardVersion(),
    statementsApplied: 1,
    statementsTotal: 1,
    status: 'applied',
  };
}
