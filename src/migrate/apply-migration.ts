/**
 * Running one migration in one direction, and recording it.
 *
 * - Where the engine has transactional DDL and the section allows a transaction, the section and
 *   its tracking row commit together: a failure leaves no trace.
 * - Otherwise (MySQL/MariaDB, or `transaction:false`) the section runs statement by statement
 *   on one session, and after each statement the tracking row records how many have run
 *   (`partial` until the last). A failure leaves an exact record; the next `up` resumes at the
 *   failed statement once the file is fixed.
 */
import { performance } from 'node:perf_hooks';
import type { KeyValueDatabase, SqlDatabase } from '../connect/database-handle.js';
import { dbwardVersion } from '../core/version.js';
import type {
  AppliedMigration,
  KeyValueMigrationStoreRole,
  MigrationStoreRole,
  SqlSession,
} from '../engines/contract.js';
import { MigrationError } from './migration-error.js';
import { appliedBy, boundToSession, importScript } from './script-files.js';
import type { MigrationFile, MigrationSection } from './migration-file.js';

export interface ApplyMigration {
  db: SqlDatabase;
  /**
   * The session the whole run uses (prepared once by the store): one connection for every
   * migration of a run saves a pool checkout, a session reset and a setup query per migration.
   */
  session: SqlSession;
  store: MigrationStoreRole;
  table: string;
  file: MigrationFile;
  direction: 'up' | 'down';
  /** Statements already applied by an earlier, interrupted run (status `partial`). */
  resumeAt: number;
}

/** Run the migration; resolves to its duration in ms, or rejects with a MigrationError. */
export async function applyMigration(job: ApplyMigration): Promise<number> {
  const { db, file, direction } = job;
  const section = direction === 'up' ? file.up : file.down;
  const startedAt = performance.now();
  // A partial migration resumes where it stopped, statement by statement, even if the fixed file
  // no longer needs that (its first statements have run and must not run again).
  const inTransaction =
    job.resumeAt === 0 &&
    (section?.transaction ?? true) &&
    db.engine.capabilities.supportsTransactionalDdl &&
    !(await nonTransactional(job.store, section));
  if (inTransaction || file.kind === 'script' || !section) {
    const { session } = job;
    try {
      if (inTransaction) await session.query('BEGIN');
      if (file.kind === 'script') await runScript(boundToSession(db, session), file, direction);
      else if (section && section.sql !== '') await job.store.executeScript(session, section.sql);
      await finish(job, session, startedAt, 1, 1);
      if (inTransaction) await session.query('COMMIT');
    } catch (err) {
      // BEGIN/COMMIT/ROLLBACK are the same words on every SQL engine dbward runs migrations on.
      if (inTransaction) await session.query('ROLLBACK').catch(() => undefined);
      throw err instanceof MigrationError ? err : new MigrationError(file, section, err, inTransaction);
    }
  } else {
    await runStatementByStatement(job, section, startedAt);
  }
  return Math.round(performance.now() - startedAt);
}

async function runStatementByStatement(
  job: ApplyMigration,
  section: MigrationSection,
  startedAt: number,
): Promise<void> {
  const { store, table, file, direction, session } = job;
  const statements = store.splitStatements(section.sql);
  const total = statements.length;
  {
    for (let i = job.resumeAt; i < total; i++) {
      const statement = statements[i]!;
      try {
        await session.query(statement.text);
      } catch (err) {
        const place = { ...section, sql: statement.text, firstLine: section.firstLine + statement.line };
        throw new MigrationError(file, place, err, false, { index: i, total, direction });
      }
      if (direction === 'up' && i + 1 < total) {
        await store.recordApplied(session, table, appliedRow(file, startedAt, 'partial', i + 1, total));
      }
    }
    await finish(job, session, startedAt, total, total);
  }
}

/**
 * Whether the engine's parser finds a statement in the section that refuses a transaction block
 * (CREATE INDEX CONCURRENTLY, ALTER TYPE … ADD VALUE, VACUUM): then the section runs statement by
 * statement outside one, exactly as if it were marked `transaction:false`.
 */
async function nonTransactional(
  store: MigrationStoreRole,
  section: MigrationSection | null,
): Promise<boolean> {
  if (!section || section.sql === '' || !store.nonTransactionalStatement) return false;
  return (await store.nonTransactionalStatement(section.sql)) !== null;
}

/** Record the finished migration (up) or forget it (down), on the session that ran it. */
function finish(
  job: ApplyMigration,
  session: SqlSession,
  startedAt: number,
  applied: number,
  total: number,
): Promise<void> {
  return job.direction === 'up'
    ? job.store.recordApplied(session, job.table, appliedRow(job.file, startedAt, 'applied', applied, total))
    : job.store.removeApplied(session, job.table, job.file.version);
}

export interface ApplyKeyValueMigration {
  db: KeyValueDatabase;
  store: KeyValueMigrationStoreRole;
  table: string;
  file: MigrationFile;
  direction: 'up' | 'down';
}

/**
 * A script migration on a key-value store (Redis). There is no transaction to share with the
 * tracking row: the row is written after the script succeeded, so a script that fails part-way
 * runs again from its start next time — Redis migrations must be written to be re-runnable
 * (SET rather than APPEND, HSETNX, checks before renames).
 */
export async function applyKeyValueMigration(job: ApplyKeyValueMigration): Promise<number> {
  const { db, file, direction, store, table } = job;
  const startedAt = performance.now();
  try {
    await runScript(db, file, direction);
  } catch (err) {
    throw new MigrationError(file, null, err, false);
  }
  if (direction === 'up') {
    await store.recordApplied(db.connection, table, appliedRow(file, startedAt, 'applied', 1, 1));
  } else {
    await store.removeApplied(db.connection, table, file.version);
  }
  return Math.round(performance.now() - startedAt);
}

/** A TypeScript/JavaScript migration: its `up(db)` / `down(db)` get the library handle. */
async function runScript(
  db: SqlDatabase | KeyValueDatabase,
  file: MigrationFile,
  direction: 'up' | 'down',
): Promise<void> {
  const fn = (await importScript(file.path))[direction];
  if (typeof fn !== 'function') throw new Error(`${file.path} does not export a ${direction}(db) function.`);
  await (fn as (db: SqlDatabase | KeyValueDatabase) => Promise<void>)(db);
}

/** The tracking row for a migration. */
export function appliedRow(
  file: MigrationFile,
  startedAt: number,
  status: AppliedMigration['status'],
  statementsApplied: number,
  statementsTotal: number,
): AppliedMigration {
  return {
    version: file.version,
    name: file.name,
    checksum: file.checksum,
    appliedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - startedAt),
    appliedBy: appliedBy(),
    dbwardVersion: dbwardVersion(),
    statementsApplied,
    statementsTotal,
    status,
  };
}
