/**
 * The MySQL/MariaDB migration store: the tracking table (in the URL's database), statement
 * splitting (MySQL's DELIMITER included) and the lock that lets one migration run at a time per
 * database (a GET_LOCK user lock, see mysql-migration-lock.ts). DDL commits implicitly here, so
 * migrations run statement by statement and recordApplied is called after each one: it is a
 * single upsert.
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
import { acquireMysqlLock, breakMysqlLock, mysqlLockHolder, toIso } from './mysql-migration-lock.js';

const columns = trackingColumns.join(', ');

export const mysqlMigrationStoreRole: MigrationStoreRole = {
  async ensureStore(conn, table) {
    // CREATE TABLE IF NOT EXISTS is atomic under the server's metadata lock: the loser of a race
    // gets a "table exists" note, not an error.
    await conn.query(`CREATE TABLE IF NOT EXISTS ${conn.quoteIdent(table)} (
  version VARCHAR(255) NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  checksum CHAR(64) NOT NULL,
  applied_at DATETIME(3) NOT NULL,
  duration_ms BIGINT NOT NULL,
  applied_by VARCHAR(255) NOT NULL,
  dbward_version VARCHAR(64) NOT NULL,
  statements_applied INT NOT NULL,
  statements_total INT NOT NULL,
  status VARCHAR(16) NOT NULL CHECK (status IN ('applied', 'partial'))
) ENGINE=InnoDB`);
  },

  async listApplied(conn, table) {
    // Reading must not create anything (`migrate status` on a fresh database changes nothing),
    // and a missing table is checked first rather than caught.
    if (!(await tableExists(conn, table))) return [];
    // applied_at is UTC; read as text so the driver's timezone option cannot shift it.
    const { rows } = await conn.query<TrackingRow>(
      `SELECT version, name, checksum, CAST(applied_at AS CHAR) AS applied_at, duration_ms, applied_by,
              dbward_version, statements_applied, statements_total, status
         FROM ${conn.quoteIdent(table)}`,
    );
    // Versions are digit strings of varying length, so the server's text order would put 10 before 9.
    return rows
      .map((row) => fromTrackingRow(row, (v) => toIso(String(v))))
      .sort((a, b) => compareVersions(a.version, b.version));
  },

  async recordApplied(session, table, row) {
    // One round trip: a `partial` row is updated in place after every statement of a run.
    // VALUES() is deprecated in MySQL 8.0.20+ (a warning only); the row-alias form replacing
    // it does not exist in MariaDB.
    await session.query(
      `INSERT INTO ${quoteIdent(table)} (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE
         name = VALUES(name), checksum = VALUES(checksum), applied_at = VALUES(applied_at),
         duration_ms = VALUES(duration_ms), applied_by = VALUES(applied_by),
         dbward_version = VALUES(dbward_version), statements_applied = VALUES(statements_applied),
         statements_total = VALUES(statements_total), status = VALUES(status)`,
      trackingValues(row, toDatetime(row.appliedAt)),
    );
  },

  async removeApplied(session, table, version) {
    await session.query(`DELETE FROM ${quoteIdent(table)} WHERE version = ?`, [version]);
  },

  acquireLock: acquireMysqlLock,
  lockHolder: mysqlLockHolder,
  breakLock: breakMysqlLock,

  splitStatements: (sql) => splitSqlStatements(sql, 'mysql'),

  async executeScript(session, sql) {
    // Multi-statement queries are off on our connections, so one statement per round trip.
    // A failing statement's error position is moved from the statement to the whole script.
    let cursor = 0;
    for (const statement of splitSqlStatements(sql, 'mysql')) {
      const at = sql.indexOf(statement.text, cursor);
      if (at >= 0) cursor = at + statement.text.length;
      try {
        await session.query(statement.text);
      } catch (err) {
        throw at > 0 && err instanceof QueryError && err.position !== undefined ? shifted(err, at) : err;
      }
    }
  },
};

/** An ISO timestamp as a UTC DATETIME literal (`2026-11-22 04:00:00.123`). */
function toDatetime(iso: string): string {
  return new Date(iso).toISOString().replace('T', ' ').replace(/Z$/, '');
}

/** Whether `table` exists in the connection's database, as the unqualified CREATE TABLE made it. */
async function tableExists(conn: SqlConnection, table: string): Promise<boolean> {
  const { rows } = await conn.query<{ present: number | string }>(
    `SELECT COUNT(*) AS present FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
    [table],
  );
  return Number(rows[0]?.present ?? 0) > 0;
}

/** The same error with its position counted from the start of the script instead of the statement. */
function shifted(err: QueryError, offset: number): QueryError {
  return new QueryError(err.message, {
    sqlState: err.sqlState,
    detail: err.detail,
    hint: err.hint,
    position: err.position! + offset,
    cause: err.cause,
    context: err.context,
  });
}

/** recordApplied/removeApplied get a bare session, which has no quoteIdent; MySQL's rule is this one. */
function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}
