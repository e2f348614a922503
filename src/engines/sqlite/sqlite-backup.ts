/**
 * The SQLite backup role, built on SQLite's online backup API (through better-sqlite3) rather
 * than on copying the file: a copied file can catch a page half-written, or miss what is still
 * in the -wal file.
 *
 * - dump: a separate read-only handle on the target holds one read transaction while the backup
 *   API copies every page into a file in ctx.tempDir, so the copy is one snapshot even while the
 *   application writes (in WAL mode writers carry on; in rollback-journal mode they wait for the
 *   copy, as they would for any long reader). The copy is checked (integrity_check, exact row
 *   counts) before a byte of it is streamed out.
 * - restore: the stream lands in a temporary file, is checked, and then the backup API copies it
 *   *onto* the target path, page by page under SQLite's own locks — so other processes that
 *   have the target open see the new contents, instead of keeping an unlinked file after a rename.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type BetterSqlite3 from 'better-sqlite3';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import type { Target } from '../../core/target.js';
import {
  backupRoleErrors,
  type BackupRole,
  type BackupTableCount,
  type CheckOutcome,
  type LoadContext,
} from '../backup-role.js';
import { endWithError, runningDump, sendDumpFile } from '../dump-stream.js';
import { loadSqliteDriver } from './sqlite-driver.js';

// Loaded once, when the role module is first imported (it is imported lazily).
const { Database: Driver } = await loadSqliteDriver();

const sqliteHeader = Buffer.from('SQLite format 3\0', 'latin1');
// The most integrity/foreign-key problems listed; the rest are counted.
const maxListedProblems = 20;
// Pages copied per step of the backup API (better-sqlite3's default): the event loop runs between steps.
const pagesPerStep = 100;
// busy_timeout for our own handles: long enough to wait out a writer's commit, never minutes.
const maxBusyTimeoutMs = 5_000;

type ErrorCode = (typeof backupRoleErrors)[keyof typeof backupRoleErrors];

export const sqliteBackupRole: BackupRole = {
  async plan(conn) {
    // The backup API is part of the SQLite library the driver bundles: its version is the tool's.
    const version = await conn.serverVersion();
    return { serverVersion: version, tool: { name: 'sqlite-backup-api', version }, extension: 'sqlite' };
  },

  async dump(_conn, ctx) {
    const source = databaseFile(ctx.spec, ctx.target, backupRoleErrors.dump);
    const copy = tempFile(ctx.tempDir, 'dump');
    const stream = new PassThrough();
    let aborted = false;

    const done = (async () => {
      try {
        await onlineCopy(source, copy, busyTimeout(ctx.target), () => aborted);
        const outcome = await examineFile(copy, { foreignKeys: false });
        if (outcome.problems.length > 0) {
          throw failure(
            backupRoleErrors.dump,
            ctx.target,
            `The backup copy of ${source} failed SQLite's integrity check: ${summarize(outcome.problems)}`,
            'The database file itself is damaged; run `PRAGMA integrity_check` on it and repair it (e.g. `sqlite3 app.db ".recover"`) before backing it up.',
          );
        }
        await sendDumpFile(copy, stream);
        return { tables: outcome.tables };
      } catch (err) {
        const error = asRoleError(err, backupRoleErrors.dump, ctx.target, `Backing up ${source} failed`);
        endWithError(stream, error);
        throw error;
      } finally {
        await removeDatabaseFiles(copy);
      }
    })();
    return runningDump(stream, done, () => {
      aborted = true;
      endWithError(stream, failure(backupRoleErrors.dump, ctx.target, 'The SQLite backup was aborted.'));
    });
  },

  async loadCopy(source, _conn, ctx) {
    const file = await receive(source, ctx, 'copy');
    return {
      check: () => examineFile(file, { foreignKeys: true }),
      dispose: () => removeDatabaseFiles(file),
    };
  },

  async existingContents(conn) {
    if (conn.kind !== 'sql') return [];
    const { rows } = await conn.query<{ type: string; name: string }>(
      `SELECT type, name FROM sqlite_schema
        WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        ORDER BY name`,
    );
    return rows.map((r) => `${r.type} ${r.name}`);
  },

  async restore(source, _conn, ctx) {
    if (ctx.tables !== undefined) {
      throw failure(
        backupRoleErrors.restore,
        ctx.target,
        '--tables is not supported for SQLite: a SQLite backup is restored as a whole file.',
        'Restore the whole backup into another file (a different target URL), then copy the tables you need with ATTACH and INSERT … SELECT.',
      );
    }
    const target = databaseFile(ctx.spec, ctx.target, backupRoleErrors.restore);
    if (ctx.spec.params.mode === 'ro') {
      throw failure(
        backupRoleErrors.restore,
        ctx.target,
        `The target ${target} is opened read-only (?mode=ro), so it cannot be restored into.`,
        'Remove ?mode=ro from the target URL to restore into it.',
      );
    }
    const temp = await receive(source, ctx, 'restore');
    try {
      const outcome = await examineFile(temp, { foreignKeys: false });
      if (outcome.problems.length > 0) {
        throw failure(
          backupRoleErrors.restore,
          ctx.target,
          `The backup is not a sound SQLite database: ${summarize(outcome.problems)}`,
          'Nothing was changed in the target. Run `dbward backup verify` on this backup, and restore an older one if it fails.',
        );
      }
      await copyOnto(temp, target, busyTimeout(ctx.target));
      ctx.logger.debug('sqlite restore: copied the backup onto the target', { file: target });
    } catch (err) {
      throw asRoleError(err, backupRoleErrors.restore, ctx.target, `Restoring into ${target} failed`);
    } finally {
      await removeDatabaseFiles(temp);
    }
  },
};

/** The target's file; an in-memory database has none to back up or restore into. */
function databaseFile(spec: ConnectionSpec, target: Target, code: ErrorCode): string {
  if (spec.file === undefined || spec.file === ':memory:' || spec.params.mode === 'memory') {
    throw failure(
      code,
      target,
      'An in-memory SQLite database has no file to back up or restore into.',
      'Point the target at a database file (sqlite:path/to/app.db).',
    );
  }
  return spec.file;
}

