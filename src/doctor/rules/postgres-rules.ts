/**
 * Rules judging the postgres section of the facts (src/doctor/facts/postgres-facts.ts):
 * transaction-ID wraparound, sequences near their limit, constraints never validated, inactive
 * replication slots, cache hit ratio, table and index bloat, dead rows and autovacuum, the
 * largest relations, pg_stat_statements and TLS. Pure functions of collected facts, unit-tested
 * without a server; docs/doctor.md lists each check with its threshold.
 */
import type { BloatEstimate, SequenceFact } from '../facts/postgres-facts.js';
import type { Finding } from '../finding.js';
import { finding, formatBytes, formatCount, formatPercent, type Rule } from '../rule.js';

export const postgresThresholds = {
  /** Transaction-ID (or multixact) age at this share of the 2^31 wraparound limit is a warning (percent)… */
  'pg.wraparoundWarnPercent': 30,
  /** …and critical at this share (percent); PostgreSQL stops accepting writes near 100 %. */
  'pg.wraparoundCriticalPercent': 50,
  /** A sequence (or the integer column it feeds) this full is a warning (percent)… */
  'pg.sequenceWarnPercent': 90,
  /** …and critical this full (percent). */
  'pg.sequenceCriticalPercent': 98,
  /** An inactive replication slot holding back this much WAL is critical, not a warning (bytes). */
  'pg.slotRetainedCriticalBytes': 10_000_000_000,
  /** The cache hit ratio is judged only after this many block reads (misses) since the statistics reset. */
  'pg.cacheMinReads': 10_000,
  /** A hit ratio below this is reported as info (percent)… */
  'pg.cacheHitInfoPercent': 99,
  /** …and below this as a warning (percent). */
  'pg.cacheHitWarnPercent': 90,
  /** Tables and indexes smaller than this are not judged for bloat (bytes; estimates start at 1 MB). */
  'pg.bloatMinBytes': 10_000_000,
  /** Estimated wasted share of a table or index from which it is reported (percent). */
  'pg.bloatWarnPercent': 50,
  /** Dead rows are reported from this many in one table… */
  'pg.deadTuplesMin': 10_000,
  /** …when they are at least this share of its rows (percent) and past autovacuum's trigger. */
  'pg.deadTuplesWarnPercent': 20,
} satisfies Record<string, number>;

/** Transaction IDs and multixact IDs wrap around at 2^31. */
const wraparoundLimit = 2 ** 31;

const listed = <T>(items: T[], show: (item: T) => string, max = 10): string[] => {
  const lines = items.slice(0, max).map(show);
  if (items.length > max) lines.push(`… and ${items.length - max} more`);
  return lines;
};

/** A SQL string literal. */
const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

const wraparound: Rule = {
  id: 'pg.wraparound',
  title: 'Transaction-ID wraparound',
  check({ postgres }, { thresholds }) {
    const w = postgres?.wraparound;
    if (!w) return null;
    const oldestXid = Math.max(0, ...w.databases.map((d) => d.xidAge));
    const oldestMulti = Math.max(0, ...w.databases.map((d) => d.multixactAge));
    const share = Math.max(oldestXid, oldestMulti) / wraparoundLimit;
    const warn = thresholds['pg.wraparoundWarnPercent'] / 100;
    const critical = thresholds['pg.wraparoundCriticalPercent'] / 100;
    const pastFreeze = oldestXid > w.freezeMaxAge || oldestMulti > w.multixactFreezeMaxAge;
    if (share < warn && !pastFreeze) return [];
    const severity = share >= critical ? 'critical' : share >= warn ? 'warning' : 'info';
    const databases = [...w.databases].sort(
      (a, b) => Math.max(b.xidAge, b.multixactAge) - Math.max(a.xidAge, a.multixactAge),
    );
    const evidence = [
      ...listed(
        databases,
        (d) =>
          `database ${d.name}: transaction age ${formatCount(d.xidAge)} (${formatPercent(d.xidAge / wraparoundLimit)} of the limit), multixact age ${formatCount(d.multixactAge)}`,
        3,
      ),
      ...listed(w.tables, (t) => `table ${t.name} (this database): age ${formatCount(t.xidAge)}`, 5),
      `autovacuum_freeze_max_age ${formatCount(w.freezeMaxAge)}, autovacuum_multixact_freeze_max_age ${formatCount(w.multixactFreezeMaxAge)}`,
    ];
    const title =
      severity === 'info'
        ? `The oldest unfrozen transaction ID is past autovacuum_freeze_max_age: anti-wraparound vacuums are due`
        : `Transaction-ID wraparound is ${formatPercent(share)} of the way: ${formatCount(wraparoundLimit - Math.max(oldestXid, oldestMulti))} IDs left`;
    return [
      finding(
        severity,
        title,
        evidence,
        'PostgreSQL numbers transactions with 32-bit IDs: rows must be frozen by VACUUM before the counter wraps, and close to the limit the server refuses all writes until a manual VACUUM finishes. Ages keep rising when vacuum cannot finish or something holds old snapshots.',
        [
          ...w.tables.slice(0, 3).map((t) => `VACUUM (FREEZE, VERBOSE) ${t.name};`),
          '-- in each old database: VACUUM (FREEZE, VERBOSE); and look for what holds it back:',
          '-- long or idle-in-transaction sessions, prepared transactions (pg_prepared_xacts), stale replication slots',
        ].join('\n'),
      ),
    ];
  },
};

