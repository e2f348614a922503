/**
 * Rules over the engine-neutral sections of the facts: server version and uptime, connections,
 * long-running, idle-in-transaction and blocked sessions, tables without a primary key, invalid,
 * duplicate, redundant and unused indexes, foreign keys without an index, replication.
 */
import type { IndexFact } from '../facts.js';
import { finding, formatBytes, formatCount, formatSeconds, type Rule } from '../rule.js';

export const commonThresholds = {
  /** Warn when connections in use reach this share of the maximum (percent). */
  'connections.warnPercent': 80,
  /** Critical at this share (percent). */
  'connections.criticalPercent': 95,
  /** A statement running longer than this (seconds) is reported. */
  'activity.longRunningSeconds': 60,
  /** A session idle inside a transaction longer than this (seconds) is a warning… */
  'activity.idleInTransactionSeconds': 60,
  /** …and critical beyond this (seconds): it holds locks and blocks cleanup. */
  'activity.idleInTransactionCriticalSeconds': 3600,
  /** A lock wait longer than this (seconds) is reported with its blocking chain. */
  'activity.lockWaitSeconds': 5,
  /** Unused indexes smaller than this (bytes) are not worth a finding. */
  'indexes.unusedMinBytes': 10_000_000,
  /** A replica further behind than this (seconds) is a warning… */
  'replication.lagWarnSeconds': 30,
  /** …and critical beyond this. */
  'replication.lagCriticalSeconds': 300,
  /** Uptime below this (seconds) is reported (info): the server restarted recently. */
  'server.recentRestartSeconds': 3600,
  /** Report the end of upstream support this many days ahead (info). */
  'server.endOfLifeNoticeDays': 180,
} satisfies Record<string, number>;

const listed = <T>(items: T[], show: (item: T) => string, max = 10): string[] => {
  const lines = items.slice(0, max).map(show);
  if (items.length > max) lines.push(`… and ${items.length - max} more`);
  return lines;
};

const versionSupport: Rule = {
  id: 'server.version',
  title: 'Server version still supported upstream',
  check({ server }, { thresholds }) {
    if (server.endOfLife === undefined) return null;
    if (server.endOfLife === null) return [];
    const days = (Date.parse(server.endOfLife) - Date.now()) / 86_400_000;
    if (days < 0) {
      return [
        finding(
          'warning',
          `${server.version} is past its end of life (${server.endOfLife})`,
          [`server version ${server.version}`, `upstream support ended ${server.endOfLife}`],
          'Versions past their end of life get no security or bug fixes.',
          'Plan an upgrade to a supported major version.',
        ),
      ];
    }
    if (days < thresholds['server.endOfLifeNoticeDays']) {
      return [
        finding(
          'info',
          `${server.version} reaches its end of life on ${server.endOfLife}`,
          [`${Math.ceil(days)} days of upstream support left`],
          'After that date the version gets no more security or bug fixes.',
          'Plan the upgrade to a newer major version.',
        ),
      ];
    }
    return [];
  },
};

const recentRestart: Rule = {
  id: 'server.uptime',
  title: 'Server uptime',
  check({ server }, { thresholds }) {
    if (server.uptimeSeconds === undefined) return null;
    if (server.uptimeSeconds >= thresholds['server.recentRestartSeconds']) return [];
    return [
      finding(
        'info',
        `The server restarted ${formatSeconds(server.uptimeSeconds)} ago`,
        [`uptime ${formatSeconds(server.uptimeSeconds)}`],
        'A restart nobody planned is worth a look at the server log; statistics such as index usage count from the restart (or the last reset) only.',
        null,
      ),
    ];
  },
};

const connectionUsage: Rule = {
  id: 'connections.usage',
  title: 'Connections in use vs the maximum',
  check({ connections }, { thresholds }) {
    if (!connections || connections.max <= 0) return null;
    const percent = (connections.current / connections.max) * 100;
    if (percent < thresholds['connections.warnPercent']) return [];
    return [
      finding(
        percent >= thresholds['connections.criticalPercent'] ? 'critical' : 'warning',
        `${connections.current} of ${connections.max} connections in use (${percent.toFixed(0)} %)`,
        [`connections: ${connections.current}`, `maximum: ${connections.max}`],
        'When the maximum is reached, new connections are refused: the application fails, and an operator may not get in either.',
        'Use a connection pooler (PgBouncer, ProxySQL) or smaller application pools; raise the maximum only with memory to spare.',
      ),
    ];
  },
};