/**
 * Copy `source` to `dest` with the backup API inside one read transaction on a handle of our
 * own. Without the transaction every write by another connection makes the backup start over,
 * which under a steady write load may never finish; with it, the copy is the snapshot the
 * transaction began with.
 */
async function onlineCopy(
  source: string,
  dest: string,
  timeout: number,
  isAborted: () => boolean,
): Promise<void> {
  const db = new Driver(source, { readonly: true, fileMustExist: true, timeout });
  try {
    db.exec('BEGIN');
    // BEGIN is deferred: the first read takes the snapshot.
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    await db.backup(dest, {
      progress: () => {
        // Throwing from the progress callback is how better-sqlite3 stops a backup.
        if (isAborted()) throw new Error('aborted');
        return pagesPerStep;
      },
    });
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

/** Copy the (checked) temporary database onto the target path through the backup API. */
async function copyOnto(temp: string, target: string, timeout: number): Promise<void> {
  const db = new Driver(temp, { fileMustExist: true, timeout });
  try {
    await db.backup(target);
  } finally {
    db.close();
  }
}

/**
 * Write a raw dump stream to a new file in ctx.tempDir, counting bytes for progress, and make
 * sure it starts with SQLite's header. Rejects with E_BACKUP_RESTORE (having removed the file).
 */
async function receive(source: Readable, ctx: LoadContext, label: string): Promise<string> {
  const file = tempFile(ctx.tempDir, label);
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      ctx.onProgress?.(bytes);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, counter, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    const problem = await headerProblem(file);
    if (problem) {
      throw failure(
        backupRoleErrors.restore,
        ctx.target,
        `The backup is not a SQLite database: ${problem}.`,
        'Check that this backup was made from a SQLite target; run `dbward backup verify` on it.',
      );
    }
    return file;
  } catch (err) {
    await removeDatabaseFiles(file);
    throw asRoleError(err, backupRoleErrors.restore, ctx.target, 'Reading the SQLite backup failed');
  }
}

/** Why `file` is not a SQLite database file, or undefined when its header says it is. */
async function headerProblem(file: string): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(
      Buffer.alloc(sqliteHeader.length),
      0,
      sqliteHeader.length,
      0,
    );
    if (bytesRead === 0) return 'it is empty';
    if (bytesRead < sqliteHeader.length || !buffer.equals(sqliteHeader)) {
      return 'it does not start with the "SQLite format 3" header';
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

/**
 * integrity_check, exact row counts per table and (for verification) foreign_key_check on a
 * database file of ours. Corruption is reported in `problems`, never thrown, so a damaged copy
 * produces a verdict rather than a crash.
 */
async function examineFile(file: string, options: { foreignKeys: boolean }): Promise<CheckOutcome> {
  const problem = await headerProblem(file);
  if (problem) return { tables: [], problems: [`not a SQLite database: ${problem}`], checks: [] };
  const problems: string[] = [];
  const checks: string[] = [];
  let tables: BackupTableCount[] = [];
  let db: BetterSqlite3.Database;
  try {
    db = new Driver(file, { fileMustExist: true });
  } catch (err) {
    return { tables, problems: [`cannot open the copy: ${message(err)}`], checks };
  }
  try {
    const integrity = integrityProblems(db);
    problems.push(...integrity);
    checks.push(
      `PRAGMA integrity_check: ${integrity.length === 0 ? 'ok' : `${integrity.length} problem(s)`}`,
    );
    if (integrity.length === 0) {
      tables = countRows(db);
      if (options.foreignKeys) {
        const violations = foreignKeyProblems(db);
        problems.push(...violations);
        checks.push(
          `PRAGMA foreign_key_check: ${violations.length === 0 ? 'ok' : `${violations.length} violation(s)`}`,
        );
      }
    }
  } catch (err) {
    problems.push(`reading the copy failed: ${message(err)}`);
  } finally {
    db.close();
  }
  return { tables, problems, checks };
}

function integrityProblems(db: BetterSqlite3.Database): string[] {
  try {
    const rows = db.prepare(`PRAGMA integrity_check(${maxListedProblems})`).pluck().all() as string[];
    return rows.length === 1 && rows[0] === 'ok' ? [] : rows.map(String);
  } catch (err) {
    // A badly damaged file (e.g. a broken schema page) fails the pragma itself.
    return [message(err)];
  }
}

function countRows(db: BetterSqlite3.Database): BackupTableCount[] {
  // Ordinary tables only: virtual tables keep their rows in shadow tables (counted as tables
  // would need the module loaded), and sqlite_% tables are SQLite's own bookkeeping.
  const names = db
    .prepare(
      `SELECT name FROM pragma_table_list
        WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        ORDER BY name`,
    )
    .pluck()
    .all() as string[];
  return names.map((name) => ({
    name,
    rows: Number(
      db
        .prepare(`SELECT count(*) FROM "${name.replace(/"/g, '""')}"`)
        .pluck()
        .get(),
    ),
  }));
}

function foreignKeyProblems(db: BetterSqlite3.Database): string[] {
  const listed: string[] = [];
  let total = 0;
  // iterate(): a database full of violations is counted without holding every row.
  for (const row of db.prepare('PRAGMA foreign_key_check').iterate() as Iterable<{
    table: string;
    rowid: number | null;
    parent: string;
  }>) {
    total++;
    if (listed.length < maxListedProblems) {
      const which = row.rowid === null ? 'a row' : `row ${row.rowid}`;
      listed.push(`foreign key: ${row.table} ${which} refers to a missing row in ${row.parent}`);
    }
  }
  if (total > listed.length) listed.push(`… and ${total - listed.length} more foreign-key violations`);
  return listed;
}

function busyTimeout(target: Target): number {
  return Math.min(Math.max(target.options.connectTimeoutMs, 0), maxBusyTimeoutMs);
}

function tempFile(dir: string, label: string): string {
  return path.join(dir, `sqlite-${label}-${randomBytes(6).toString('hex')}.db`);
}

async function removeDatabaseFiles(file: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(`${file}${suffix}`, { force: true });
}

function summarize(problems: string[]): string {
  const shown = problems.slice(0, 3).join('; ');
  return problems.length > 3 ? `${shown}; … (${problems.length} in all)` : shown;
}

function failure(code: ErrorCode, target: Target, text: string, hint?: string): DbwardError {
  return new DbwardError(code, text, {
    ...(hint ? { hint } : {}),
    context: {
      engine: 'sqlite',
      target: target.name,
      operation: code === 'E_BACKUP_DUMP' ? 'backup' : 'restore',
    },
  });
}

/** Keep our own errors; wrap a driver or file-system error under `code` with what it said. */
function asRoleError(err: unknown, code: ErrorCode, target: Target, what: string): DbwardError {
  if (err instanceof DbwardError) return err;
  const text = message(err);
  const hint = /directory does not exist/i.test(text)
    ? "Create the target file's directory first."
    : /^SQLITE_(BUSY|LOCKED)/.test(driverCode(err)) || /database is locked/i.test(text)
      ? 'Another process holds a lock on the database for too long; retry when it is idle.'
      : 'Check the file and its directory are readable and writable, and that there is free disk space.';
  return new DbwardError(code, `${what}: ${text}`, {
    hint,
    cause: err,
    context: {
      engine: 'sqlite',
      target: target.name,
      operation: code === 'E_BACKUP_DUMP' ? 'backup' : 'restore',
    },
  });
}

function driverCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
