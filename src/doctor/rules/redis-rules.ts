/**
 * Rules judging the redis section of the facts (src/doctor/facts/redis-facts.ts). Engine-neutral
 * code in the sense that matters: pure functions of collected facts, unit-tested without a server.
 * Memory thresholds follow MEMORY DOCTOR (Redis src/object.c): nothing is judged below 5 MB,
 * fragmentation needs a ratio above 1.4 and more than 10 MB of excess.
 */
import type { RedisFacts } from '../facts/redis-facts.js';
import { finding, formatBytes, formatCount, formatPercent, formatSeconds, type Rule } from '../rule.js';

export const redisThresholds = {
  /** Warn when used_memory reaches this share of maxmemory (percent). */
  'redis.memoryWarnPercent': 80,
  /** Critical at this share of maxmemory (percent). */
  'redis.memoryCriticalPercent': 95,
  /** mem_fragmentation_ratio (RSS / used) above this is fragmentation (MEMORY DOCTOR: 1.4). */
  'redis.fragmentationRatio': 1.4,
  /** …and only when RSS and used memory differ by more than this (bytes; MEMORY DOCTOR: 10 MB). */
  'redis.fragmentationMinBytes': 10 * 1024 * 1024,
  /** Below this used_memory (bytes) fragmentation is not judged (MEMORY DOCTOR: 5 MB). */
  'redis.memoryMinBytes': 5 * 1024 * 1024,
  /** With snapshots configured and writes pending, a last save older than this (seconds) is a warning. */
  'redis.lastSaveWarnSeconds': 7200,
  /** A slow-log entry at least this long (microseconds) makes the slow log a warning, not info. */
  'redis.slowlogWarnMicros': 1_000_000,
  /** A sampled key at least this big (bytes, MEMORY USAGE) is reported. */
  'redis.bigKeyBytes': 10 * 1024 * 1024,
  /** Under a volatile-* policy, warn when at least this share of keys has no TTL (percent). */
  'redis.noTtlWarnPercent': 90,
} satisfies Record<string, number>;

type Check = Rule['check'];

/** A rule over the redis section only: not run when it is missing (another engine). */
function redisRule(
  id: string,
  title: string,
  check: (redis: RedisFacts, ...rest: Parameters<Check>) => ReturnType<Check>,
): Rule {
  return { id, title, check: (facts, context) => (facts.redis ? check(facts.redis, facts, context) : null) };
}

const persistHint = 'then persist it: CONFIG REWRITE (or edit redis.conf), or it is lost on restart';

const maxmemory = redisRule('redis.maxmemory', 'Memory limit and eviction policy', ({ memory }) => {
  if (memory.maxmemoryBytes === 0) {
    return [
      finding(
        'warning',
        'No memory limit: maxmemory is 0 (unlimited)',
        [
          `maxmemory 0 (unlimited)`,
          `used memory ${formatBytes(memory.usedBytes)}`,
          `policy ${memory.policy}`,
        ],
        'Without a limit Redis grows until the machine runs out of memory: then the OS kills it (losing everything since the last save) or it starts swapping and every command slows down.',
        `CONFIG SET maxmemory <bytes, e.g. 75 % of the RAM left for Redis>\nCONFIG SET maxmemory-policy allkeys-lru   # for a cache; keep noeviction for data that must not vanish\n# ${persistHint}`,
      ),
    ];
  }
  if (memory.policy === 'noeviction') {
    return [
      finding(
        'info',
        `Memory limit ${formatBytes(memory.maxmemoryBytes)} with policy noeviction: writes fail when it is full`,
        [`maxmemory ${formatBytes(memory.maxmemoryBytes)}`, 'maxmemory-policy noeviction'],
        'At the limit Redis evicts nothing and answers every write with an OOM error; right for data that must not vanish, wrong for a cache.',
        `# for a cache:\nCONFIG SET maxmemory-policy allkeys-lru\n# ${persistHint}`,
      ),
    ];
  }
  return [];
});

