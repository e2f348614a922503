/**
 * Facts only MySQL/MariaDB has, for the rules in src/doctor/rules/mysql-rules.ts. The collector
 * (src/engines/mysql/mysql-doctor-facts.ts) reads them in one read-only session with a statement
 * timeout: server-wide counters from SHOW GLOBAL STATUS / system variables, and the schema parts
 * from the catalogs of the URL's database only. A part left undefined was not collected (its rule
 * does not run, and `skipped` says why). Table names are bare (MySQL has no schemas within a
 * database); fixes quote them with backticks.
 */
export interface MysqlFacts {
  /** The database (schema) the URL names; undefined when it names none. */
  database?: string;
  /** Server-wide counters since the server started (SHOW GLOBAL STATUS). */
  status?: MysqlStatusFacts;
  /** Server settings the rules judge. */
  settings?: MysqlSettingsFacts;
  /** InnoDB data + indexes of this database, bytes: a lower bound of what competes for the buffer pool. */
  innodbBytes?: number;
  /**
   * Statement digests (performance_schema) run against this database that read without a
   * (good) index, the most frequent first, at most 50. Undefined when performance_schema is off
   * or unreadable.
   */
  fullScans?: MysqlFullScanFact[];
  /** Base tables of this database not stored in InnoDB (views and sequences left out). */
  nonInnodbTables?: MysqlEngineTableFact[];
  /** utf8mb3 (`utf8`) tables and columns next to utf8mb4. */
  charsets?: MysqlCharsetFacts;
  /** Every AUTO_INCREMENT column of this database with the next value and its type's maximum. */
  autoIncrement?: MysqlAutoIncrementFact[];
}

export interface MysqlStatusFacts {
  /** Connection attempts, successful or not (`Connections`). */
  connections: number;
  /** Failed connection attempts: wrong password, unknown database, handshake timeout. */
  abortedConnects: number;
  /** Statements sent by clients (`Questions`). */
  questions: number;
  /** Statements that took longer than long_query_time (counted even with the slow log off). */
  slowQueries: number;
  /** Logical reads from the InnoDB buffer pool. */
  bufferPoolReadRequests: number;
  /** Reads the buffer pool could not serve, so they went to disk. */
  bufferPoolReads: number;
  /** Internal temporary tables (GROUP BY, UNION, derived tables…). */
  createdTmpTables: number;
  /** Those that went to disk (too big for tmp_table_size, or with BLOB/TEXT columns). */
  createdTmpDiskTables: number;
}

export interface MysqlSettingsFacts {
  slowQueryLog: boolean;
  longQueryTimeSeconds: number;
  /** log_bin: the binary log (point-in-time recovery, replication). */
  binlog: boolean;
  performanceSchema: boolean;
  bufferPoolBytes: number;
}

export interface MysqlFullScanFact {
  /** Normalized statement text (values replaced by `?`), cut to 200 characters. */
  statement: string;
  /** Executions. */
  calls: number;
  /** Executions that used no index at all. */
  noIndexUsed: number;
  /** Executions for which the optimizer found no good index (range checked per row). */
  noGoodIndexUsed: number;
  rowsExamined: number;
  rowsSent: number;
}

export interface MysqlEngineTableFact {
  table: string;
  /** MyISAM, Aria, MEMORY, ARCHIVE, CSV, … */
  engine: string;
  rows: number | null;
}

export interface MysqlCharsetFacts {
  /** The database's default character set and collation. */
  databaseCharset: string | null;
  databaseCollation: string | null;
  /** Tables and columns using utf8mb4 (the tables' defaults and text columns). */
  utf8mb4Tables: number;
  utf8mb4Columns: number;
  /** Tables whose default or some of whose columns are utf8mb3, with the utf8mb3 columns. */
  utf8mb3Tables: { table: string; tableCollation: string | null; columns: string[] }[];
}

export interface MysqlAutoIncrementFact {
  table: string;
  column: string;
  /** tinyint, smallint, mediumint, int, bigint. */
  dataType: string;
  /** The full column type, e.g. `smallint(5) unsigned`. */
  columnType: string;
  unsigned: boolean;
  nullable: boolean;
  /** TABLES.AUTO_INCREMENT: the value the next insert gets. */
  nextValue: number;
  /** The largest value the type holds. */
  maxValue: number;
}
