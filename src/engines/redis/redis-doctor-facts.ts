/**
 * The Redis doctor collector: the facts src/doctor/rules judge, read-only and bounded.
 *
 * Round trips: one INFO; CONFIG GET for five parameters and ACL GETUSER default, sent together;
 * SLOWLOG LEN + GET together; then for the big-key sample at most ⌈sampleKeys / 1000⌉ × 4 SCAN
 * calls and ⌈sampleKeys / 1000⌉ pipelined MEMORY USAGE batches, and one TYPE batch for the
 * biggest keys. Every one is bounded by the statement timeout. CONFIG, SLOWLOG, ACL and MEMORY
 * may be refused by ACLs: the checks that need them are skipped with the ACL rule that enables
 * them. Only INFO is required (without it there is nothing to judge).
 */
import { DbwardError } from '../../core/errors.js';
import type { DoctorFacts, ReplicationFacts } from '../../doctor/facts.js';
import type {
  RedisFacts,
  RedisKeySampleFacts,
  RedisSecurityFacts,
  RedisSlowlogEntry,
  RedisSlowlogFacts,
} from '../../doctor/facts/redis-facts.js';
import type { SkippedCheck } from '../../doctor/finding.js';
import type { DoctorFixes } from '../../doctor/rule.js';
import type { DoctorCollectContext, DoctorFactsRole, EngineConnection } from '../contract.js';
import {
  classify,
  failureReason,
  TimedCommands,
  type Attempt,
  type CommandFailure,
} from './redis-doctor-commands.js';
import { parseKeyspaces, parseRedisInfo } from './redis-info.js';
import { redisDbIndex } from './redis-options.js';

const scanCount = 1_000;
const memoryBatch = 1_000;
const keepBiggest = 20;
const slowlogFetch = 128;
const slowlogKeep = 10;

export const redisDoctorFixes: DoctorFixes = {
  dropIndex: () => '# Not applicable: Redis has no indexes.',
  createIndexFor: () => '# Not applicable: Redis has no foreign keys or indexes.',
  cancel: (s) => `# Redis cannot cancel a running command; end the client instead:\nCLIENT KILL ID ${s.id}`,
  terminate: (s) => `CLIENT KILL ID ${s.id}`,
};

export const redisDoctorFactsRole: DoctorFactsRole = {
  collect: (conn, ctx) => collectRedisFacts(conn, ctx),
  fixes: redisDoctorFixes,
};

