/**
 * The engine-neutral schema model `inspect` returns. Every engine fills the same shape; what an
 * engine does not have is an empty array or `null`, never a missing key, so consumers (diagrams,
 * lints, the console, diffs) need no engine checks. Sizes are bytes, counts are numbers.
 */
export interface SchemaModel {
  /** Engine id from the registry: postgres, mysql, sqlite, redis. */
  engine: string;
  /** Target name. */
  target: string;
  serverVersion: string;
  /** The database (catalog) inspected; for SQLite the file path, for Redis "redis". */
  database: string;
  inspectedAt: string;
  schemas: SchemaInfo[];
  tables: TableInfo[];
  views: ViewInfo[];
  sequences: SequenceInfo[];
  /** Key-value engines only (Redis); empty for SQL engines. */
  keyspaces: KeyspaceInfo[];
  /** Key-name patterns sampled with SCAN (Redis); empty for SQL engines. */
  keyPatterns: KeyPatternInfo[];
}

export interface SchemaInfo {
  name: string;
  owner: string | null;
}

export interface TableInfo {
  schema: string;
  name: string;
  /** Planner / statistics estimate, not an exact count. */
  rowEstimate: number | null;
  tableBytes: number | null;
  indexBytes: number | null;
  /** Table + indexes + TOAST/overflow, where the engine reports it. */
  totalBytes: number | null;
  comment: string | null;
  columns: ColumnInfo[];
  primaryKey: PrimaryKeyInfo | null;
  foreignKeys: ForeignKeyInfo[];
  uniqueConstraints: ConstraintInfo[];
  checkConstraints: CheckConstraintInfo[];
  indexes: IndexInfo[];
}

export interface ColumnInfo {
  name: string;
  /** 1-based position in the table. */
  position: number;
  /** The type as the engine spells it, e.g. `character varying(40)`, `int(11)`, `TEXT`. */
  type: string;
  nullable: boolean;
  /** Default expression as text, or null. */
  default: string | null;
  /** PostgreSQL identity: `always` / `by default`; null elsewhere or when not identity. */
  identity: 'always' | 'by default' | null;
  /** Values come from an auto-increment counter (MySQL AUTO_INCREMENT, SQLite INTEGER PRIMARY KEY, serial/identity). */
  autoIncrement: boolean;
  /** Generation expression of a generated column, or null. */
  generated: string | null;
  comment: string | null;
}

export interface PrimaryKeyInfo {
  name: string | null;
  columns: string[];
}

export type ReferentialAction = 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';

export interface ForeignKeyInfo {
  name: string | null;
  columns: string[];
  referencedSchema: string;
  referencedTable: string;
  referencedColumns: string[];
  onUpdate: ReferentialAction;
  onDelete: ReferentialAction;
}

export interface ConstraintInfo {
  name: string | null;
  columns: string[];
}

export interface CheckConstraintInfo {
  name: string | null;
  expression: string;
}

export interface IndexInfo {
  name: string;
  /** Column names, or expression text for expression parts. */
  columns: string[];
  /** btree, hash, gin, gist, brin, FULLTEXT, … as the engine names it (lower-case). */
  method: string;
  unique: boolean;
  /** This index backs the primary key. */
  primary: boolean;
  /** WHERE clause of a partial index, or null. */
  predicate: string | null;
  bytes: number | null;
  /** Index scans since statistics were reset, where the engine counts them; null otherwise. */
  scans: number | null;
  /** False for an index left invalid by a failed concurrent build (PostgreSQL). */
  valid: boolean;
}

export interface ViewInfo {
  schema: string;
  name: string;
  materialized: boolean;
  definition: string | null;
}

export interface SequenceInfo {
  schema: string;
  name: string;
  dataType: string;
  lastValue: number | null;
  maxValue: number | null;
  increment: number;
  /** `table.column` the sequence belongs to, or null. */
  ownedBy: string | null;
}

export interface KeyspaceInfo {
  /** Redis logical database number. */
  db: number;
  keys: number;
  keysWithExpiry: number;
  avgTtlMs: number | null;
}

export interface KeyPatternInfo {
  db: number;
  /** Key name with variable parts replaced, e.g. `session:*` or `user:{id}:cart`. */
  pattern: string;
  /** Redis type: string, hash, list, set, zset, stream. */
  type: string;
  sampledKeys: number;
  /** Keys in the database estimated to match, extrapolated from the sample. */
  estimatedKeys: number;
  /** MEMORY USAGE of sampled keys, extrapolated to the estimate. */
  estimatedBytes: number;
  /** Fraction of sampled keys with a TTL, 0..1. */
  ttlCoverage: number;
}
