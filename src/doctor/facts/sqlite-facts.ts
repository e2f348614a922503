/**
 * Facts only SQLite has, for the rules in src/doctor/rules/sqlite-rules.ts. Collected by
 * src/engines/sqlite/sqlite-doctor-facts.ts from the file's header pragmas, PRAGMA quick_check /
 * integrity_check / foreign_key_check, sqlite_stat1, dbstat and the file system (the `-wal` file).
 */

export interface SqliteIntegrityFacts {
  /**
   * Which check ran: integrity_check (also verifies every index) or the cheaper quick_check;
   * `none` when not even the schema could be read (then `errors` says why).
   */
  check: 'integrity_check' | 'quick_check' | 'none';
  /** Why the full integrity_check did not run (file above the size limit), or null. */
  fullCheckSkipped: string | null;
  /** The problems SQLite reported (at most 100), plus corruption errors other queries hit; empty when `ok`. */
  errors: string[];
}

export interface SqliteForeignKeyViolation {
  /** The child table holding rows whose parent row does not exist. */
  table: string;
  /** The parent table they point to. */
  parent: string;
  /** How many such rows. */
  rows: number;
  /** Whether the child table has rowids (WITHOUT ROWID tables do not), for the listing query. */
  hasRowid: boolean;
}

export interface SqliteTableStatistics {
  /** A table with at least one index (only those need statistics to choose between plans). */
  table: string;
  indexes: number;
  /** Rows now: exact from dbstat, or estimated from max(rowid) when dbstat could not run; null when unknown. */
  rows: number | null;
  /** Whether `rows` is an estimate (max(rowid)) rather than a count. */
  rowsEstimated: boolean;
  /** Rows ANALYZE recorded in sqlite_stat1; null when the table has no sqlite_stat1 row. */
  analyzedRows: number | null;
}

export interface SqliteFacts {
  /** The main database's file; null for an in-memory database. */
  file: string | null;
  pageSize: number;
  pageCount: number;
  /** Pages on the free list: space the file holds but no table or index uses. */
  freelistCount: number;
  /** PRAGMA auto_vacuum: with `full` the free list stays empty; with `incremental` it is trimmed on demand. */
  autoVacuum: 'none' | 'full' | 'incremental';
  /** PRAGMA journal_mode as this connection sees it (`wal` is stored in the file; the others are not). */
  journalMode: string;
  /** PRAGMA foreign_keys on the collecting connection: SQLite enforces foreign keys per connection. */
  foreignKeysEnforced: boolean;
  integrity: SqliteIntegrityFacts;
  /** PRAGMA foreign_key_check grouped by child and parent table; null when not checked (see skipped). */
  foreignKeyViolations: SqliteForeignKeyViolation[] | null;
  /**
   * Set when PRAGMA foreign_key_check cannot run because a foreign key references columns that
   * are not a key of the parent (`foreign key mismatch - "c" referencing "p"`): SQLite's message.
   */
  foreignKeyMismatch?: string;
  /** Size of the `-wal` file beside the database, bytes; null when there is none (or in memory). */
  walBytes: number | null;
  /** Indexed tables, with the row counts doctor could find and what sqlite_stat1 says. */
  statistics: SqliteTableStatistics[];
}