function sequenceRatio(s: SequenceFact): number {
  const max = Number(s.maxValue);
  return max > 0 ? Number(s.lastValue) / max : 0;
}

function sequenceFix(s: SequenceFact): string {
  const seq = `ALTER SEQUENCE ${s.name} AS bigint;`;
  if (s.table && s.column) {
    return `ALTER TABLE ${s.table} ALTER COLUMN ${s.column} TYPE bigint;  -- rewrites the table under an exclusive lock\n${seq}`;
  }
  return `${seq}  -- or ALTER SEQUENCE ${s.name} MAXVALUE <higher>;`;
}

const sequenceOverflow: Rule = {
  id: 'pg.sequence-overflow',
  title: 'Sequences and integer columns near their maximum',
  check({ postgres }, { thresholds }) {
    const facts = postgres?.sequences;
    if (!facts) return null;
    const warn = thresholds['pg.sequenceWarnPercent'] / 100;
    const critical = thresholds['pg.sequenceCriticalPercent'] / 100;
    const full = facts.sequences
      .map((s) => ({ s, ratio: sequenceRatio(s) }))
      .filter((x) => x.ratio >= warn)
      .sort((a, b) => b.ratio - a.ratio);
    const found: Omit<Finding, 'id'>[] = [];
    const why =
      'When a sequence reaches its maximum (or the column it feeds, its type’s maximum), every insert fails: the table stops taking rows until the type is widened, which rewrites it.';
    for (const severity of ['critical', 'warning'] as const) {
      const group = full.filter((x) => (severity === 'critical' ? x.ratio >= critical : x.ratio < critical));
      if (group.length === 0) continue;
      found.push(
        finding(
          severity,
          `${group.length} sequence(s) ${severity === 'critical' ? 'almost exhausted' : 'running out'}: ${group[0]?.s.name} is ${formatPercent(group[0]?.ratio ?? 0)} used`,
          listed(
            group,
            ({ s, ratio }) =>
              `${s.name}${s.column ? ` → ${s.table}.${s.column} (${s.type})` : ` (${s.type})`}: ${s.lastValue} of ${s.maxValue} (${formatPercent(ratio)})`,
          ),
          why,
          group.map((x) => sequenceFix(x.s)).join('\n'),
        ),
      );
    }
    if (facts.unreadable.length > 0) {
      found.push(
        finding(
          'info',
          `${facts.unreadable.length} sequence(s) could not be read, so their use is unknown`,
          listed(facts.unreadable, (name) => name),
          'Reading a sequence’s last value needs SELECT or USAGE on it.',
          `GRANT SELECT ON SEQUENCE ${facts.unreadable.slice(0, 10).join(', ')} TO <doctor login>;`,
        ),
      );
    }
    return found;
  },
};

