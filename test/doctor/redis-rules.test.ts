import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DoctorFacts } from '../../src/doctor/facts.js';
import type { RedisFacts } from '../../src/doctor/facts/redis-facts.js';
import type { Finding } from '../../src/doctor/finding.js';
import { allRules, judge } from '../../src/doctor/run-doctor.js';
import { formatBytes } from '../../src/doctor/rule.js';
import { redisRules } from '../../src/doctor/rules/redis-rules.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';
import { describeSlowCommand, redisDoctorFixes } from '../../src/engines/redis/redis-doctor-facts.js';

/** A healthy instance: a limit with an LRU policy, persistence on and current, a password. */
function healthy(): RedisFacts {
  return {
    memory: {
      usedBytes: 50_000_000,
      rssBytes: 60_000_000,
      maxmemoryBytes: 1_000_000_000,
      policy: 'allkeys-lru',
      fragmentationRatio: 1.2,
      allocator: 'jemalloc-5.3.0',
    },
    stats: { evictedKeys: 0, rejectedConnections: 0 },
    persistence: {
      rdbLastBgsaveStatus: 'ok',
      rdbBgsaveInProgress: false,
      lastSaveAgeSeconds: 120,
      changesSinceLastSave: 10,
      aofEnabled: true,
      aofLastWriteStatus: 'ok',
      aofLastBgrewriteStatus: 'ok',
      saveSchedule: '3600 1 300 100 60 10000',
    },
    keyspace: { keys: 1000, keysWithTtl: 400 },
    slowlog: { length: 0, slowerThanMicros: 10_000, top: [] },
    keys: { db: 0, sampled: 1000, complete: true, biggest: [{ key: 'a', type: 'string', bytes: 2000 }] },
    security: { defaultUserWithoutPassword: false, protectedMode: true, bind: ['127.0.0.1', '-::1'] },
  };
}

function facts(change: (r: RedisFacts) => void = () => {}, extra: Partial<DoctorFacts> = {}): DoctorFacts {
  const redis = healthy();
  change(redis);
  return {
    server: { engine: 'redis', version: '7.2.5', uptimeSeconds: 86_400 * 3, endOfLife: null },
    connections: { max: 10_000, current: 12 },
    replication: { role: 'standalone' },
    redis,
    skipped: [],
    ...extra,
  };
}

function run(f: DoctorFacts, thresholds: Record<string, number> = {}): Finding[] {
  return judge(f, allRules, { thresholds: resolveThresholds(thresholds), fixes: redisDoctorFixes }).findings;
}

function only(findings: Finding[], id: string): Finding {
  const matching = findings.filter((x) => x.id === id);
  assert.equal(
    matching.length,
    1,
    `one finding ${id}: ${JSON.stringify(findings.map((x) => [x.id, x.severity]))}`,
  );
  return matching[0] as Finding;
}

const problems = (findings: Finding[]): [string, string][] =>
  findings
    .filter((x) => x.severity === 'warning' || x.severity === 'critical')
    .map((x) => [x.id, x.severity]);

