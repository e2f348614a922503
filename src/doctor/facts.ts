/**
 * The facts engines collect for doctor: engine-neutral sections every SQL engine fills (tables,
 * indexes, foreign keys, connections, activity), plus one section per engine for what only it
 * has. Collectors (src/engines/<engine>/<engine>-doctor-facts.ts) read them with a bounded number
 * of catalog queries; rules (src/doctor/rules/) judge them without a server, so every rule is
 * unit-tested from hand-written facts. A section left undefined was not collected: its rules do
 * not run (and the collector says why in `skipped` when it was for lack of privilege).
 */
import type { SkippedCheck } from './finding.js';
import type { MysqlFacts } from './facts/mysql-facts.js';
import type { PostgresFacts } from './facts/postgres-facts.js';
import type { RedisFacts } from './facts/redis-facts.js';
import type { SqliteFacts } from './facts/sqlite-facts.js';

export interface ServerFacts {
  /** Engine id: postgres, mysql, sqlite, redis. */
  engine: string;
  /** As the server reports it: `15.19`, `10.11.19-MariaDB`, `3.45.1`, `7.0.15`. */
  version: string;
  /** MariaDB vs MySQL, when it matters for version support. */
  flavor?: 'mariadb' | 'mysql';
  /** Seconds since the server started; undefined for embedded engines. */
  uptimeSeconds?: number;
  /**
   * When this major version stops (or stopped) getting fixes upstream, ISO date; null when the
   * engine does not know the version; undefined when it does not apply (SQLite).
   */
  endOfLife?: string | null;
}

export interface ConnectionFacts {
  max: number;
  current: number;
}

export interface SessionFact {
  /** Server-side id: backend pid, connection id. */
  id: number;
  user: string | null;
  application: string | null;
  client: string | null;
  /** Seconds in the current state (query running, or idle in transaction). */
  seconds: number;
  /** The statement text, cut to 200 characters. */
  query: string | null;
}

export interface BlockedFact extends SessionFact {
  /** Ids of the sessions it waits for. */
  blockedBy: number[];
}

export interface ActivityFacts {
  /** Statements running longer than the threshold given to the collector. */
  longRunning: SessionFact[];
  /** Sessions idle inside an open transaction (PostgreSQL "idle in transaction"; MySQL: trx open, no statement). */
  idleInTransaction: SessionFact[];
  /** Sessions waiting for a lock, with whom they wait for. */
  blocked: BlockedFact[];
}

export interface TableFact {
  /** `schema.table` on engines with schemas, else `table`. */
  name: string;
  hasPrimaryKey: boolean;
  /** Estimated rows. */
  rows: number | null;
  /** Table + indexes, bytes. */
  totalBytes: number | null;
}

export interface IndexFact {
  /** Qualified like TableFact.name. */
  table: string;
  name: string;
  /** Key parts in order: column names, or the expression text for expression parts. */
  columns: string[];
  /** Access method: btree, hash, gin, … (MySQL: BTREE, HASH, FULLTEXT, SPATIAL). */
  method: string;
  unique: boolean;
  primary: boolean;
  /** Partial index predicate, normalized by the engine, or null. */
  predicate: string | null;
  /** false: a failed CREATE INDEX CONCURRENTLY left it unusable. */
  valid: boolean;
  /** Scans since statistics were reset; null where the engine does not count. */
  scans: number | null;
  sizeBytes: number | null;
  /** Backs a constraint (primary key, unique or exclusion constraint): cannot simply be dropped. */
  constraint: string | null;
  /**
   * Columns the engine stores in the index without being named (InnoDB appends the primary key
   * to every secondary index), so `(a, id)` is redundant next to `(a)` when id is the key.
   */
  implicitSuffix?: string[];
}

export interface ForeignKeyFact {
  table: string;
  name: string;
  columns: string[];
  referencedTable: string;
}

export interface ReplicationFacts {
  role: 'primary' | 'replica' | 'standalone';
  /** Replica: seconds behind its primary; null when unknown (e.g. the link is down). */
  lagSeconds?: number | null;
  /** Replica: whether it is receiving and applying changes. */
  linkUp?: boolean;
  /** Primary: connected replicas. */
  replicas?: number;
}

export interface DoctorFacts {
  server: ServerFacts;
  connections?: ConnectionFacts;
  activity?: ActivityFacts;
  tables?: TableFact[];
  indexes?: IndexFact[];
  foreignKeys?: ForeignKeyFact[];
  /** When index scan counters were last reset (ISO), so "unused" can say since when. */
  statsSince?: string | null;
  replication?: ReplicationFacts;
  postgres?: PostgresFacts;
  mysql?: MysqlFacts;
  sqlite?: SqliteFacts;
  redis?: RedisFacts;
  /** Checks the collector could not gather facts for, and why. */
  skipped: SkippedCheck[];
}