async function collectRedisFacts(conn: EngineConnection, ctx: DoctorCollectContext): Promise<DoctorFacts> {
  if (conn.kind !== 'keyvalue') {
    throw new DbwardError('E_INTERNAL', 'The Redis doctor needs a key-value connection.', {
      context: { engine: 'redis', target: ctx.target.name, operation: 'doctor' },
    });
  }
  const cmd = new TimedCommands(conn, ctx.statementTimeoutMs);
  const user = ctx.spec.user || 'default';
  const skipped: SkippedCheck[] = [];
  const skip = (id: string, reason: string, grant?: string): void => {
    skipped.push({ id, reason, ...(grant ? { enableWith: `ACL SETUSER ${user} ${grant}` } : {}) });
  };

  const infoReply = await cmd.attempt<string>('INFO');
  if (!infoReply.ok) {
    throw new DbwardError('E_DOCTOR_INFO', failureReason('INFO', infoReply.failure, infoReply.message), {
      hint: `Doctor reads everything else from INFO: ACL SETUSER ${user} +info`,
      context: { engine: 'redis', target: ctx.target.name, operation: 'doctor' },
    });
  }
  const info = parseRedisInfo(String(infoReply.value));
  const num = (field: string): number => Number(info.get(field) ?? 0) || 0;

  // Sent together (one round trip); each may be refused on its own.
  const [save, maxclients, protectedMode, bind, slowerThan, aclDefault, slowlogLen, slowlogGet] =
    await Promise.all([
      configGet(cmd, 'save'),
      info.has('maxclients') ? null : configGet(cmd, 'maxclients'),
      configGet(cmd, 'protected-mode'),
      configGet(cmd, 'bind'),
      configGet(cmd, 'slowlog-log-slower-than'),
      cmd.attempt<unknown[]>('ACL', 'GETUSER', 'default'),
      cmd.attempt<number>('SLOWLOG', 'LEN'),
      cmd.attempt<unknown[]>('SLOWLOG', 'GET', slowlogFetch),
    ]);

  const serverSeconds = info.has('server_time_usec')
    ? Math.floor(num('server_time_usec') / 1e6)
    : Math.floor(Date.now() / 1000);

  // Connections.
  const maxClients = info.has('maxclients')
    ? num('maxclients')
    : maxclients?.ok
      ? Number(maxclients.value)
      : NaN;
  const connections =
    Number.isFinite(maxClients) && maxClients > 0
      ? { max: maxClients, current: num('connected_clients') }
      : undefined;
  if (!connections && maxclients && !maxclients.ok) {
    skip(
      'connections.usage',
      failureReason('CONFIG GET maxclients', maxclients.failure, maxclients.message),
      '+config|get',
    );
  }

  // Persistence.
  if (!save.ok)
    skip('redis.durability', failureReason('CONFIG GET save', save.failure, save.message), '+config|get');

  // Slow log.
  let slowlog: RedisSlowlogFacts | undefined;
  if (slowlogLen.ok && slowlogGet.ok) {
    slowlog = {
      length: Number(slowlogLen.value),
      ...(slowerThan.ok ? { slowerThanMicros: Number(slowerThan.value) } : {}),
      top: parseSlowlog(slowlogGet.value),
    };
  } else {
    const failed = slowlogLen.ok ? slowlogGet : slowlogLen;
    if (!failed.ok)
      skip('redis.slowlog', failureReason('SLOWLOG', failed.failure, failed.message), '+slowlog');
  }

  // Security: the default user, protected mode, bind.
  const security = await securityFacts(cmd, aclDefault, protectedMode, bind, skip);

  // Keys: the exact TTL share from INFO keyspace; the big-key sample from SCAN + MEMORY USAGE.
  const keyspaces = parseKeyspaces(String(infoReply.value));
  const db = redisDbIndex(ctx.spec);
  const dbKeys = keyspaces.find((k) => k.db === db)?.keys ?? 0;
  let keys: RedisKeySampleFacts | undefined;
  if (ctx.sampleKeys > 0) {
    const sample = await sampleBigKeys(cmd, db, dbKeys, ctx.sampleKeys);
    if (sample.ok) keys = sample.value;
    else skip('redis.big-keys', failureReason(sample.what, sample.failure, sample.message), sample.grant);
  }

  const redis: RedisFacts = {
    memory: {
      usedBytes: num('used_memory'),
      rssBytes: num('used_memory_rss'),
      maxmemoryBytes: num('maxmemory'),
      policy: info.get('maxmemory_policy') ?? 'noeviction',
      fragmentationRatio: info.has('mem_fragmentation_ratio') ? num('mem_fragmentation_ratio') : null,
      allocator: info.get('mem_allocator') ?? null,
    },
    stats: {
      evictedKeys: num('evicted_keys'),
      rejectedConnections: num('rejected_connections'),
    },
    persistence: {
      rdbLastBgsaveStatus: info.get('rdb_last_bgsave_status') ?? 'ok',
      rdbBgsaveInProgress: info.get('rdb_bgsave_in_progress') === '1',
      lastSaveAgeSeconds: Math.max(0, serverSeconds - num('rdb_last_save_time')),
      changesSinceLastSave: num('rdb_changes_since_last_save'),
      aofEnabled: info.get('aof_enabled') === '1',
      aofLastWriteStatus: info.get('aof_last_write_status') ?? 'ok',
      aofLastBgrewriteStatus: info.get('aof_last_bgrewrite_status') ?? 'ok',
      ...(save.ok ? { saveSchedule: String(save.value).trim() } : {}),
    },
    keyspace: {
      keys: keyspaces.reduce((sum, k) => sum + k.keys, 0),
      keysWithTtl: keyspaces.reduce((sum, k) => sum + k.keysWithExpiry, 0),
    },
    ...(slowlog ? { slowlog } : {}),
    ...(keys ? { keys } : {}),
    ...(security ? { security } : {}),
  };

  return {
    server: {
      engine: 'redis',
      version: info.get('redis_version') ?? 'unknown',
      uptimeSeconds: num('uptime_in_seconds'),
      // Redis Open Source publishes no end-of-life dates for its versions (SECURITY.md only lists
      // which lines get security fixes today), so none are claimed here.
      endOfLife: null,
    },
    ...(connections ? { connections } : {}),
    replication: replicationFacts(info),
    redis,
    skipped,
  };
}