const memoryUsage = redisRule(
  'redis.memory',
  'Memory used vs the limit',
  ({ memory }, _facts, { thresholds }) => {
    if (memory.maxmemoryBytes <= 0) return null;
    const percent = (memory.usedBytes / memory.maxmemoryBytes) * 100;
    if (percent < thresholds['redis.memoryWarnPercent']) return [];
    const evicts = memory.policy !== 'noeviction';
    return [
      finding(
        percent >= thresholds['redis.memoryCriticalPercent'] ? 'critical' : 'warning',
        `${formatBytes(memory.usedBytes)} of ${formatBytes(memory.maxmemoryBytes)} memory used (${percent.toFixed(0)} %)`,
        [
          `used memory ${formatBytes(memory.usedBytes)}`,
          `maxmemory ${formatBytes(memory.maxmemoryBytes)}`,
          `maxmemory-policy ${memory.policy}`,
        ],
        evicts
          ? `At the limit Redis evicts keys (${memory.policy}) on every write: data the application expects may vanish, and eviction costs time on each command.`
          : 'At the limit every write fails with an OOM error (policy noeviction).',
        `CONFIG SET maxmemory <a higher limit, if the machine has the RAM>\n# or shrink the data: expire or delete what is not needed (see redis.big-keys)\n# ${persistHint}`,
      ),
    ];
  },
);

const fragmentation = redisRule(
  'redis.fragmentation',
  'Memory fragmentation',
  ({ memory }, _facts, { thresholds }) => {
    if (memory.fragmentationRatio === null) return null;
    if (memory.usedBytes < thresholds['redis.memoryMinBytes']) return [];
    const excess = memory.rssBytes - memory.usedBytes;
    const ratio = memory.fragmentationRatio;
    const evidence = [
      `mem_fragmentation_ratio ${ratio.toFixed(2)}`,
      `RSS ${formatBytes(memory.rssBytes)}`,
      `used memory ${formatBytes(memory.usedBytes)}`,
    ];
    if (
      ratio > thresholds['redis.fragmentationRatio'] &&
      excess > thresholds['redis.fragmentationMinBytes']
    ) {
      const jemalloc = (memory.allocator ?? '').startsWith('jemalloc');
      return [
        finding(
          'warning',
          `Memory fragmentation: the process holds ${formatBytes(excess)} more than its data needs (ratio ${ratio.toFixed(2)})`,
          [...evidence, `allocator ${memory.allocator ?? 'unknown'}`],
          'Freed memory the allocator cannot hand back stays with the process: the machine runs out of RAM before Redis reaches its limit.',
          jemalloc
            ? `CONFIG SET activedefrag yes\n# ${persistHint}; or restart the server (a replica first) to compact memory`
            : 'Restart the server (a replica first) to compact memory; active defragmentation needs jemalloc.',
        ),
      ];
    }
    if (ratio < 1 && -excess > thresholds['redis.fragmentationMinBytes']) {
      return [
        finding(
          'warning',
          `The OS holds less memory than Redis uses (ratio ${ratio.toFixed(2)}): part of it is swapped out`,
          evidence,
          'Swapped-out pages turn memory reads into disk reads: every command touching them stalls the single-threaded server.',
          'Give the machine more RAM or lower maxmemory, and turn swap off for Redis hosts (vm.swappiness=0 / 1).',
        ),
      ];
    }
    return [];
  },
);

const evictions = redisRule('redis.evictions', 'Keys evicted for lack of memory', ({ stats, memory }) => {
  if (stats.evictedKeys === 0) return [];
  const cache = memory.policy.startsWith('allkeys-');
  return [
    finding(
      cache ? 'info' : 'warning',
      `${formatCount(stats.evictedKeys)} key(s) evicted since the last restart or CONFIG RESETSTAT`,
      [
        `evicted_keys ${formatCount(stats.evictedKeys)}`,
        `maxmemory-policy ${memory.policy}`,
        `maxmemory ${formatBytes(memory.maxmemoryBytes)}`,
      ],
      cache
        ? 'Redis is at its memory limit and drops keys to make room: expected of a cache, but every evicted key is a miss the application pays for.'
        : 'Redis reached its memory limit and deleted keys that had a TTL before it ran out: data disappeared earlier than the application asked.',
      `CONFIG SET maxmemory <a higher limit>   # if the machine has the RAM\n# or shrink the data; CONFIG RESETSTAT restarts the count`,
    ),
  ];
});

