/**
 * The engine seam. An engine is a registry entry ({@link EngineDefinition}: id, URL schemes,
 * capability flags) plus a few role modules loaded on demand, so `dbward --version` never pays
 * for a driver. Code outside `src/engines/` asks capability flags and role presence; it never
 * compares engine names.
 */
import type { BackupRole } from './backup-role.js';
import type { ConnectionSpec } from '../core/connection-spec.js';
import type { Logger } from '../core/logger.js';
import type { SchemaModel } from '../core/schema-model.js';
import type { Target } from '../core/target.js';
import type { DoctorFacts } from '../doctor/facts.js';
import type { DoctorFixes } from '../doctor/rule.js';
import type { Thresholds } from '../doctor/thresholds.js';

export type EngineId = 'postgres' | 'mysql' | 'sqlite' | 'redis' | 'mongodb';

/** What an engine can do. Callers branch on these, never on the engine id. */
export interface EngineCapabilities {
  /** Speaks SQL: the handle has `query` and `transaction`. */
  isSql: boolean;
  /** A key-value store: the handle has `command` instead of SQL. */
  isKeyValue: boolean;
  /** Has namespaces inside a database (PostgreSQL schemas). */
  hasSchemas: boolean;
  /** DDL can be rolled back inside a transaction. */
  supportsTransactionalDdl: boolean;
  /** Has session-level advisory locks (pg_advisory_lock, GET_LOCK). */
  hasAdvisoryLocks: boolean;
  /** An embedded file database: no server, no network, no users. */
  isEmbedded: boolean;
  /** Counts index scans, so unused indexes can be found. */
  hasIndexScanCounts: boolean;
}

export interface QueryResult<Row = Record<string, unknown>> {
  rows: Row[];
  /** Rows returned or affected. */
  rowCount: number;
}

/** One database session; transactions and locks run on one of these. */
export interface SqlSession {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
}

export interface PoolStats {
  max: number;
  /** Connections open now. */
  total: number;
  idle: number;
  inUse: number;
  /** Callers queued for a connection. */
  waiting: number;
}

export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable';

interface ConnectionBase {
  /** Round trip to the server; throws a diagnosed ConnectionError when it cannot. */
  ping(): Promise<void>;
  /** Server version as the server reports it, e.g. `15.19`, `10.11.19-MariaDB`, `3.45.1`, `7.0.15`. */
  serverVersion(): Promise<string>;
  poolStats(): PoolStats;
  /** Close every connection; later calls fail. Safe to call twice. */
  close(): Promise<void>;
}

/** A pool of sessions on a SQL engine. */
export interface SqlConnection extends ConnectionBase, SqlSession {
  readonly kind: 'sql';
  /** Run `fn` on one session between BEGIN and COMMIT; ROLLBACK and rethrow if it throws. */
  withTransaction<T>(fn: (session: SqlSession) => Promise<T>, isolation?: IsolationLevel): Promise<T>;
  /** Run `fn` on one dedicated session (for session locks and multi-statement work). */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Quote one identifier part for this engine (`"a""b"`, `` `a``b` ``). */
  quoteIdent(name: string): string;
  /** True for errors worth retrying the whole transaction for: serialization failure, deadlock, busy. */
  isRetryable(err: unknown): boolean;
  /** Map a driver error from a query to a QueryError (code, detail, hint, position). */
  toQueryError(err: unknown, sql: string): Error;
}

/** A pool (or client) on a key-value engine. */
export interface KeyValueConnection extends ConnectionBase {
  readonly kind: 'keyvalue';
  /** Send one command, e.g. `command('SET', 'k', 'v')`. Replies as the driver returns them. */
  command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown>;
}

export type EngineConnection = SqlConnection | KeyValueConnection;

export interface ConnectContext {
  target: Target;
  spec: ConnectionSpec;
  logger: Logger;
}

/** Role: open a verified connection (pool), or throw a diagnosed ConnectionError. */
export interface ConnectionRole {
  connect(ctx: ConnectContext): Promise<EngineConnection>;
}

export interface InspectOptions {
  /** Only these schemas (engines with schemas); default: all user schemas. */
  schemas?: string[];
  /** Redis: how many keys to sample with SCAN per database. Default 10,000. */
  sampleKeys?: number;
}