/** CONFIG GET one parameter: its value (`''` for an empty one), or why it could not be read. */
async function configGet(cmd: TimedCommands, name: string): Promise<Attempt<string>> {
  const reply = await cmd.attempt<unknown[]>('CONFIG', 'GET', name);
  if (!reply.ok) return reply;
  const pairs = Array.isArray(reply.value) ? reply.value.map(String) : [];
  const at = pairs.indexOf(name);
  if (at < 0 || at + 1 >= pairs.length) {
    return { ok: false, failure: 'unknown', message: `no parameter ${name}` };
  }
  return { ok: true, value: pairs[at + 1] as string };
}

function replicationFacts(info: Map<string, string>): ReplicationFacts {
  if (info.get('role') === 'slave') {
    const linkUp = info.get('master_link_status') === 'up' && info.get('master_sync_in_progress') !== '1';
    // A replica knows when it last heard from its primary, not the primary's offset: seconds
    // since the last I/O is the lag estimate (the primary pings every 10 s, so small values are
    // normal on an idle link).
    const lastIo = Number(info.get('master_last_io_seconds_ago'));
    return {
      role: 'replica',
      linkUp,
      lagSeconds: linkUp && Number.isFinite(lastIo) && lastIo >= 0 ? lastIo : null,
    };
  }
  const replicas = Number(info.get('connected_slaves') ?? 0) || 0;
  return replicas > 0 ? { role: 'primary', replicas } : { role: 'standalone' };
}

// Commands whose arguments may carry secrets or code: show the name (and subcommand) only.
const nameOnly = new Set([
  'AUTH',
  'HELLO',
  'MIGRATE',
  'EVAL',
  'EVALSHA',
  'EVAL_RO',
  'EVALSHA_RO',
  'FCALL',
  'FCALL_RO',
]);
const withSubcommand = new Set([
  'ACL',
  'CONFIG',
  'CLIENT',
  'CLUSTER',
  'COMMAND',
  'DEBUG',
  'FUNCTION',
  'MEMORY',
  'MODULE',
  'OBJECT',
  'SCRIPT',
  'SLOWLOG',
  'XINFO',
  'XGROUP',
]);

/** `GET user:1…`-style text: the command and at most its first argument, cut; never the values. */
export function describeSlowCommand(args: string[]): string {
  const [rawName = '?', ...rest] = args;
  const name = rawName.toUpperCase();
  const shown = nameOnly.has(name) ? 0 : 1;
  const parts = [withSubcommand.has(name) ? `${name} ${(rest[0] ?? '').toUpperCase()}`.trim() : name];
  if (!withSubcommand.has(name) && shown > 0 && rest[0] !== undefined) {
    const key = rest[0];
    parts.push(key.length > 40 ? `${key.slice(0, 40)}…` : key);
  }
  const hidden =
    rest.length - (withSubcommand.has(name) ? Math.min(1, rest.length) : Math.min(shown, rest.length));
  if (hidden > 0) parts.push(`(+${hidden} more argument${hidden === 1 ? '' : 's'})`);
  return parts.join(' ');
}

function parseSlowlog(reply: unknown[]): RedisSlowlogEntry[] {
  const entries: RedisSlowlogEntry[] = [];
  for (const raw of Array.isArray(reply) ? reply : []) {
    if (!Array.isArray(raw) || raw.length < 4) continue;
    const args = Array.isArray(raw[3]) ? (raw[3] as unknown[]).map(String) : [];
    entries.push({
      id: Number(raw[0]),
      timestamp: Number(raw[1]),
      durationMicros: Number(raw[2]),
      command: describeSlowCommand(args),
      client: typeof raw[4] === 'string' && raw[4] !== '' ? raw[4] : null,
    });
  }
  return entries.sort((a, b) => b.durationMicros - a.durationMicros).slice(0, slowlogKeep);
}

/** `ACL GETUSER default` flags: enabled with `nopass`? undefined when the reply is not understood. */
function defaultUserOpen(reply: unknown[]): boolean | undefined {
  const at = reply.findIndex((v) => String(v) === 'flags');
  const flags = at >= 0 ? reply[at + 1] : undefined;
  if (!Array.isArray(flags)) return undefined;
  const set = new Set(flags.map(String));
  return set.has('on') && set.has('nopass');
}