const rejected = redisRule(
  'redis.rejected-connections',
  'Connections refused at maxclients',
  ({ stats }, facts) => {
    if (stats.rejectedConnections === 0) return [];
    return [
      finding(
        'warning',
        `${formatCount(stats.rejectedConnections)} connection(s) refused since the last restart or CONFIG RESETSTAT`,
        [
          `rejected_connections ${formatCount(stats.rejectedConnections)}`,
          ...(facts.connections
            ? [`maxclients ${facts.connections.max}`, `connected now ${facts.connections.current}`]
            : []),
        ],
        'Clients got "max number of clients reached": the application failed to connect. Usually a connection leak or pools too big for maxclients.',
        'CLIENT LIST   # find who holds the connections\nCONFIG SET maxclients <higher>   # only with file descriptors to spare\n# CONFIG RESETSTAT restarts the count',
      ),
    ];
  },
);

const persistence = redisRule(
  'redis.persistence',
  'Persistence errors (RDB snapshots, AOF)',
  ({ persistence: p }) => {
    const out: ReturnType<typeof finding>[] = [];
    if (p.rdbLastBgsaveStatus !== 'ok') {
      out.push(
        finding(
          'critical',
          'The last RDB snapshot (BGSAVE) failed',
          [
            `rdb_last_bgsave_status ${p.rdbLastBgsaveStatus}`,
            `last successful save ${formatSeconds(p.lastSaveAgeSeconds)} ago`,
            `${formatCount(p.changesSinceLastSave)} changes not saved`,
          ],
          'Nothing written since the last good snapshot survives a restart; with stop-writes-on-bgsave-error (the default) Redis also refuses every write until a save succeeds.',
          'Read the server log for the cause (disk full, permissions, fork failing for memory: vm.overcommit_memory=1), fix it, then: BGSAVE',
        ),
      );
    }
    if (p.aofEnabled && p.aofLastWriteStatus !== 'ok') {
      out.push(
        finding(
          'critical',
          'Writing the append-only file (AOF) failed',
          [`aof_last_write_status ${p.aofLastWriteStatus}`],
          'Writes are not reaching the AOF: they are lost on restart, and Redis refuses writes while it cannot append.',
          'Read the server log (disk full, permissions), free space or fix the volume; Redis retries by itself.',
        ),
      );
    }
    if (p.aofEnabled && p.aofLastBgrewriteStatus !== 'ok') {
      out.push(
        finding(
          'warning',
          'The last AOF rewrite failed',
          [`aof_last_bgrewrite_status ${p.aofLastBgrewriteStatus}`],
          'Without rewrites the append-only file keeps growing and a restart takes ever longer to replay it.',
          'Read the server log for the cause, fix it, then: BGREWRITEAOF',
        ),
      );
    }
    return out;
  },
);

/** `3600 1 300 100` → readable `after 3600 s if 1 change, …`. */
function describeSchedule(schedule: string): string {
  const n = schedule.split(/\s+/).filter(Boolean);
  const pairs: string[] = [];
  for (let i = 0; i + 1 < n.length; i += 2) pairs.push(`${n[i]} s / ${n[i + 1]} changes`);
  return pairs.join(', ') || schedule;
}