/** Role: read the schema into the engine-neutral model with a bounded number of catalog queries. */
export interface InspectRole {
  inspect(conn: EngineConnection, target: Target, options: InspectOptions): Promise<SchemaModel>;
}

/** One row of the migration tracking table. */
export interface AppliedMigration {
  version: string;
  name: string;
  /** SHA-256 of the normalized file content (src/migrate/migration-checksum.ts). */
  checksum: string;
  /** ISO timestamp. */
  appliedAt: string;
  durationMs: number;
  /** `user@host` of the process that applied it. */
  appliedBy: string;
  dbwardVersion: string;
  statementsApplied: number;
  statementsTotal: number;
  /** `partial` when a non-transactional run stopped part-way (resumable). */
  status: 'applied' | 'partial';
}

/** Who holds the migration lock, as far as the engine can tell. */
export interface LockHolder {
  pid: number | null;
  host: string | null;
  /** ISO timestamp the lock (or the holder's session) was taken. */
  since: string | null;
  /** One line for messages, e.g. `pid 4242 on build-7 since 2026-11-22T04:00:00Z`. */
  description: string;
  /**
   * True when the engine itself can tell the holder is gone (SQLite: its heartbeat stopped).
   * Engines whose lock dies with the holder's session or expires by itself leave it unset.
   */
  stale?: boolean;
}

export interface MigrationLock {
  /** Release the lock. Safe to call twice. */
  release(): Promise<void>;
}

/** Identifies this process in the lock, so a waiting run can name the holder. */
export interface LockOwner {
  pid: number;
  host: string;
  /** Random per run, so a release never frees someone else's lock. */
  token: string;
}

/**
 * Where applied migrations (and seeds: same rows, another table) are recorded, and the lock that
 * lets one run at a time per database. A process that dies must never leave a lock that blocks
 * the next deploy. `Conn` is the engine's connection, `Session` what a migration runs on.
 */
export interface MigrationTrackingRole<Conn, Session> {
  /** Create the tracking table (or key) when missing. Idempotent and safe when two processes race. */
  ensureStore(conn: Conn, table: string): Promise<void>;
  /** Every recorded migration, in version order (numeric). Empty when the table does not exist yet. */
  listApplied(conn: Conn, table: string): Promise<AppliedMigration[]>;
  /** Insert or replace one row, on the session that ran the migration (inside its transaction if any). */
  recordApplied(session: Session, table: string, row: AppliedMigration): Promise<void>;
  /** Delete one row (after a down migration), on the session that ran it. */
  removeApplied(session: Session, table: string, version: string): Promise<void>;
  /**
   * Take the per-database migration lock, waiting up to `timeoutMs`. On timeout throw a
   * DbwardError with code E_MIGRATION_LOCKED whose message names the holder (lockHolder()).
   * The lock is per database, not per tracking table: migrations and seeds share it.
   */
  acquireLock(conn: Conn, options: { timeoutMs: number; owner: LockOwner }): Promise<MigrationLock>;
  /** The current holder, or null when the lock is free. */
  lockHolder(conn: Conn): Promise<LockHolder | null>;
  /**
   * Free the lock whoever holds it: end the holder's server session (PostgreSQL
   * pg_terminate_backend, MySQL KILL), or delete the lock row or key. Resolves to false when
   * nothing held it. The engine does not judge whether that is safe: src/migrate/unlock-migrations.ts does.
   */
  breakLock(conn: Conn): Promise<boolean>;
}

/** Role: the migration store of a SQL engine (tracking table, lock, statement execution). */
export interface MigrationStoreRole extends MigrationTrackingRole<SqlConnection, SqlSession> {
  /** Run a section's SQL (one or more statements) on a session, as one script. */
  executeScript(session: SqlSession, sql: string): Promise<void>;
  /**
   * Split a section into statements in this engine's dialect (quotes, comments, dollar quoting,
   * MySQL DELIMITER), for runs that go statement by statement and record progress after each.
   * `line` is the 0-based line of the statement's first character within `sql`.
   */
  splitStatements(sql: string): SplitStatement[];
  /**
   * Optional: prepare a session before a migration runs on it — e.g. make the server notice a
   * dead client quickly, so a killed run's statements stop instead of running on orphaned.
   */
  prepareSession?(session: SqlSession): Promise<void>;
  /**
   * Optional: the first statement in `sql` that cannot run inside a transaction block, named
   * for messages (e.g. `CREATE INDEX CONCURRENTLY`), or null. Found with the engine's own parser;
   * SQL it cannot parse yields null (the server then reports the error with its position). A
   * section with such a statement runs statement by statement outside a transaction, with
   * progress recorded, as if it were marked `transaction:false`.
   */
  nonTransactionalStatement?(sql: string): Promise<string | null>;
}

