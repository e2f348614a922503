/**
 * SQLite driver errors to dbward errors. better-sqlite3 throws `SqliteError` with `code` set to
 * the extended result code name (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`, …); we read `code`
 * structurally so this module never loads the driver.
 */
import { existsSync, statSync } from 'node:fs';
import { diagnoseConnectionFailure } from '../../core/connection-diagnosis.js';
import {
  DbwardError,
  QueryError,
  type ConnectionError,
  type ConnectionFailureKind,
} from '../../core/errors.js';

/** The SQLite result code name of a driver error (`SQLITE_BUSY`), or undefined. */
export function sqliteCode(err: unknown): string | undefined {
  if (err instanceof QueryError) return err.sqlState;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** True for a lock conflict with another connection (SQLITE_BUSY and its extended codes). */
export function isSqliteBusy(err: unknown): boolean {
  return sqliteCode(err)?.startsWith('SQLITE_BUSY') ?? false;
}

/** Diagnose a failure to open or verify a SQLite file as a ConnectionError. */
export function diagnoseSqliteOpenError(
  err: unknown,
  facts: { file: string; target: string },
): ConnectionError {
  return diagnoseConnectionFailure({
    kind: openFailureKind(err, facts.file),
    engine: 'sqlite',
    target: facts.target,
    file: facts.file,
    serverMessage: err instanceof Error ? err.message : String(err),
    cause: err,
  });
}

function openFailureKind(err: unknown, file: string): ConnectionFailureKind {
  const code = sqliteCode(err) ?? '';
  // better-sqlite3 checks the directory itself and throws a TypeError before SQLite sees the path.
  if (err instanceof TypeError && /directory does not exist/.test(err.message)) return 'file-missing';
  if (code.startsWith('SQLITE_CANTOPEN')) return cantOpenKind(file);
  if (code.startsWith('SQLITE_NOTADB')) return 'not-a-database';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'file-locked';
  if (code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) return 'permission-denied';
  return 'unknown';
}

// SQLITE_CANTOPEN says only "unable to open database file"; the file system says why.
function cantOpenKind(file: string): ConnectionFailureKind {
  if (!existsSync(file)) return 'file-missing';
  if (statSync(file).isDirectory()) return 'not-a-database';
  // The file is there but cannot be opened: it is unreadable, or it is readable but its
  // directory is not writable and SQLite needs to create a journal next to it.
  return 'permission-denied';
}

/** Map a driver error from a statement to a QueryError carrying the SQLite code as sqlState. */
export function toSqliteQueryError(err: unknown, sql: string): Error {
  if (err instanceof DbwardError) return err;
  const code = sqliteCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return new QueryError(`SQLite: ${message}`, {
    sqlState: code,
    detail: `in: ${sql.length > 200 ? `${sql.slice(0, 200)}…` : sql}`,
    hint: code?.startsWith('SQLITE_BUSY')
      ? 'Another connection holds the write lock; retry, or raise connectTimeout (it sets busy_timeout).'
      : undefined,
    cause: err,
    context: { engine: 'sqlite', operation: 'query' },
  });
}