const longRunning: Rule = {
  id: 'activity.long-running',
  title: 'Long-running statements',
  check({ activity }, { thresholds, fixes }) {
    if (!activity) return null;
    const slow = activity.longRunning.filter((s) => s.seconds > thresholds['activity.longRunningSeconds']);
    if (slow.length === 0) return [];
    return [
      finding(
        'warning',
        `${slow.length} statement(s) running longer than ${formatSeconds(thresholds['activity.longRunningSeconds'])}`,
        listed(
          slow,
          (s) =>
            `session ${s.id}${s.user ? ` (${s.user})` : ''}: ${formatSeconds(s.seconds)}: ${s.query ?? '?'}`,
        ),
        'Long statements hold locks and snapshots: they block schema changes and keep dead rows from being cleaned up.',
        slow.map((s) => fixes.cancel(s)).join('\n'),
      ),
    ];
  },
};

const idleInTransaction: Rule = {
  id: 'activity.idle-in-transaction',
  title: 'Sessions idle inside a transaction',
  check({ activity }, { thresholds, fixes }) {
    if (!activity) return null;
    const idle = activity.idleInTransaction.filter(
      (s) => s.seconds > thresholds['activity.idleInTransactionSeconds'],
    );
    if (idle.length === 0) return [];
    const worst = Math.max(...idle.map((s) => s.seconds));
    return [
      finding(
        worst > thresholds['activity.idleInTransactionCriticalSeconds'] ? 'critical' : 'warning',
        `${idle.length} session(s) idle in a transaction, the oldest for ${formatSeconds(worst)}`,
        listed(
          idle,
          (s) =>
            `session ${s.id}${s.user ? ` (${s.user})` : ''}${s.application ? ` [${s.application}]` : ''}: idle ${formatSeconds(s.seconds)}; last statement: ${s.query ?? '?'}`,
        ),
        'An open transaction keeps its locks and its snapshot: other sessions queue behind it and cleanup (vacuum, purge) cannot remove old row versions. Usually an application that forgot to commit.',
        idle.map((s) => fixes.terminate(s)).join('\n') +
          '\n-- then find the code path that leaves transactions open; a server-side limit catches the rest ' +
          '(PostgreSQL idle_in_transaction_session_timeout, MariaDB idle_transaction_timeout)',
      ),
    ];
  },
};

const blocked: Rule = {
  id: 'activity.lock-waits',
  title: 'Sessions waiting for locks',
  check({ activity }, { thresholds, fixes }) {
    if (!activity) return null;
    const waiting = activity.blocked.filter((s) => s.seconds > thresholds['activity.lockWaitSeconds']);
    if (waiting.length === 0) return [];
    // The root blockers: sessions others wait for that are not waiting themselves.
    const waitingIds = new Set(activity.blocked.map((s) => s.id));
    const roots = [...new Set(waiting.flatMap((s) => s.blockedBy))].filter((id) => !waitingIds.has(id));
    const known = new Map(
      [...activity.longRunning, ...activity.idleInTransaction, ...activity.blocked].map((s) => [s.id, s]),
    );
    return [
      finding(
        'warning',
        `${waiting.length} session(s) waiting for a lock, blocked by session(s) ${roots.join(', ') || '?'}`,
        listed(
          waiting,
          (s) =>
            `session ${s.id} waits ${formatSeconds(s.seconds)} for ${s.blockedBy.join(', ')}: ${s.query ?? '?'}`,
        ),
        'Every statement queued behind a lock is a request that hangs; a schema change waiting for a lock also blocks all readers behind it.',
        roots
          .map(
            (id) =>
              known.get(id) ?? { id, user: null, application: null, client: null, seconds: 0, query: null },
          )
          .map((s) => fixes.terminate(s))
          .join('\n') || null,
      ),
    ];
  },
};