const durability = redisRule(
  'redis.durability',
  'Persistence configured and current',
  ({ persistence: p }, _facts, { thresholds }) => {
    if (p.saveSchedule === undefined) return null;
    if (p.saveSchedule === '' && !p.aofEnabled) {
      return [
        finding(
          'info',
          'Persistence is off: the data is lost on restart',
          ['save "" (no RDB snapshots)', 'appendonly no'],
          'Fine for a pure cache that can be rebuilt; anything else is gone when the process restarts or the machine reboots.',
          `# if the data must survive a restart:\nCONFIG SET appendonly yes\nCONFIG SET save "3600 1 300 100 60 10000"\n# ${persistHint}`,
        ),
      ];
    }
    if (
      p.saveSchedule !== '' &&
      !p.rdbBgsaveInProgress &&
      p.changesSinceLastSave > 0 &&
      p.lastSaveAgeSeconds > thresholds['redis.lastSaveWarnSeconds']
    ) {
      return [
        finding(
          'warning',
          `The last RDB snapshot is ${formatSeconds(p.lastSaveAgeSeconds)} old, with ${formatCount(p.changesSinceLastSave)} changes not saved`,
          [
            `last save ${formatSeconds(p.lastSaveAgeSeconds)} ago`,
            `rdb_changes_since_last_save ${formatCount(p.changesSinceLastSave)}`,
            `save schedule: ${describeSchedule(p.saveSchedule)}`,
            `AOF ${p.aofEnabled ? 'on' : 'off'}`,
          ],
          p.aofEnabled
            ? 'The AOF still has the changes, but a restore from the snapshot (a backup copy) would lose them.'
            : 'Everything written since the last snapshot is lost if the server stops now.',
          'BGSAVE   # and check the server log for why the schedule did not save\n# or tighten the schedule: CONFIG SET save "<seconds> <changes> …", then CONFIG REWRITE',
        ),
      ];
    }
    return [];
  },
);

const slowlog = redisRule('redis.slowlog', 'Slow log', ({ slowlog: s }, _facts, { thresholds }) => {
  if (!s) return null;
  if (s.length === 0) return [];
  const worst = s.top[0]?.durationMicros ?? 0;
  const severe = worst >= thresholds['redis.slowlogWarnMicros'];
  const ms = (us: number): string =>
    us >= 10_000 ? `${Math.round(us / 1000)} ms` : `${(us / 1000).toFixed(2)} ms`;
  return [
    finding(
      severe ? 'warning' : 'info',
      `${formatCount(s.length)} slow-log entr${s.length === 1 ? 'y' : 'ies'}, the slowest ${ms(worst)}`,
      [
        ...(s.slowerThanMicros !== undefined
          ? [`slowlog-log-slower-than ${formatCount(s.slowerThanMicros)} µs`]
          : []),
        ...s.top.map(
          (e) =>
            `${ms(e.durationMicros)}: ${e.command}${e.client ? ` from ${e.client}` : ''} at ${new Date(e.timestamp * 1000).toISOString()}`,
        ),
      ],
      'Redis runs one command at a time: while a slow one runs (KEYS, a big SORT, DEL of a huge key, a long Lua script) every other client waits.',
      'SLOWLOG GET 20   # the whole entries\n# replace KEYS with SCAN, DEL of big keys with UNLINK, paginate big reads (HSCAN, ZRANGE … LIMIT)\nSLOWLOG RESET   # once dealt with',
    ),
  ];
});

const bigKeys = redisRule('redis.big-keys', 'Big keys (sampled)', ({ keys }, _facts, { thresholds }) => {
  if (!keys) return null;
  const floor = thresholds['redis.bigKeyBytes'];
  const big = keys.biggest.filter((k) => k.bytes >= floor);
  if (big.length === 0) return [];
  const atLeast = big.length === keys.biggest.length && big.length >= 20 ? 'at least ' : '';
  return [
    finding(
      'warning',
      `${atLeast}${big.length} key(s) of ${formatBytes(floor)} or more in db${keys.db}`,
      [
        ...big.slice(0, 10).map((k) => `${k.key} (${k.type}): ${formatBytes(k.bytes)}`),
        ...(big.length > 10 ? [`… and ${big.length - 10} more`] : []),
        `${formatCount(keys.sampled)} key(s) sampled${keys.complete ? ' (all of them)' : ' with SCAN'}`,
      ],
      'Reading, writing, expiring or deleting a big key blocks the server for its whole size; it also unbalances a cluster and slows replication.',
      'Split it into smaller keys (e.g. hash buckets by id), read it in pages (HSCAN, SSCAN, ZRANGE … LIMIT), and delete with UNLINK, never DEL.',
    ),
  ];
});

