/**
 * The engine's migration tracking store bound to an open handle, for SQL and key-value engines
 * alike: the runner, seeds and `migrate lock/unlock` talk to this, and only the parts that run a
 * migration care which kind it is.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Database, KeyValueDatabase, SqlDatabase } from '../connect/database-handle.js';
import { NotAvailableError } from '../core/errors.js';
import type {
  AppliedMigration,
  EngineId,
  KeyValueMigrationStoreRole,
  LockHolder,
  LockOwner,
  MigrationLock,
  MigrationStoreRole,
  MigrationTrackingRole,
} from '../engines/contract.js';
import { engineById } from '../engines/registry.js';

interface BoundStoreBase {
  /** Create the tracking table (or key) when missing. */
  ensureStore(table: string): Promise<void>;
  listApplied(table: string): Promise<AppliedMigration[]>;
  acquireLock(options: { timeoutMs: number; owner: LockOwner }): Promise<MigrationLock>;
  lockHolder(): Promise<LockHolder | null>;
  breakLock(): Promise<boolean>;
}

export interface SqlTrackingStore extends BoundStoreBase {
  readonly kind: 'sql';
  readonly role: MigrationStoreRole;
  readonly db: SqlDatabase;
}

export interface KeyValueTrackingStore extends BoundStoreBase {
  readonly kind: 'keyvalue';
  readonly role: KeyValueMigrationStoreRole;
  readonly db: KeyValueDatabase;
}

export type TrackingStore = SqlTrackingStore | KeyValueTrackingStore;

/** The tracking store for `db`'s engine, or a NotAvailableError for engines without migrations. */
export async function trackingStoreFor(db: Database): Promise<TrackingStore> {
  const roles = engineById(db.engine.id as EngineId).roles;
  if (db.kind === 'sql' && roles.migrationStore) {
    const role = await roles.migrationStore();
    return { kind: 'sql', role, db, ...bind(role, db.connection) };
  }
  if (db.kind === 'keyvalue' && roles.keyValueMigrationStore) {
    const role = await roles.keyValueMigrationStore();
    return { kind: 'keyvalue', role, db, ...bind(role, db.connection) };
  }
  throw new NotAvailableError(
    `Migrations on ${db.engine.displayName} are not available yet.`,
    'PostgreSQL, MySQL/MariaDB, SQLite and Redis are supported in this release.',
    { engine: db.engine.id, target: db.target.name },
  );
}

/** The connection-taking methods of a store, with the connection filled in. */
function bind<Conn, Session>(role: MigrationTrackingRole<Conn, Session>, conn: Conn): BoundStoreBase {
  return {
    ensureStore: (table) => role.ensureStore(conn, table),
    listApplied: (table) => role.listApplied(conn, table),
    acquireLock: (options) => role.acquireLock(conn, options),
    lockHolder: () => role.lockHolder(conn),
    breakLock: () => role.breakLock(conn),
  };
}

/** Who takes a lock: this process, with a random token so its release never frees another's lock. */
export function newLockOwner(): LockOwner {
  return { pid: process.pid, host: os.hostname(), token: randomBytes(12).toString('hex') };
}
