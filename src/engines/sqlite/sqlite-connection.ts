/**
 * SQLite connection role: open the file with better-sqlite3 (the only module that loads the
 * driver), verify it really is a SQLite database, apply the pragmas dbward relies on, and hand
 * back the SqlConnection contract. Opening never creates a file by accident: a typo in a path
 * must read "file does not exist", not produce an empty database that every check calls healthy.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { ConnectContext, ConnectionRole, SqlConnection } from '../contract.js';
import { diagnoseSqliteOpenError, sqliteCode } from './sqlite-errors.js';
import { loadSqliteDriver } from './sqlite-driver.js';
import { SqliteSqlConnection } from './sqlite-sql-connection.js';

// Loaded once, when the role module is first imported (it is imported lazily).
const { Database: Driver } = await loadSqliteDriver();

// Above this, a busy_timeout stops protecting anything and starts hiding a stuck writer.
const maxBusyTimeoutMs = 5_000;

/** Opens SQLite files: they must exist, unless the URL says `?mode=rwc`; `?mode=ro` opens read-only. */
export const sqliteConnectionRole: ConnectionRole = {
  connect: (ctx) => Promise.resolve(openSqlite(ctx)),
};

function openSqlite({ target, spec, logger }: ConnectContext): SqlConnection {
  const mode = spec.params.mode;
  const memory = spec.file === undefined || spec.file === ':memory:' || mode === 'memory';
  const file = memory ? ':memory:' : (spec.file as string);
  const readonly = mode === 'ro';
  const create = mode === 'rwc';
  const facts = { file, target: target.name };
  // An empty file is a database nobody has chosen a journal mode for yet.
  const isNew = create && !memory && (!existsSync(file) || statSync(file).size === 0);

  let db: Database.Database;
  try {
    db = new Driver(file, {
      readonly,
      fileMustExist: !memory && !create,
      timeout: Math.min(Math.max(target.options.connectTimeoutMs, 0), maxBusyTimeoutMs),
    });
  } catch (err) {
    throw diagnoseSqliteOpenError(err, facts);
  }

  try {
    // Opening only reads the header lazily: a text file or a locked file fails at the first read.
    db.pragma('schema_version');
    db.pragma('foreign_keys = ON');
    // The journal mode is stored in the file and is its owner's choice: dbward sets WAL only on
    // databases it creates itself, and never changes a user's file just by connecting to it.
    if (isNew && isWritable(file)) enableWal(db, logger);
  } catch (err) {
    db.close();
    throw diagnoseSqliteOpenError(err, facts);
  }
  logger.debug('sqlite connected', { file, readonly });
  return new SqliteSqlConnection(db, { logger });
}

/**
 * WAL lets readers (dbward's checks) run while the application writes. It needs the file and
 * its directory writable (it creates -wal and -shm files there). A refusal other than a lock
 * conflict (e.g. a file system without shared memory) leaves the journal mode as it was.
 */
function enableWal(db: Database.Database, logger: ConnectContext['logger']): void {
  try {
    db.pragma('journal_mode = WAL');
  } catch (err) {
    const code = sqliteCode(err) ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) throw err;
    logger.debug('sqlite: could not switch to WAL; keeping the current journal mode', { error: String(err) });
  }
}

function isWritable(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    accessSync(path.dirname(file), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