const ttlShare = redisRule(
  'redis.ttl',
  'Keys without a TTL under a volatile eviction policy',
  ({ keyspace, memory }, _facts, { thresholds }) => {
    if (!memory.policy.startsWith('volatile-') || keyspace.keys === 0) return [];
    const without = keyspace.keys - keyspace.keysWithTtl;
    const share = without / keyspace.keys;
    if (share * 100 < thresholds['redis.noTtlWarnPercent']) return [];
    const limited = memory.maxmemoryBytes > 0;
    return [
      finding(
        limited ? 'warning' : 'info',
        `${formatPercent(share)} of the keys have no TTL, but the eviction policy ${memory.policy} only evicts keys with one`,
        [
          `${formatCount(without)} of ${formatCount(keyspace.keys)} keys without a TTL (all databases)`,
          `maxmemory-policy ${memory.policy}`,
          `maxmemory ${memory.maxmemoryBytes > 0 ? formatBytes(memory.maxmemoryBytes) : '0 (unlimited)'}`,
        ],
        'When memory is full there is little or nothing to evict: writes fail with OOM errors instead of making room.',
        `CONFIG SET maxmemory-policy allkeys-lru   # if every key may be evicted\n# or give the cache keys a TTL (SET … EX / EXPIRE)\n# ${persistHint}`,
      ),
    ];
  },
);

const loopback = (address: string): boolean => {
  const a = address.replace(/^-/, '');
  return a === '::1' || a === 'localhost' || a.startsWith('127.');
};

const auth = redisRule('redis.auth', 'Password on the default user', ({ security }) => {
  if (!security || security.defaultUserWithoutPassword === null) return null;
  if (!security.defaultUserWithoutPassword) return [];
  const exposed =
    security.protectedMode === false && (security.bind === null || security.bind.some((a) => !loopback(a)));
  return [
    finding(
      exposed ? 'critical' : 'warning',
      exposed
        ? 'Anyone who can reach the port can use this server: the default user has no password and protected mode is off'
        : 'The default user needs no password',
      [
        'ACL user "default": on, nopass (requirepass is empty)',
        `protected-mode ${security.protectedMode === null ? 'unknown' : security.protectedMode ? 'yes' : 'no'}`,
        `bind ${security.bind === null ? 'unknown' : security.bind.join(' ') || '(all interfaces)'}`,
      ],
      exposed
        ? 'Every client that connects is the default user: it can read and delete all data, and CONFIG SET lets it write files on the host.'
        : 'Every local process (and, should protected mode ever be turned off, every host) gets full access without a password.',
      'ACL SETUSER default on >a-long-random-password   # or: CONFIG SET requirepass <password>\n# then persist it: ACL SAVE (with an aclfile) or CONFIG REWRITE; give applications their own ACL users',
    ),
  ];
});

const protectedMode = redisRule('redis.protected-mode', 'Protected mode', ({ security }) => {
  if (!security || security.protectedMode === null || security.bind === null) return null;
  const exposed = security.bind.length === 0 || security.bind.some((a) => !loopback(a));
  if (security.protectedMode || !exposed) return [];
  // Protected mode only acts while the default user has no password; with one it changes nothing.
  const passwordSet = security.defaultUserWithoutPassword === false;
  return [
    finding(
      passwordSet ? 'info' : 'warning',
      `Protected mode is off and the server listens on ${security.bind.join(' ') || 'all interfaces'}`,
      [`protected-mode no`, `bind ${security.bind.join(' ') || '(all interfaces)'}`],
      passwordSet
        ? 'The default user has a password, so protected mode would change nothing now; it is the safety net should the password ever be removed.'
        : 'Protected mode is what keeps a password-less Redis from answering other hosts; without it, only the firewall stands between the data and the network.',
      `CONFIG SET protected-mode yes\n# or bind to the interfaces clients use only: bind 127.0.0.1 10.0.0.5 (redis.conf)\n# ${persistHint}`,
    ),
  ];
});

export const redisRules: Rule[] = [
  maxmemory,
  memoryUsage,
  fragmentation,
  evictions,
  rejected,
  persistence,
  durability,
  slowlog,
  bigKeys,
  ttlShare,
  auth,
  protectedMode,
];
