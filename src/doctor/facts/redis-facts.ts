/**
 * Facts only Redis has, for the rules in src/doctor/rules/redis-rules.ts. Most come from one
 * `INFO everything`; configuration (persistence, protected mode) from CONFIG GET, slow log from
 * SLOWLOG, the default user from ACL GETUSER, big keys from a SCAN + MEMORY USAGE sample. A part
 * the monitoring user may not read is left undefined, and the collector lists it in `skipped`.
 */

export interface RedisMemoryFacts {
  /** INFO used_memory: bytes the allocator gave Redis. */
  usedBytes: number;
  /** INFO used_memory_rss: bytes the OS holds for the process. */
  rssBytes: number;
  /** INFO maxmemory; 0 means no limit. */
  maxmemoryBytes: number;
  /** INFO maxmemory_policy: noeviction, allkeys-lru, volatile-ttl, … */
  policy: string;
  /** INFO mem_fragmentation_ratio (rss / used); null when the server does not report it. */
  fragmentationRatio: number | null;
  /** INFO mem_allocator, e.g. `jemalloc-5.3.0` (active defragmentation needs jemalloc). */
  allocator: string | null;
}

export interface RedisStatsFacts {
  /** Keys evicted for maxmemory since the start or the last CONFIG RESETSTAT. */
  evictedKeys: number;
  /** Connections refused for maxclients since the start or the last CONFIG RESETSTAT. */
  rejectedConnections: number;
}

export interface RedisPersistenceFacts {
  /** INFO rdb_last_bgsave_status: `ok` or `err`. */
  rdbLastBgsaveStatus: string;
  /** INFO rdb_bgsave_in_progress. */
  rdbBgsaveInProgress: boolean;
  /** Seconds since the last successful RDB save (server clock). */
  lastSaveAgeSeconds: number;
  /** Writes since the last RDB save. */
  changesSinceLastSave: number;
  /** INFO aof_enabled. */
  aofEnabled: boolean;
  /** INFO aof_last_write_status: `ok` or `err`. */
  aofLastWriteStatus: string;
  /** INFO aof_last_bgrewrite_status: `ok` or `err`. */
  aofLastBgrewriteStatus: string;
  /**
   * CONFIG GET save: the snapshot schedule (`3600 1 300 100`), `''` when snapshots are off,
   * undefined when CONFIG GET is not allowed.
   */
  saveSchedule?: string;
}

export interface RedisSlowlogEntry {
  id: number;
  /** Unix seconds when it ran. */
  timestamp: number;
  durationMicros: number;
  /** The command name and at most its first argument, cut short (values are never shown). */
  command: string;
  /** `ip:port` of the client, when the server reports it. */
  client: string | null;
}

export interface RedisSlowlogFacts {
  /** SLOWLOG LEN. */
  length: number;
  /** CONFIG GET slowlog-log-slower-than (µs), when readable. */
  slowerThanMicros?: number;
  /** The slowest of the most recent entries, slowest first (at most 10). */
  top: RedisSlowlogEntry[];
}

export interface RedisBigKey {
  /** Key name, cut to 100 characters. */
  key: string;
  type: string;
  bytes: number;
}

export interface RedisKeySampleFacts {
  /** The logical database sampled (the target URL's). */
  db: number;
  /** Keys looked at (SCAN up to the sample size). */
  sampled: number;
  /** True when the sample covered every key of that database. */
  complete: boolean;
  /**
   * The biggest sampled keys by MEMORY USAGE, biggest first (at most 20): the rule keeps those
   * above its threshold, so a lowered threshold still finds them without another scan.
   */
  biggest: RedisBigKey[];
}

export interface RedisKeyspaceFacts {
  /** Keys in every logical database (INFO keyspace). */
  keys: number;
  /** Of which have a TTL. */
  keysWithTtl: number;
}

export interface RedisSecurityFacts {
  /**
   * The `default` user (the one connections get without AUTH) is enabled and needs no password;
   * null when neither ACL GETUSER nor CONFIG GET requirepass may be read.
   */
  defaultUserWithoutPassword: boolean | null;
  /** CONFIG GET protected-mode; null when not readable. */
  protectedMode: boolean | null;
  /** CONFIG GET bind, split; null when not readable. */
  bind: string[] | null;
}

export interface RedisFacts {
  memory: RedisMemoryFacts;
  stats: RedisStatsFacts;
  persistence: RedisPersistenceFacts;
  keyspace: RedisKeyspaceFacts;
  /** Undefined when SLOWLOG is not allowed. */
  slowlog?: RedisSlowlogFacts;
  /** Undefined when MEMORY USAGE is not allowed (or sampling is off). */
  keys?: RedisKeySampleFacts;
  /** Undefined when none of CONFIG GET / ACL GETUSER is allowed. */
  security?: RedisSecurityFacts;
}
