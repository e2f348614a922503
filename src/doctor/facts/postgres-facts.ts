/**
 * Facts only PostgreSQL has, for the rules in src/doctor/rules/postgres-rules.ts. The collector
 * (src/engines/postgres/postgres-doctor-facts.ts) fills each part with one catalog query; a part
 * left undefined was not collected (its rule does not run, and `skipped` says why when it was for
 * lack of privilege). Relation names are SQL-ready: `schema.table`, double-quoted only where
 * PostgreSQL needs it (`public."Order"`), so fixes can use them as they are.
 */
export interface PostgresFacts {
  /** Transaction-ID (and multixact) age, the oldest first. */
  wraparound?: WraparoundFacts;
  /** Sequences and the integer columns they feed. */
  sequences?: SequenceFacts;
  /** CHECK and FOREIGN KEY constraints added NOT VALID and never validated. */
  notValidatedConstraints?: NotValidatedConstraintFact[];
  /** Every replication slot on the server. */
  replicationSlots?: ReplicationSlotFact[];
  /** Buffer cache hits vs reads since statistics were reset, user tables of this database. */
  cache?: CacheFacts;
  /** Estimated bloat of the tables and b-tree indexes of at least 1 MB (catalog statistics, no scan). */
  bloat?: BloatFacts;
  /** Tables with the most dead rows (at most 20, each with at least 1,000 dead rows). */
  deadTuples?: DeadTupleFact[];
  /** autovacuum and track_counts; null where the setting could not be read. */
  autovacuum?: { enabled: boolean | null; trackCounts: boolean | null };
  /** The largest tables of this database and the largest databases of the server (5 each). */
  largest?: LargestFacts;
  /** pg_stat_statements: in this database, preloaded, installable. */
  statStatements?: StatStatementsFacts;
  /** TLS of doctor's own connection and of the other client connections. */
  ssl?: SslFacts;
}

export interface WraparoundFacts {
  /** autovacuum_freeze_max_age: past it autovacuum forces an anti-wraparound vacuum. */
  freezeMaxAge: number;
  /** autovacuum_multixact_freeze_max_age. */
  multixactFreezeMaxAge: number;
  /** Every database that allows connections, oldest first: age(datfrozenxid), mxid_age(datminmxid). */
  databases: { name: string; xidAge: number; multixactAge: number }[];
  /** The oldest tables of this database (with their TOAST), at most 10, oldest first. */
  tables: { name: string; xidAge: number }[];
}

export interface SequenceFact {
  /** `schema.sequence`. */
  name: string;
  /** The table and column it feeds (serial, identity, OWNED BY or a nextval default), or null. */
  table: string | null;
  column: string | null;
  /** smallint, integer, bigint for a column; the sequence's own type otherwise. */
  type: string;
  /** Exact decimal text (bigint does not fit a JS number). */
  lastValue: string;
  /** The lower of the column type's maximum and the sequence's MAXVALUE, decimal text. */
  maxValue: string;
}

export interface SequenceFacts {
  /** Readable, used (ascending) sequences. */
  sequences: SequenceFact[];
  /** Sequences this login may not read (no SELECT or USAGE on them). */
  unreadable: string[];
}

export interface NotValidatedConstraintFact {
  table: string;
  name: string;
  /** check | foreign key */
  type: 'check' | 'foreign key';
}

export interface ReplicationSlotFact {
  name: string;
  /** physical | logical */
  type: string;
  /** Logical slots: the database. */
  database: string | null;
  active: boolean;
  /** WAL the server keeps for it (bytes, from restart_lsn), null when unknown. */
  retainedBytes: number | null;
  /** reserved | extended | unreserved | lost, or null. */
  walStatus: string | null;
}

export interface CacheFacts {
  heapHit: number;
  heapRead: number;
  indexHit: number;
  indexRead: number;
}

export interface BloatEstimate {
  /** `schema.table` or `schema.index`; indexes also name their table. */
  name: string;
  table?: string;
  /** Current size, bytes. */
  bytes: number;
  /** Estimated space beyond what the live rows need (fill factor included), bytes. */
  wastedBytes: number;
}

export interface BloatFacts {
  tables: BloatEstimate[];
  indexes: BloatEstimate[];
  /** Relations of at least 1 MB whose column statistics are missing or unreadable, so not estimated. */
  unestimated: string[];
}

export interface DeadTupleFact {
  table: string;
  live: number;
  dead: number;
  /** ISO time, or null when never. */
  lastAutovacuum: string | null;
  lastVacuum: string | null;
  /** Dead rows at which autovacuum should start on it (threshold + scale factor × rows). */
  autovacuumTrigger: number;
  /** autovacuum_enabled = false in the table's storage parameters. */
  autovacuumDisabled: boolean;
}

export interface LargestFacts {
  tables: { name: string; bytes: number }[];
  databases: { name: string; bytes: number }[];
}

export interface StatStatementsFacts {
  /** The extension exists in this database. */
  installed: boolean;
  /** In shared_preload_libraries; null when the setting could not be read. */
  preloaded: boolean | null;
  /** The server has the extension's files (pg_available_extensions). */
  available: boolean;
  /** The current shared_preload_libraries, for the fix. */
  preloadLibraries: string | null;
}

export interface SslFacts {
  /** How doctor itself is connected: over a Unix socket, over TCP to a loopback address, or over the network. */
  own: { transport: 'socket' | 'loopback' | 'network'; encrypted: boolean };
  /** Other client sessions over the network (not socket, not loopback) without TLS, at most 20. */
  unencryptedOthers: { id: number; user: string | null; client: string }[];
  /** Client sessions over the network in total (for the share). */
  networkSessions: number;
  /** The server's ssl setting. */
  serverSsl: boolean | null;
}