async function securityFacts(
  cmd: TimedCommands,
  aclDefault: Attempt<unknown[]>,
  protectedMode: Attempt<string>,
  bind: Attempt<string>,
  skip: (id: string, reason: string, grant?: string) => void,
): Promise<RedisSecurityFacts | undefined> {
  let open: boolean | null = null;
  const fromAcl =
    aclDefault.ok && Array.isArray(aclDefault.value) ? defaultUserOpen(aclDefault.value) : undefined;
  if (fromAcl !== undefined) {
    open = fromAcl;
  } else {
    // Before ACLs (Redis < 6), or ACL GETUSER refused: requirepass says the same for `default`.
    // Only its emptiness is kept; the value is never stored or shown.
    const requirepass = await configGet(cmd, 'requirepass');
    if (requirepass.ok) open = requirepass.value === '';
    else if (!aclDefault.ok) {
      skip(
        'redis.auth',
        failureReason('ACL GETUSER default', aclDefault.failure, aclDefault.message),
        '+acl|getuser',
      );
    }
  }
  const mode = protectedMode.ok ? protectedMode.value === 'yes' : null;
  const addresses = bind.ok ? bind.value.split(/\s+/).filter(Boolean) : null;
  if (mode === null || addresses === null) {
    const failed = !protectedMode.ok ? protectedMode : bind;
    if (!failed.ok) {
      skip(
        'redis.protected-mode',
        failureReason('CONFIG GET', failed.failure, failed.message),
        '+config|get',
      );
    }
  }
  if (open === null && mode === null && addresses === null) return undefined;
  return { defaultUserWithoutPassword: open, protectedMode: mode, bind: addresses };
}

type SampleResult =
  | { ok: true; value: RedisKeySampleFacts }
  | { ok: false; what: string; failure: CommandFailure; message: string; grant: string };

/**
 * SCAN up to `limit` keys of the connection's database, MEMORY USAGE for each in pipelined
 * batches, TYPE for the biggest. Default MEMORY USAGE SAMPLES (5), never SAMPLES 0: that walks
 * every element of a big hash, an O(n) stall of the server.
 */
async function sampleBigKeys(
  cmd: TimedCommands,
  db: number,
  dbKeys: number,
  limit: number,
): Promise<SampleResult> {
  if (dbKeys === 0) return { ok: true, value: { db, sampled: 0, complete: true, biggest: [] } };
  const keys = new Set<string>();
  let cursor = '0';
  let calls = 0;
  let dropped = false;
  const maxCalls = Math.ceil(limit / scanCount) * 4 + 4;
  try {
    do {
      const [next, batch] = (await cmd.run('SCAN', cursor, 'COUNT', scanCount)) as [string, string[]];
      cursor = String(next);
      calls++;
      for (const key of batch) {
        if (keys.size >= limit && !keys.has(String(key))) {
          dropped = true;
          break;
        }
        keys.add(String(key));
      }
    } while (cursor !== '0' && keys.size < limit && calls < maxCalls);
  } catch (err) {
    return { ok: false, what: 'SCAN', failure: classify(err), message: errText(err), grant: '+scan' };
  }
  const list = [...keys];
  const sized: { key: string; bytes: number }[] = [];
  for (let i = 0; i < list.length; i += memoryBatch) {
    const slice = list.slice(i, i + memoryBatch);
    try {
      const bytes = await cmd.batch(slice.map((key) => ['MEMORY', 'USAGE', key]));
      // nil: the key expired or was deleted since SCAN saw it.
      bytes.forEach((b, j) => {
        if (b !== null && b !== undefined) sized.push({ key: slice[j] as string, bytes: Number(b) });
      });
    } catch (err) {
      return {
        ok: false,
        what: 'MEMORY USAGE',
        failure: classify(err),
        message: errText(err),
        grant: '+memory|usage',
      };
    }
  }
  const top = sized.sort((a, b) => b.bytes - a.bytes).slice(0, keepBiggest);
  let types: unknown[] = [];
  if (top.length > 0) {
    try {
      types = await cmd.batch(top.map((k) => ['TYPE', k.key]));
    } catch {
      // The sizes stand on their own; the type is a detail.
    }
  }
  return {
    ok: true,
    value: {
      db,
      sampled: list.length,
      complete: cursor === '0' && !dropped,
      biggest: top.map((k, i) => ({
        key: k.key.length > 100 ? `${k.key.slice(0, 100)}…` : k.key,
        type: types[i] === undefined ? 'unknown' : String(types[i]),
        bytes: k.bytes,
      })),
    },
  };
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