const noPrimaryKey: Rule = {
  id: 'tables.no-primary-key',
  title: 'Tables without a primary key',
  check({ tables }) {
    if (!tables) return null;
    const missing = tables.filter((t) => !t.hasPrimaryKey);
    if (missing.length === 0) return [];
    return [
      finding(
        'warning',
        `${missing.length} table(s) without a primary key`,
        listed(missing, (t) => `${t.name}${t.rows !== null ? ` (~${formatCount(t.rows)} rows)` : ''}`),
        'Without a primary key rows cannot be addressed reliably: logical replication and many tools (and ORMs) cannot update or delete them one by one, and duplicates creep in.',
        'ALTER TABLE <table> ADD PRIMARY KEY (<column>);  -- or add an identity column first',
      ),
    ];
  },
};

const invalidIndexes: Rule = {
  id: 'indexes.invalid',
  title: 'Invalid indexes',
  check({ indexes }, { fixes }) {
    if (!indexes) return null;
    const invalid = indexes.filter((i) => !i.valid);
    if (invalid.length === 0) return [];
    return [
      finding(
        'warning',
        `${invalid.length} invalid index(es)`,
        listed(invalid, (i) => `${i.name} on ${i.table}`),
        'An interrupted CREATE INDEX CONCURRENTLY leaves an index that queries never use but every write still maintains.',
        invalid.map((i) => fixes.dropIndex(i)).join('\n') + '\n-- then create it again',
      ),
    ];
  },
};

/** Indexes by table: the index rules compare indexes of one table only (linear, not quadratic). */
function groupByTable(indexes: IndexFact[]): Map<string, IndexFact[]> {
  const byTable = new Map<string, IndexFact[]>();
  for (const index of indexes) {
    const list = byTable.get(index.table);
    if (list) list.push(index);
    else byTable.set(index.table, [index]);
  }
  return byTable;
}

/** The key parts an index really holds, with the engine's implicit suffix (InnoDB primary key). */
function effectiveColumns(index: IndexFact): string[] {
  const extra = (index.implicitSuffix ?? []).filter((c) => !index.columns.includes(c));
  return [...index.columns, ...extra];
}

function startsWith(longer: string[], prefix: string[]): boolean {
  return prefix.length <= longer.length && prefix.every((c, i) => longer[i] === c);
}

/**
 * The index that makes `a` unnecessary, if any: another valid index on the same table with the
 * same method and predicate whose key starts with all of a's key parts. Between two identical
 * plain indexes only one is reported (the later name), never both.
 */
function coveringIndex(a: IndexFact, sameTable: IndexFact[]): IndexFact | undefined {
  if (!a.valid || a.primary || a.constraint !== null) return undefined;
  return sameTable.find((b) => {
    if (b === a || !b.valid || b.method !== a.method) return false;
    if ((b.predicate ?? '') !== (a.predicate ?? '')) return false;
    const bColumns = effectiveColumns(b);
    if (a.unique) {
      // A unique index enforces something: only an identical unique one makes it redundant.
      const identical = a.columns.length === b.columns.length && startsWith(b.columns, a.columns);
      return identical && (b.unique || b.primary) && (b.primary || b.constraint !== null || b.name < a.name);
    }
    if (!startsWith(bColumns, a.columns)) return false;
    const aColumns = effectiveColumns(a);
    const sameKey = aColumns.length === bColumns.length && startsWith(bColumns, aColumns);
    if (!sameKey) return true;
    // The same key stored twice: keep the one that enforces something, else the one declared
    // with fewer columns ((a) over (a, id) when id is implicit), else the first by name.
    if (b.unique || b.primary || b.constraint !== null) return true;
    if (a.columns.length !== b.columns.length) return a.columns.length > b.columns.length;
    return b.name < a.name;
  });
}

const duplicateIndexes: Rule = {
  id: 'indexes.duplicate',
  title: 'Duplicate and redundant indexes',
  check({ indexes }, { fixes }) {
    if (!indexes) return null;
    const byTable = groupByTable(indexes);
    const pairs = indexes
      .map((a) => ({ a, b: coveringIndex(a, byTable.get(a.table) ?? []) }))
      .filter((p): p is { a: IndexFact; b: IndexFact } => p.b !== undefined);
    if (pairs.length === 0) return [];
    const wasted = pairs.reduce((sum, p) => sum + (p.a.sizeBytes ?? 0), 0);
    return [
      finding(
        'warning',
        `${pairs.length} duplicate or redundant index(es)${wasted > 0 ? `, ${formatBytes(wasted)}` : ''}`,
        listed(
          pairs,
          ({ a, b }) =>
            `${a.name} (${a.columns.join(', ')}) on ${a.table} is covered by ${b.name} (${b.columns.join(', ')})`,
        ),
        'Every index slows down writes and takes memory; one whose leading columns another index already has serves no query the other cannot.',
        pairs.map((p) => fixes.dropIndex(p.a)).join('\n'),
      ),
    ];
  },
};