describe('redis rules', () => {
  it('a healthy instance yields no warnings or criticals, and every redis check ran', () => {
    const findings = run(facts());
    assert.deepEqual(problems(findings), []);
    for (const rule of redisRules) {
      assert.equal(only(findings, rule.id).severity, 'ok', rule.id);
    }
  });

  it('maxmemory 0 is a warning; a limit with noeviction is info', () => {
    const none = only(run(facts((r) => (r.memory.maxmemoryBytes = 0))), 'redis.maxmemory');
    assert.equal(none.severity, 'warning');
    assert.match(none.fix ?? '', /CONFIG SET maxmemory /);
    assert.match(none.fix ?? '', /CONFIG SET maxmemory-policy allkeys-lru/);
    assert.match(none.fix ?? '', /CONFIG REWRITE/);
    const noeviction = only(run(facts((r) => (r.memory.policy = 'noeviction'))), 'redis.maxmemory');
    assert.equal(noeviction.severity, 'info');
    assert.match(noeviction.title, /noeviction/);
  });

  it('memory use vs the limit: 80 % warning, 95 % critical, none without a limit', () => {
    const at = (used: number) => run(facts((r) => (r.memory.usedBytes = used)));
    assert.equal(only(at(790_000_000), 'redis.memory').severity, 'ok');
    assert.equal(only(at(810_000_000), 'redis.memory').severity, 'warning');
    const critical = only(at(960_000_000), 'redis.memory');
    assert.equal(critical.severity, 'critical');
    assert.match(critical.title, /96 %/);
    assert.ok(!run(facts((r) => (r.memory.maxmemoryBytes = 0))).some((x) => x.id === 'redis.memory'));
    assert.equal(
      only(
        run(
          facts((r) => (r.memory.usedBytes = 810_000_000)),
          { 'redis.memoryWarnPercent': 90 },
        ),
        'redis.memory',
      ).severity,
      'ok',
    );
  });

  it('fragmentation as MEMORY DOCTOR judges it: ratio > 1.4 and > 10 MB excess, not on tiny instances', () => {
    const frag = only(
      run(
        facts((r) =>
          Object.assign(r.memory, { usedBytes: 100_000_000, rssBytes: 200_000_000, fragmentationRatio: 2 }),
        ),
      ),
      'redis.fragmentation',
    );
    assert.equal(frag.severity, 'warning');
    assert.match(frag.fix ?? '', /CONFIG SET activedefrag yes/);
    // Ratio high but the excess small (MEMORY DOCTOR's 10 MB floor).
    const small = run(
      facts((r) =>
        Object.assign(r.memory, { usedBytes: 6_000_000, rssBytes: 12_000_000, fragmentationRatio: 2 }),
      ),
    );
    assert.equal(only(small, 'redis.fragmentation').severity, 'ok');
    // A tiny instance: a huge ratio means nothing.
    const tiny = run(
      facts((r) =>
        Object.assign(r.memory, { usedBytes: 900_000, rssBytes: 60_000_000, fragmentationRatio: 66 }),
      ),
    );
    assert.equal(only(tiny, 'redis.fragmentation').severity, 'ok');
    // Not jemalloc: no activedefrag advice.
    const libc = only(
      run(
        facts((r) =>
          Object.assign(r.memory, {
            usedBytes: 100_000_000,
            rssBytes: 200_000_000,
            fragmentationRatio: 2,
            allocator: 'libc',
          }),
        ),
      ),
      'redis.fragmentation',
    );
    assert.doesNotMatch(libc.fix ?? '', /activedefrag yes/);
  });

  it('a ratio below 1 with memory missing from RSS is swapping', () => {
    const swap = only(
      run(
        facts((r) =>
          Object.assign(r.memory, {
            usedBytes: 400_000_000,
            rssBytes: 300_000_000,
            fragmentationRatio: 0.75,
          }),
        ),
      ),
      'redis.fragmentation',
    );
    assert.equal(swap.severity, 'warning');
    assert.match(swap.title, /swapped/);
  });

  it('evicted keys: warning under a volatile policy, info for an allkeys cache; rejected connections: warning', () => {
    const volatile = only(
      run(
        facts((r) =>
          Object.assign(r, {
            stats: { evictedKeys: 1234, rejectedConnections: 0 },
            memory: { ...r.memory, policy: 'volatile-lru' },
          }),
        ),
      ),
      'redis.evictions',
    );
    assert.equal(volatile.severity, 'warning');
    assert.match(volatile.title, /1,234 key\(s\) evicted since the last restart or CONFIG RESETSTAT/);
    const cache = only(run(facts((r) => (r.stats.evictedKeys = 5))), 'redis.evictions');
    assert.equal(cache.severity, 'info');
    const refused = only(run(facts((r) => (r.stats.rejectedConnections = 7))), 'redis.rejected-connections');
    assert.equal(refused.severity, 'warning');
    assert.ok(refused.evidence.includes('maxclients 10000'));
  });

  it('persistence errors: failed BGSAVE and AOF write are critical, failed rewrite a warning', () => {
    const bgsave = only(run(facts((r) => (r.persistence.rdbLastBgsaveStatus = 'err'))), 'redis.persistence');
    assert.equal(bgsave.severity, 'critical');
    assert.match(bgsave.fix ?? '', /BGSAVE/);
    const aof = run(
      facts((r) =>
        Object.assign(r.persistence, { aofLastWriteStatus: 'err', aofLastBgrewriteStatus: 'err' }),
      ),
    );
    assert.deepEqual(
      aof.filter((x) => x.id === 'redis.persistence').map((x) => x.severity),
      ['critical', 'warning'],
    );
    // AOF off: its status fields are not judged.
    const off = run(
      facts((r) => Object.assign(r.persistence, { aofEnabled: false, aofLastWriteStatus: 'err' })),
    );
    assert.equal(only(off, 'redis.persistence').severity, 'ok');
  });

  it('durability: persistence off is info; an old snapshot with pending writes is a warning', () => {
    const off = only(
      run(facts((r) => Object.assign(r.persistence, { saveSchedule: '', aofEnabled: false }))),
      'redis.durability',
    );
    assert.equal(off.severity, 'info');
    assert.match(off.title, /lost on restart/);
    const stale = only(
      run(
        facts((r) =>
          Object.assign(r.persistence, { lastSaveAgeSeconds: 3 * 86_400, changesSinceLastSave: 500 }),
        ),
      ),
      'redis.durability',
    );
    assert.equal(stale.severity, 'warning');
    assert.ok(stale.evidence.some((e) => /3600 s \/ 1 changes/.test(e)));
    // No pending writes, a save in progress, or snapshots off with AOF on: nothing to say.
    for (const p of [
      { lastSaveAgeSeconds: 3 * 86_400, changesSinceLastSave: 0 },
      { lastSaveAgeSeconds: 3 * 86_400, changesSinceLastSave: 5, rdbBgsaveInProgress: true },
      { lastSaveAgeSeconds: 3 * 86_400, changesSinceLastSave: 5, saveSchedule: '' },
    ]) {
      assert.equal(
        only(run(facts((r) => Object.assign(r.persistence, p))), 'redis.durability').severity,
        'ok',
      );
    }
    // CONFIG GET save refused: not judged.
    assert.ok(!run(facts((r) => delete r.persistence.saveSchedule)).some((x) => x.id === 'redis.durability'));
  });

  it('slow log: entries are info, an entry over a second a warning; commands are shown cut', () => {
    const entry = (durationMicros: number, command: string) => ({
      id: 1,
      timestamp: 1_700_000_000,
      durationMicros,
      command,
      client: '10.0.0.1:5000',
    });
    const info = only(
      run(
        facts((r) => (r.slowlog = { length: 3, slowerThanMicros: 10_000, top: [entry(25_000, 'KEYS *')] })),
      ),
      'redis.slowlog',
    );
    assert.equal(info.severity, 'info');
    assert.match(info.title, /3 slow-log entries, the slowest 25 ms/);
    assert.ok(info.evidence.some((e) => e.startsWith('25 ms: KEYS * from 10.0.0.1:5000 at 2023-11-14T')));
    const warn = only(
      run(facts((r) => (r.slowlog = { length: 1, top: [entry(2_500_000, 'DEL big')] }))),
      'redis.slowlog',
    );
    assert.equal(warn.severity, 'warning');
    assert.equal(
      only(
        run(
          facts((r) => (r.slowlog = { length: 1, top: [entry(2_500_000, 'DEL big')] })),
          { 'redis.slowlogWarnMicros': 5_000_000 },
        ),
        'redis.slowlog',
      ).severity,
      'info',
    );
  });

  it('slow-log commands never carry values or secrets', () => {
    assert.equal(describeSlowCommand(['SET', 'user:1', 'secret value']), 'SET user:1 (+1 more argument)');
    assert.equal(describeSlowCommand(['get', 'k']), 'GET k');
    assert.equal(describeSlowCommand(['AUTH', 'bob', 'pw']), 'AUTH (+2 more arguments)');
    assert.equal(
      describeSlowCommand(['config', 'set', 'requirepass', 'pw']),
      'CONFIG SET (+2 more arguments)',
    );
    assert.equal(describeSlowCommand(['EVAL', 'return 1', '0']), 'EVAL (+2 more arguments)');
    assert.equal(describeSlowCommand(['HGETALL', 'k'.repeat(100)]), `HGETALL ${'k'.repeat(40)}…`);
    assert.equal(describeSlowCommand(['PING']), 'PING');
  });

  it('big keys: those above the threshold, with type and size', () => {
    const biggest = [
      { key: 'queue:big', type: 'list', bytes: 50_000_000 },
      { key: 'blob', type: 'string', bytes: 12_000_000 },
      { key: 'small', type: 'hash', bytes: 3_000_000 },
    ];
    const found = only(
      run(facts((r) => (r.keys = { db: 3, sampled: 42, complete: true, biggest }))),
      'redis.big-keys',
    );
    assert.equal(found.severity, 'warning');
    assert.equal(found.title, `2 key(s) of ${formatBytes(10 * 1024 * 1024)} or more in db3`);
    assert.deepEqual(found.evidence.slice(0, 2), [
      `queue:big (list): ${formatBytes(50_000_000)}`,
      `blob (string): ${formatBytes(12_000_000)}`,
    ]);
    assert.match(found.fix ?? '', /UNLINK/);
    const lowered = only(
      run(
        facts((r) => (r.keys = { db: 3, sampled: 42, complete: true, biggest })),
        { 'redis.bigKeyBytes': 1_000_000 },
      ),
      'redis.big-keys',
    );
    assert.match(lowered.title, /^3 key/);
  });

  it('keys without TTL under a volatile policy: warning with a limit, info without, nothing otherwise', () => {
    const volatile = (r: RedisFacts) => {
      r.memory.policy = 'volatile-lru';
      r.keyspace = { keys: 100, keysWithTtl: 5 };
    };
    const warn = only(run(facts(volatile)), 'redis.ttl');
    assert.equal(warn.severity, 'warning');
    assert.match(warn.title, /95\.0 % of the keys have no TTL/);
    const latent = only(run(facts((r) => (volatile(r), (r.memory.maxmemoryBytes = 0)))), 'redis.ttl');
    assert.equal(latent.severity, 'info');
    const enough = run(facts((r) => (volatile(r), (r.keyspace.keysWithTtl = 50))));
    assert.equal(only(enough, 'redis.ttl').severity, 'ok');
    assert.equal(
      only(run(facts((r) => (r.keyspace = { keys: 100, keysWithTtl: 0 }))), 'redis.ttl').severity,
      'ok',
    );
  });

  it('default user without a password: warning, critical when protected mode is off and exposed', () => {
    const local = only(
      run(
        facts(
          (r) =>
            (r.security = { defaultUserWithoutPassword: true, protectedMode: true, bind: ['*', '-::*'] }),
        ),
      ),
      'redis.auth',
    );
    assert.equal(local.severity, 'warning');
    assert.match(local.fix ?? '', /ACL SETUSER default on >/);
    const exposed = run(
      facts(
        (r) => (r.security = { defaultUserWithoutPassword: true, protectedMode: false, bind: ['0.0.0.0'] }),
      ),
    );
    assert.equal(only(exposed, 'redis.auth').severity, 'critical');
    assert.equal(only(exposed, 'redis.protected-mode').severity, 'warning');
    const unknown = run(
      facts((r) => (r.security = { defaultUserWithoutPassword: null, protectedMode: null, bind: null })),
    );
    assert.ok(!unknown.some((x) => x.id === 'redis.auth' || x.id === 'redis.protected-mode'));
  });

  it('protected mode off: warning when exposed, info with a password, ok on loopback only', () => {
    const withPassword = only(
      run(
        facts(
          (r) =>
            (r.security = { defaultUserWithoutPassword: false, protectedMode: false, bind: ['10.0.0.5'] }),
        ),
      ),
      'redis.protected-mode',
    );
    assert.equal(withPassword.severity, 'info');
    const loopbackOnly = run(
      facts(
        (r) =>
          (r.security = {
            defaultUserWithoutPassword: true,
            protectedMode: false,
            bind: ['127.0.0.1', '-::1'],
          }),
      ),
    );
    assert.equal(only(loopbackOnly, 'redis.protected-mode').severity, 'ok');
    assert.equal(only(loopbackOnly, 'redis.auth').severity, 'warning');
  });

  it('skipped checks are reported as skipped and not run', () => {
    const f = facts((r) => delete r.slowlog);
    f.skipped.push({
      id: 'redis.slowlog',
      reason: 'SLOWLOG is not allowed for this user (ACL)',
      enableWith: 'ACL SETUSER mon +slowlog',
    });
    const { findings, skipped } = judge(f, allRules, {
      thresholds: resolveThresholds(),
      fixes: redisDoctorFixes,
    });
    assert.ok(!findings.some((x) => x.id === 'redis.slowlog'));
    assert.deepEqual(
      skipped.map((s) => s.id),
      ['redis.slowlog'],
    );
  });

  it('the shared sections: replica link down is critical; connections near maxclients warn', () => {
    const down = run(facts(undefined, { replication: { role: 'replica', linkUp: false, lagSeconds: null } }));
    assert.equal(only(down, 'replication.lag').severity, 'critical');
    const busy = run(facts(undefined, { connections: { max: 100, current: 90 } }));
    assert.equal(only(busy, 'connections.usage').severity, 'warning');
  });

  it('fixes: CLIENT KILL for sessions, comments where Redis has nothing to fix', () => {
    const s = { id: 42, user: null, application: null, client: null, seconds: 1, query: null };
    assert.equal(redisDoctorFixes.terminate(s), 'CLIENT KILL ID 42');
    assert.match(redisDoctorFixes.cancel(s), /^# .*\nCLIENT KILL ID 42$/);
    assert.match(
      redisDoctorFixes.dropIndex({
        table: 't',
        name: 'i',
        columns: [],
        method: '',
        unique: false,
        primary: false,
        predicate: null,
        valid: true,
        scans: null,
        sizeBytes: null,
        constraint: null,
      }),
      /^# Not applicable/,
    );
    assert.match(
      redisDoctorFixes.createIndexFor({ table: 't', name: 'f', columns: [], referencedTable: 'u' }),
      /^# Not applicable/,
    );
  });
});
