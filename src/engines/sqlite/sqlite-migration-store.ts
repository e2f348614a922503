/**
 * SQLite migration store role: the tracking table that records applied migrations, and the
 * migration lock (a row taken under BEGIN IMMEDIATE, see sqlite-migration-lock.ts).
 */
import {
  fromTrackingRow,
  trackingColumns,
  trackingValues,
  type TrackingRow,
} from '../migration-tracking-row.js';
import { splitSqlStatements } from '../split-statements.js';
import { QueryError } from '../../core/errors.js';
import { compareVersions } from '../../migrate/migration-file.js';
import type { MigrationStoreRole, SqlConnection } from '../contract.js';
import {
  acquireSqliteLock,
  breakSqliteLock,
  ensureLockTable,
  sqliteLockHolder,
} from './sqlite-migration-lock.js';

const columns = trackingColumns.join(', ');

/** Records migrations in a table of the database itself; the lock is a row in `dbward_migration_lock`. */
export const sqliteMigrationStoreRole: MigrationStoreRole = {
  async ensureStore(conn, table) {
    // IF NOT EXISTS makes a race between two processes harmless: the loser's CREATE is a no-op.
    await conn.query(`CREATE TABLE IF NOT EXISTS ${conn.quoteIdent(table)} (
      version TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      checksum TEXT NOT NULL,
      applied_at TEXT NOT NULL,
      duration_ms INTEGER NOT NULL,
      applied_by TEXT NOT NULL,
      dbward_version TEXT NOT NULL,
      statements_applied INTEGER NOT NULL,
      statements_total INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('applied', 'partial'))
    )`);
    await ensureLockTable(conn);
  },

  async listApplied(conn, table) {
    // Reading must not create anything: `migrate status` on a fresh database changes nothing.
    if (!(await tableExists(conn, table))) return [];
    const { rows } = await conn.query<TrackingRow>(`SELECT ${columns} FROM ${conn.quoteIdent(table)}`);
    // Versions are digit strings of varying length, so SQL's text order would put 10 before 9.
    return rows
      .map((row) => fromTrackingRow(row, (v) => String(v)))
      .sort((a, b) => compareVersions(a.version, b.version));
  },

  async recordApplied(session, table, row) {
    // An upsert, because a resumed `partial` migration overwrites its own earlier row.
    await session.query(
      `INSERT INTO ${quote(table)} (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (version) DO UPDATE SET
         name = excluded.name, checksum = excluded.checksum, applied_at = excluded.applied_at,
         duration_ms = excluded.duration_ms, applied_by = excluded.applied_by,
         dbward_version = excluded.dbward_version, statements_applied = excluded.statements_applied,
         statements_total = excluded.statements_total, status = excluded.status`,
      trackingValues(row),
    );
  },

  async removeApplied(session, table, version) {
    await session.query(`DELETE FROM ${quote(table)} WHERE version = ?`, [version]);
  },

  acquireLock: acquireSqliteLock,
  lockHolder: sqliteLockHolder,
  breakLock: breakSqliteLock,

  splitStatements: (sql) => splitSqlStatements(sql, 'sqlite'),

  async executeScript(session, sql) {
    try {
      // Without parameters the connection runs several statements as one script (db.exec).
      await session.query(sql);
    } catch (err) {
      // A section holding only comments is not an error: there is simply nothing to run.
      if (isEmptyScriptError(err)) return;
      throw err;
    }
  },
};

async function tableExists(conn: SqlConnection, table: string): Promise<boolean> {
  const { rows } = await conn.query("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [table]);
  return rows.length > 0;
}

// recordApplied/removeApplied get a session, which has no quoteIdent; SQLite quotes one way.
function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// better-sqlite3 refuses to prepare SQL with no statement in it (empty, or comments only).
function isEmptyScriptError(err: unknown): boolean {
  return (
    err instanceof QueryError &&
    err.cause instanceof RangeError &&
    /contains no statements/.test(err.cause.message)
  );
}