const unusedIndexes: Rule = {
  id: 'indexes.unused',
  title: 'Unused indexes',
  check({ indexes, statsSince }, { thresholds, fixes }) {
    if (!indexes || indexes.every((i) => i.scans === null)) return null;
    const unused = indexes.filter(
      (i) =>
        i.scans === 0 &&
        i.valid &&
        !i.unique &&
        !i.primary &&
        i.constraint === null &&
        (i.sizeBytes ?? 0) >= thresholds['indexes.unusedMinBytes'],
    );
    if (unused.length === 0) return [];
    const since = statsSince ? ` since ${statsSince}` : ' since statistics were last reset';
    return [
      finding(
        'warning',
        `${unused.length} index(es) never used${since}, ${formatBytes(unused.reduce((s, i) => s + (i.sizeBytes ?? 0), 0))}`,
        listed(unused, (i) => `${i.name} on ${i.table}: 0 scans, ${formatBytes(i.sizeBytes ?? 0)}`),
        'An index no query uses still costs every insert and update, and disk and cache space. Check replicas too: an index unused here may serve queries there.',
        unused.map((i) => fixes.dropIndex(i)).join('\n'),
      ),
    ];
  },
};

const foreignKeysWithoutIndex: Rule = {
  id: 'indexes.foreign-key-without-index',
  title: 'Foreign keys without a supporting index',
  check({ foreignKeys, indexes }, { fixes }) {
    if (!foreignKeys || !indexes) return null;
    const byTable = groupByTable(indexes);
    const unsupported = foreignKeys.filter(
      (fk) =>
        !(byTable.get(fk.table) ?? []).some((i) => {
          if (!i.valid || i.predicate !== null) return false;
          const leading = i.columns.slice(0, fk.columns.length);
          return leading.length === fk.columns.length && fk.columns.every((c) => leading.includes(c));
        }),
    );
    if (unsupported.length === 0) return [];
    return [
      finding(
        'warning',
        `${unsupported.length} foreign key(s) without an index on their columns`,
        listed(
          unsupported,
          (fk) => `${fk.table} (${fk.columns.join(', ')}) → ${fk.referencedTable} [${fk.name}]`,
        ),
        'Deleting or updating a referenced row must find its referencing rows: without an index that is a full scan of the referencing table, under lock, for every such row.',
        unsupported.map((fk) => fixes.createIndexFor(fk)).join('\n'),
      ),
    ];
  },
};

const replicationLag: Rule = {
  id: 'replication.lag',
  title: 'Replication lag and link',
  check({ replication }, { thresholds }) {
    if (!replication || replication.role !== 'replica') return null;
    if (replication.linkUp === false) {
      return [
        finding(
          'critical',
          'This replica is not replicating: its link to the primary is down',
          [`lag: ${replication.lagSeconds == null ? 'unknown' : formatSeconds(replication.lagSeconds)}`],
          'A replica that stopped falls further behind every second: reads from it are stale and it cannot take over.',
          'Check the replica’s log and its connection to the primary, then restart replication.',
        ),
      ];
    }
    const lag = replication.lagSeconds;
    if (lag == null || lag <= thresholds['replication.lagWarnSeconds']) return [];
    return [
      finding(
        lag > thresholds['replication.lagCriticalSeconds'] ? 'critical' : 'warning',
        `This replica is ${formatSeconds(lag)} behind its primary`,
        [`lag: ${formatSeconds(lag)}`],
        'Reads from a lagging replica return old data, and a failover to it would lose the changes it has not applied.',
        'Look for long transactions or heavy writes on the primary, and for I/O or CPU limits on the replica.',
      ),
    ];
  },
};

export const commonRules: Rule[] = [
  versionSupport,
  recentRestart,
  connectionUsage,
  longRunning,
  idleInTransaction,
  blocked,
  noPrimaryKey,
  invalidIndexes,
  duplicateIndexes,
  unusedIndexes,
  foreignKeysWithoutIndex,
  replicationLag,
];