/**
 * Role: the migration store of a key-value engine (Redis). Migrations are scripts that get the
 * key-value handle; there are no transactions, so the "session" is the connection itself.
 */
export type KeyValueMigrationStoreRole = MigrationTrackingRole<KeyValueConnection, KeyValueConnection>;

export interface SplitStatement {
  text: string;
  line: number;
}

/**
 * Role: the schema as SQL text for `schema.sql` after migrations — deterministic (no version
 * banners, dump dates, random keys or counters), so reviewers can diff it. Engines may use their
 * own dump tool; credentials reach it through the environment or an option file, never argv.
 */
export interface SchemaDumpRole {
  /**
   * Dump the schema (no data). Throws a DbwardError (code E_SCHEMA_DUMP) that names the tool
   * and says what to do when it cannot: the tool is missing, or older than the server.
   */
  dumpSchema(conn: SqlConnection, ctx: { target: Target; spec: ConnectionSpec }): Promise<string>;
}

/** An empty database made for a short job (squash, backup verification); drop() removes it. */
export interface ScratchDatabase {
  /**
   * A target for the scratch database: the original target's settings and credentials with
   * another database in its URL, ready for open(). Its name is `<target>~scratch`.
   */
  target: Target;
  /** Drop the database (or delete the file). Safe to call twice. */
  drop(): Promise<void>;
}

/**
 * Role: create an empty scratch database beside the target's — on the same server with the
 * same credentials (CREATE DATABASE), or a temporary file for embedded engines. Throws a
 * DbwardError naming the missing privilege (e.g. CREATEDB) when it cannot.
 */
export interface ScratchDatabaseRole {
  createScratch(
    conn: EngineConnection,
    ctx: { target: Target; spec: ConnectionSpec },
  ): Promise<ScratchDatabase>;
}

export interface DoctorCollectContext {
  target: Target;
  spec: ConnectionSpec;
  /** Every query runs under this statement timeout, so a sick server cannot hang doctor. */
  statementTimeoutMs: number;
  /** Redis: keys to sample with SCAN for big keys and TTL share. */
  sampleKeys: number;
  /** The thresholds in force (defaults + config + options), for collectors whose work depends on one. */
  thresholds: Thresholds;
}

/**
 * Role: the facts `dbward doctor` judges (src/doctor/facts.ts), read-only, with a bounded
 * number of catalog queries (never one per table). A check that cannot run for lack of privilege
 * goes into `facts.skipped` with the grant that would enable it — never an error. `fixes` words
 * the SQL of a fix in this engine's dialect.
 */
export interface DoctorFactsRole {
  collect(conn: EngineConnection, ctx: DoctorCollectContext): Promise<DoctorFacts>;
  fixes: DoctorFixes;
}

/** The roles an engine may implement; absent roles are simply not offered. */
export interface EngineRoles {
  connection?: () => Promise<ConnectionRole>;
  inspect?: () => Promise<InspectRole>;
  migrationStore?: () => Promise<MigrationStoreRole>;
  keyValueMigrationStore?: () => Promise<KeyValueMigrationStoreRole>;
  schemaDump?: () => Promise<SchemaDumpRole>;
  scratchDatabase?: () => Promise<ScratchDatabaseRole>;
  doctorFacts?: () => Promise<DoctorFactsRole>;
  backup?: () => Promise<BackupRole>;
}

export interface EngineDefinition {
  id: EngineId;
  displayName: string;
  /** URL schemes, first is canonical: `postgres`, `postgresql`. */
  schemes: readonly string[];
  capabilities: EngineCapabilities;
  /** Set when the engine is registered but cannot be used in this build. */
  unavailable?: { reason: string; hint: string };
  /** Take a URL apart (registering its password as a secret). */
  parseUrl(url: string): ConnectionSpec;
  roles: EngineRoles;
}