const notValidated: Rule = {
  id: 'pg.constraints-not-validated',
  title: 'Constraints added NOT VALID and never validated',
  check({ postgres }) {
    const constraints = postgres?.notValidatedConstraints;
    if (!constraints) return null;
    if (constraints.length === 0) return [];
    return [
      finding(
        'warning',
        `${constraints.length} constraint(s) never validated`,
        listed(constraints, (c) => `${c.type} ${c.name} on ${c.table}`),
        'A constraint added NOT VALID holds for new rows only: existing rows were never checked, and the planner cannot rely on it.',
        constraints
          .map((c) => `ALTER TABLE ${c.table} VALIDATE CONSTRAINT ${quoteName(c.name)};`)
          .join('\n') +
          '\n-- validation takes only a SHARE UPDATE EXCLUSIVE lock; fix rows that violate it first',
      ),
    ];
  },
};

/** An identifier quoted unless it is a plain lower-case name (rules get raw constraint names). */
function quoteName(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

const replicationSlots: Rule = {
  id: 'pg.replication-slots',
  title: 'Inactive replication slots',
  check({ postgres }, { thresholds }) {
    const slots = postgres?.replicationSlots;
    if (!slots) return null;
    const inactive = slots.filter((s) => !s.active);
    if (inactive.length === 0) return [];
    const retained = Math.max(0, ...inactive.map((s) => s.retainedBytes ?? 0));
    return [
      finding(
        retained >= thresholds['pg.slotRetainedCriticalBytes'] ? 'critical' : 'warning',
        `${inactive.length} inactive replication slot(s)${retained > 0 ? `, holding back up to ${formatBytes(retained)} of WAL` : ''}`,
        listed(
          inactive,
          (s) =>
            `${s.name} (${s.type}${s.database ? `, database ${s.database}` : ''}): retains ${s.retainedBytes === null ? 'unknown' : formatBytes(s.retainedBytes)} of WAL${s.walStatus ? `, wal_status ${s.walStatus}` : ''}`,
        ),
        'A slot nobody consumes keeps every WAL segment from its position on (until the disk fills, unless max_slot_wal_keep_size is set), and a logical slot also holds back vacuum of the catalogs.',
        inactive.map((s) => `SELECT pg_drop_replication_slot(${literal(s.name)});`).join('\n') +
          '\n-- only if no replica or consumer will come back for it',
      ),
    ];
  },
};

const cacheHit: Rule = {
  id: 'pg.cache-hit',
  title: 'Buffer cache hit ratio',
  check({ postgres }, { thresholds }) {
    const cache = postgres?.cache;
    if (!cache) return null;
    const found: Omit<Finding, 'id'>[] = [];
    for (const [kind, hit, read] of [
      ['table', cache.heapHit, cache.heapRead],
      ['index', cache.indexHit, cache.indexRead],
    ] as const) {
      if (read < thresholds['pg.cacheMinReads']) continue;
      const ratio = hit / (hit + read);
      if (ratio * 100 >= thresholds['pg.cacheHitInfoPercent']) continue;
      found.push(
        finding(
          ratio * 100 < thresholds['pg.cacheHitWarnPercent'] ? 'warning' : 'info',
          `${kind === 'table' ? 'Table' : 'Index'} cache hit ratio is ${formatPercent(ratio)}`,
          [
            `${formatCount(hit)} ${kind} blocks found in shared buffers, ${formatCount(read)} read from the OS or disk (since the statistics reset)`,
          ],
          'Blocks not in shared buffers come from the OS cache at best, from disk at worst: an OLTP database usually serves over 99 % from memory. Right after a bulk load, new pages count as reads too.',
          'Look at the largest tables and the queries that scan them; consider more shared_buffers (about 25 % of RAM) or more memory. SELECT pg_stat_reset(); starts the count afresh.',
        ),
      );
    }
    return found;
  },
};

function bloatRule(id: string, kind: 'table' | 'index'): Rule {
  return {
    id,
    title: kind === 'table' ? 'Table bloat (estimate)' : 'B-tree index bloat (estimate)',
    check({ postgres }, { thresholds }) {
      const bloat = postgres?.bloat;
      if (!bloat) return null;
      const estimates: BloatEstimate[] = kind === 'table' ? bloat.tables : bloat.indexes;
      const bloated = estimates
        .filter(
          (e) =>
            e.bytes >= thresholds['pg.bloatMinBytes'] &&
            e.bytes > 0 &&
            (e.wastedBytes / e.bytes) * 100 >= thresholds['pg.bloatWarnPercent'],
        )
        .sort((a, b) => b.wastedBytes - a.wastedBytes);
      const found: Omit<Finding, 'id'>[] = [];
      if (bloated.length > 0) {
        const wasted = bloated.reduce((sum, e) => sum + e.wastedBytes, 0);
        found.push(
          finding(
            'warning',
            `${bloated.length} ${kind === 'table' ? 'table(s)' : 'index(es)'} with an estimated ${formatBytes(wasted)} of bloat`,
            listed(
              bloated,
              (e) =>
                `${e.name}${e.table ? ` on ${e.table}` : ''}: ${formatBytes(e.bytes)}, about ${formatBytes(e.wastedBytes)} (${formatPercent(e.wastedBytes / e.bytes)}) beyond what its rows need`,
            ),
            'Space freed by updates and deletes is reused but not returned: a bloated relation is read and cached in full, so scans and the cache work harder than the live rows need. (An estimate from planner statistics; pgstattuple measures it exactly.)',
            kind === 'table'
              ? bloated
                  .map(
                    (e) =>
                      `VACUUM FULL ${e.name};  -- locks the table exclusively; without downtime: pg_repack --table=${e.name}`,
                  )
                  .join('\n')
              : bloated.map((e) => `REINDEX INDEX CONCURRENTLY ${e.name};`).join('\n'),
          ),
        );
      }
      if (kind === 'table' && bloat.unestimated.length > 0) {
        found.push(
          finding(
            'info',
            `${bloat.unestimated.length} relation(s) of 1 MB or more could not be estimated for bloat`,
            listed(bloat.unestimated, (name) => name),
            'The estimate needs column statistics: the relation was never analyzed, or pg_stats hides its columns from this login (it shows only columns the login may SELECT).',
            'ANALYZE <table>;  -- or GRANT SELECT ON <table> TO <doctor login>;',
          ),
        );
      }
      return found;
    },
  };
}

const deadTuples: Rule = {
  id: 'pg.dead-tuples',
  title: 'Dead rows waiting for vacuum',
  check({ postgres }, { thresholds }) {
    const tables = postgres?.deadTuples;
    if (!tables) return null;
    const lagging = tables.filter(
      (t) =>
        t.dead >= thresholds['pg.deadTuplesMin'] &&
        (t.dead / Math.max(1, t.dead + t.live)) * 100 >= thresholds['pg.deadTuplesWarnPercent'] &&
        t.dead > t.autovacuumTrigger,
    );
    if (lagging.length === 0) return [];
    return [
      finding(
        'warning',
        `${lagging.length} table(s) with many dead rows autovacuum has not cleaned up`,
        listed(
          lagging,
          (t) =>
            `${t.table}: ${formatCount(t.dead)} dead vs ${formatCount(t.live)} live rows (${formatPercent(t.dead / (t.dead + t.live))}); last autovacuum ${t.lastAutovacuum ?? 'never'}, last vacuum ${t.lastVacuum ?? 'never'}${t.autovacuumDisabled ? '; autovacuum is disabled on it' : ''}`,
        ),
        'Dead rows take space and slow scans until vacuum removes them; a table autovacuum does not keep up with bloats and its index-only scans degrade. Usually long transactions block cleanup, autovacuum is throttled, or it is turned off.',
        lagging
          .map(
            (t) =>
              `VACUUM (VERBOSE, ANALYZE) ${t.table};${t.autovacuumDisabled ? `\nALTER TABLE ${t.table} RESET (autovacuum_enabled);` : ''}`,
          )
          .join('\n'),
      ),
    ];
  },
};

const autovacuum: Rule = {
  id: 'pg.autovacuum',
  title: 'Autovacuum enabled',
  check({ postgres }) {
    const settings = postgres?.autovacuum;
    if (!settings) return null;
    const off = [
      ...(settings.enabled === false ? ['autovacuum = off'] : []),
      ...(settings.trackCounts === false ? ['track_counts = off (autovacuum needs it)'] : []),
    ];
    if (off.length === 0) return [];
    return [
      finding(
        'warning',
        'Autovacuum is turned off',
        off,
        'Without autovacuum nothing removes dead rows or refreshes planner statistics on its own, and only a forced anti-wraparound vacuum stands between the server and transaction-ID wraparound.',
        [
          ...(settings.enabled === false ? ["ALTER SYSTEM SET autovacuum = 'on';"] : []),
          ...(settings.trackCounts === false ? ["ALTER SYSTEM SET track_counts = 'on';"] : []),
          'SELECT pg_reload_conf();',
        ].join('\n'),
      ),
    ];
  },
};

const largest: Rule = {
  id: 'pg.largest',
  title: 'Largest tables and databases',
  check({ postgres }) {
    const largestFacts = postgres?.largest;
    if (!largestFacts) return null;
    const { tables, databases } = largestFacts;
    if (tables.length === 0 && databases.length === 0) return [];
    const top = tables[0];
    return [
      finding(
        'info',
        top ? `Largest table: ${top.name} (${formatBytes(top.bytes)})` : 'Largest databases',
        [
          ...tables.map((t) => `table ${t.name}: ${formatBytes(t.bytes)} with indexes and TOAST`),
          ...databases.map((d) => `database ${d.name}: ${formatBytes(d.bytes)}`),
        ],
        'Where the space goes: the first place to look for growth, bloat and archiving candidates.',
        null,
      ),
    ];
  },
};

const statStatements: Rule = {
  id: 'pg.stat-statements',
  title: 'pg_stat_statements installed',
  check({ postgres }) {
    const s = postgres?.statStatements;
    if (!s) return null;
    if (s.installed) return [];
    const create = 'CREATE EXTENSION pg_stat_statements;  -- in this database';
    const preload = `ALTER SYSTEM SET shared_preload_libraries = ${literal(
      s.preloadLibraries ? `${s.preloadLibraries}, pg_stat_statements` : 'pg_stat_statements',
    )};\n-- restart PostgreSQL, then:\n${create}`;
    const steps = !s.available
      ? `-- install the server's contrib package (e.g. postgresql-contrib), then:\n${preload}`
      : s.preloaded === true
        ? create
        : s.preloaded === false
          ? preload
          : `-- if SHOW shared_preload_libraries does not list pg_stat_statements:\n${preload}`;
    return [
      finding(
        'info',
        'pg_stat_statements is not installed in this database',
        [
          `available on the server: ${s.available ? 'yes' : 'no'}`,
          `in shared_preload_libraries: ${s.preloaded === null ? 'unknown (setting not readable)' : s.preloaded ? 'yes' : 'no'}`,
        ],
        'pg_stat_statements records the time every statement takes: without it, the queries that load the server cannot be found.',
        steps,
      ),
    ];
  },
};

const ssl: Rule = {
  id: 'pg.ssl',
  title: 'Connections encrypted with TLS',
  check({ postgres }) {
    const facts = postgres?.ssl;
    if (!facts) return null;
    const found: Omit<Finding, 'id'>[] = [];
    // Over a Unix socket or a loopback address traffic never leaves the host: not judged.
    if (facts.own.transport === 'network' && !facts.own.encrypted) {
      found.push(
        finding(
          'warning',
          'This connection to the server is not encrypted',
          [
            `doctor connected over the network without TLS (server ssl = ${facts.serverSsl === null ? 'unknown' : facts.serverSsl ? 'on' : 'off'})`,
          ],
          'Without TLS every query and result crosses the network in clear text, where it can be read or altered on the way.',
          `${facts.serverSsl === false ? "-- on the server: a certificate, then ALTER SYSTEM SET ssl = 'on'; SELECT pg_reload_conf();\n" : ''}-- in the URL: ?sslmode=verify-full (or sslmode=require)`,
        ),
      );
    }
    if (facts.unencryptedOthers.length > 0) {
      found.push(
        finding(
          'info',
          `${facts.unencryptedOthers.length} of ${facts.networkSessions} network session(s) are not encrypted`,
          listed(
            facts.unencryptedOthers,
            (s) => `session ${s.id}${s.user ? ` (${s.user})` : ''} from ${s.client}`,
          ),
          'These clients talk to the server over the network in clear text: fine on a private network you trust, not across anything else.',
          '-- pg_hba.conf: hostssl instead of host for remote clients; clients: sslmode=verify-full',
        ),
      );
    }
    return found;
  },
};

export const postgresRules: Rule[] = [
  wraparound,
  sequenceOverflow,
  notValidated,
  replicationSlots,
  autovacuum,
  deadTuples,
  bloatRule('pg.table-bloat', 'table'),
  bloatRule('pg.index-bloat', 'index'),
  cacheHit,
  statStatements,
  ssl,
  largest,
];
