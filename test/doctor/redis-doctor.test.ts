/**
 * The Redis doctor on real servers: each problem is planted, then doctor must report it with the
 * right id and severity. Checks that need server-wide configuration (maxmemory, policy, slow log,
 * ACL users, no password) run on throwaway redis-servers this file starts and stops itself, so
 * the shared test server (used by other files in parallel) keeps its configuration.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { targetFromInput } from '../../src/config/load-config.js';
import { open } from '../../src/connect/open.js';
import type { Database } from '../../src/connect/database-handle.js';
import type { DoctorFacts } from '../../src/doctor/facts.js';
import type { DoctorReport, Finding } from '../../src/doctor/finding.js';
import { doctor, type DoctorOptions } from '../../src/doctor/run-doctor.js';
import { redisEngine } from '../../src/engines/redis/redis-engine.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { findBinary, randomPassword } from '../harness/servers/server-process.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';
import { startThrowawayRedis } from '../helpers/throwaway-redis.js';

const redisServer = findBinary('redis-server');

/** A redis-server of our own on a free port, configured by `lines` (redis.conf syntax). */
interface OwnRedis {
  url: string;
  /** An ioredis client with admin rights, for planting. */
  admin: Redis;
  stop(): Promise<void>;
}

async function startOwnRedis(password: string | null, lines: string[] = []): Promise<OwnRedis> {
  const server = await startThrowawayRedis({
    password,
    lines: ['enable-debug-command local', ...lines],
    dirPrefix: 'dbward-doctor-redis-',
  });
  const admin = client(server.port, password);
  await admin.connect();
  return {
    url: server.url,
    admin,
    stop: async () => {
      admin.disconnect();
      await server.stop();
    },
  };
}

function client(port: number, password: string | null): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    ...(password ? { password } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  c.on('error', () => {});
  return c;
}

async function runDoctor(url: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const db = await open(url);
  try {
    return await doctor(db, targetFromInput(url), options);
  } finally {
    await db.close();
  }
}

async function collectFacts(url: string, sampleKeys = 10_000): Promise<DoctorFacts> {
  const db: Database = await open(url);
  try {
    const role = await redisEngine.roles.doctorFacts!();
    return await role.collect(db.connection, {
      target: targetFromInput(url),
      spec: redisEngine.parseUrl(url),
      statementTimeoutMs: 5_000,
      sampleKeys,
      thresholds: resolveThresholds(),
    });
  } finally {
    await db.close();
  }
}

/** The grants docs/doctor.md lists for a Redis monitoring user. */
const monitorGrants = ['+info', '+ping', '+scan', '+memory|usage', '+config|get', '+slowlog', '+acl|getuser'];

function only(report: DoctorReport, id: string): Finding {
  const matching = report.findings.filter((f) => f.id === id);
  assert.equal(
    matching.length,
    1,
    `one finding ${id}; got ${JSON.stringify(report.findings.map((f) => [f.id, f.severity]))}`,
  );
  return matching[0] as Finding;
}

const problems = (report: DoctorReport): [string, string, string][] =>
  report.findings
    .filter((f) => f.severity === 'warning' || f.severity === 'critical')
    .map((f) => [f.id, f.severity, f.title]);

async function usedMemory(admin: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
}

describe('redis doctor on the shared test server', { skip: skipReason('redis') }, () => {
  let db: TestDatabase;

  before(async () => {
    db = await freshDatabase('redis');
  });
  after(async () => {
    await db?.cleanup();
  });

  it('fills the shared sections and reports the missing memory limit', async () => {
    const facts = await collectFacts(db.url);
    assert.equal(facts.server.engine, 'redis');
    assert.match(facts.server.version, /^\d+\.\d+\.\d+/);
    assert.ok((facts.server.uptimeSeconds ?? -1) >= 0);
    assert.equal(facts.server.endOfLife, null);
    assert.ok(facts.connections && facts.connections.max > 0 && facts.connections.current >= 1);
    assert.deepEqual(facts.replication, { role: 'standalone' });
    assert.deepEqual(facts.skipped, []);
    // The harness's server: persistence off, a password, protected mode on, bound to loopback.
    assert.equal(facts.redis?.persistence.saveSchedule, '');
    assert.deepEqual(facts.redis?.security, {
      defaultUserWithoutPassword: false,
      protectedMode: true,
      bind: ['127.0.0.1'],
    });

    const report = await runDoctor(db.url);
    assert.equal(report.engine, 'redis');
    assert.equal(report.serverVersion, facts.server.version);
    assert.equal(only(report, 'redis.maxmemory').severity, 'warning');
    const durability = only(report, 'redis.durability');
    assert.equal(durability.severity, 'info');
    assert.match(durability.title, /lost on restart/);
    assert.equal(only(report, 'redis.auth').severity, 'ok');
    assert.equal(only(report, 'connections.usage').severity, 'ok');
    assert.ok(!report.findings.some((f) => f.id.startsWith('indexes.') || f.id.startsWith('tables.')));
  });

  it('reports a big key with its type and size, above a lowered threshold', async () => {
    const writer = new Redis(db.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await writer.connect();
    try {
      await writer.set('blob:big', 'x'.repeat(3 * 1024 * 1024));
      await writer.rpush(
        'queue:big',
        ...Array.from({ length: 40_000 }, (_, i) => `job-${i}-${'y'.repeat(40)}`),
      );
      for (let i = 0; i < 200; i++) await writer.set(`small:${i}`, 'v');
    } finally {
      writer.disconnect();
    }
    const report = await runDoctor(db.url, { thresholds: { 'redis.bigKeyBytes': 1024 * 1024 } });
    const big = only(report, 'redis.big-keys');
    assert.equal(big.severity, 'warning');
    assert.match(big.title, new RegExp(`^2 key\\(s\\) of .* or more in db${db.name}$`));
    assert.match(big.evidence[0] ?? '', /^blob:big \(string\): [3-4](\.\d)? MB$/);
    assert.match(big.evidence[1] ?? '', /^queue:big \(list\): \d/);
    assert.ok(big.evidence.some((e) => /202 key\(s\) sampled \(all of them\)/.test(e)));
    // The default threshold (10 MB): nothing.
    assert.equal(only(await runDoctor(db.url), 'redis.big-keys').severity, 'ok');
  });

  it('samples no more keys than asked', async () => {
    const facts = await collectFacts(db.url, 50);
    assert.equal(facts.redis?.keys?.sampled, 50);
    assert.equal(facts.redis?.keys?.complete, false);
    const all = await collectFacts(db.url, 10_000);
    assert.equal(all.redis?.keys?.sampled, 202);
    assert.equal(all.redis?.keys?.complete, true);
  });
});

describe(
  'redis doctor on throwaway servers',
  { skip: skipReason('redis') || (!redisServer && 'redis-server not found') },
  () => {
    const password = randomPassword();
    let healthy: OwnRedis;

    before(async () => {
      healthy = await startOwnRedis(password, ['maxmemory 100mb', 'maxmemory-policy allkeys-lru']);
      const pipeline = healthy.admin.pipeline();
      for (let i = 0; i < 500; i++) pipeline.set(`item:${i}`, `value ${i}`, 'EX', 3600);
      for (let i = 0; i < 50; i++) pipeline.hset(`user:${i}`, 'name', `user ${i}`);
      await pipeline.exec();
    });
    after(async () => {
      await healthy?.stop();
    });

    it('a healthy instance (a limit, an LRU policy, a password) yields no warnings or criticals', async () => {
      const report = await runDoctor(healthy.url);
      assert.deepEqual(problems(report), []);
      assert.deepEqual(report.skipped, []);
      for (const id of [
        'redis.maxmemory',
        'redis.memory',
        'redis.auth',
        'redis.protected-mode',
        'redis.big-keys',
        'redis.ttl',
      ]) {
        assert.equal(only(report, id).severity, 'ok', id);
      }
    });

    it('memory used near maxmemory: warning above 80 %, critical above 95 %', async () => {
      // A server of its own: 30 MB coming and going leaves allocator statistics (RSS vs used)
      // that the next test on a shared server would read as fragmentation or swapping.
      const own = await startOwnRedis(password, ['maxmemory 100mb', 'maxmemory-policy noeviction']);
      const { admin } = own;
      try {
        // 30 MB of data, so that client buffers coming and going between two doctor runs (about
        // 1 MB; with 3 MB of ballast they once moved the share by 20 points) barely move it.
        await admin.set('ballast', 'z'.repeat(30 * 1024 * 1024));
        await admin.config('SET', 'maxmemory', String(Math.ceil((await usedMemory(admin)) / 0.86)));
        const warning = only(await runDoctor(own.url), 'redis.memory');
        assert.equal(warning.severity, 'warning', warning.title);
        await admin.config('SET', 'maxmemory', String(Math.ceil((await usedMemory(admin)) / 0.995)));
        const report = await runDoctor(own.url);
        const critical = only(report, 'redis.memory');
        assert.equal(critical.severity, 'critical', critical.title);
        assert.ok(critical.evidence.includes('maxmemory-policy noeviction'));
        assert.equal(only(report, 'redis.maxmemory').severity, 'info');
      } finally {
        await own.stop();
      }
    });

    it('volatile-lru with every key lacking a TTL is a warning', async () => {
      const { admin } = healthy;
      try {
        await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
        await admin.select(2);
        const pipeline = admin.pipeline();
        for (let i = 0; i < 300; i++) pipeline.set(`forever:${i}`, 'v');
        await pipeline.exec();
        // db 0 keeps its 500 keys with a TTL: 350 of 850 without one is below 90 %, fine.
        assert.equal(only(await runDoctor(healthy.url), 'redis.ttl').severity, 'ok');
        await admin.select(0);
        const pipeline2 = admin.pipeline();
        for (let i = 0; i < 500; i++) pipeline2.persist(`item:${i}`);
        await pipeline2.exec();
        const ttl = only(await runDoctor(healthy.url), 'redis.ttl');
        assert.equal(ttl.severity, 'warning');
        assert.match(ttl.title, /100\.0 % of the keys have no TTL.*volatile-lru/);
      } finally {
        await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
        await admin.select(2);
        await admin.flushdb();
        await admin.select(0);
        const restore = admin.pipeline();
        for (let i = 0; i < 500; i++) restore.expire(`item:${i}`, 3600);
        await restore.exec();
      }
    });

    it('slow-log entries are reported without their values; one over a second is a warning', async () => {
      const { admin } = healthy;
      const secret = `secret-${randomBytes(8).toString('hex')}`;
      try {
        await admin.slowlog('RESET');
        await admin.config('SET', 'slowlog-log-slower-than', '0');
        await admin.set('slow:key', secret);
        await admin.get('slow:key');
        await admin.config('SET', 'slowlog-log-slower-than', '10000');
        const report = await runDoctor(healthy.url);
        const slow = only(report, 'redis.slowlog');
        assert.equal(slow.severity, 'info');
        const text = JSON.stringify(report);
        assert.ok(!text.includes(secret), 'the value is never shown');
        assert.ok(
          slow.evidence.some((e) => /: SET slow:key \(\+1 more argument\) from 127\.0\.0\.1:\d+ at /.test(e)),
        );

        await admin.call('DEBUG', 'SLEEP', '1.1');
        const warning = only(await runDoctor(healthy.url), 'redis.slowlog');
        assert.equal(warning.severity, 'warning');
        assert.match(warning.evidence.find((e) => /DEBUG SLEEP/.test(e)) ?? '', /^1\d{3} ms: DEBUG SLEEP/);
      } finally {
        await admin.config('SET', 'slowlog-log-slower-than', '10000');
        await admin.slowlog('RESET');
      }
    });

    it('a least-privilege user: refused commands become skipped checks with the ACL rule that enables them', async () => {
      const { admin } = healthy;
      const user = `doctor_${randomBytes(4).toString('hex')}`;
      const userPassword = randomPassword();
      const url = `redis://${user}:${userPassword}@${new URL(healthy.url).host}/0`;
      try {
        await admin.call(
          'ACL',
          'SETUSER',
          user,
          'on',
          `>${userPassword}`,
          '~*',
          '+@read',
          '+info',
          '+ping',
          '-memory',
        );
        const report = await runDoctor(url);
        const skipped = new Map(report.skipped.map((s) => [s.id, s]));
        assert.deepEqual([...skipped.keys()].sort(), [
          'redis.auth',
          'redis.big-keys',
          'redis.durability',
          'redis.protected-mode',
          'redis.slowlog',
        ]);
        assert.equal(skipped.get('redis.slowlog')?.enableWith, `ACL SETUSER ${user} +slowlog`);
        assert.equal(skipped.get('redis.durability')?.enableWith, `ACL SETUSER ${user} +config|get`);
        assert.equal(skipped.get('redis.big-keys')?.enableWith, `ACL SETUSER ${user} +memory|usage`);
        assert.equal(skipped.get('redis.auth')?.enableWith, `ACL SETUSER ${user} +acl|getuser`);
        assert.match(skipped.get('redis.slowlog')?.reason ?? '', /not allowed/);
        // What INFO alone shows still runs.
        assert.equal(only(report, 'redis.maxmemory').severity, 'ok');
        assert.equal(only(report, 'redis.persistence').severity, 'ok');
        assert.ok(!report.findings.some((f) => skipped.has(f.id)));

        await admin.call('ACL', 'SETUSER', user, '+config|get', '+slowlog', '+memory|usage', '+acl|getuser');
        const granted = await runDoctor(url);
        assert.deepEqual(granted.skipped, []);
        assert.deepEqual(problems(granted), []);

        // The monitoring user docs/doctor.md recommends, with nothing else: every check runs.
        await admin.call('ACL', 'SETUSER', user, 'reset', 'on', `>${userPassword}`, '~*', ...monitorGrants);
        const monitor = await runDoctor(url);
        assert.deepEqual(monitor.skipped, []);
        assert.deepEqual(problems(monitor), []);
        assert.equal(only(monitor, 'redis.big-keys').severity, 'ok');
      } finally {
        await admin.call('ACL', 'DELUSER', user);
      }
    });

    it('every command is bounded by the statement timeout', async () => {
      const db = await open(healthy.url);
      const blocker = client(Number(new URL(healthy.url).port), password);
      await blocker.connect();
      try {
        const sleeping = blocker.call('DEBUG', 'SLEEP', '2');
        await new Promise((r) => setTimeout(r, 100));
        const started = performance.now();
        await assert.rejects(
          doctor(db, targetFromInput(healthy.url), { statementTimeoutMs: 300 }),
          /did not answer within the statement timeout/,
        );
        assert.ok(performance.now() - started < 1_500, 'gave up long before the server answered');
        await sleeping;
      } finally {
        blocker.disconnect();
        await db.close();
      }
    });

    it('the default user without a password is reported', async () => {
      const open = await startOwnRedis(null, ['maxmemory 100mb', 'maxmemory-policy allkeys-lru']);
      try {
        const report = await runDoctor(open.url);
        const auth = only(report, 'redis.auth');
        assert.equal(auth.severity, 'warning');
        assert.match(auth.title, /default user needs no password/);
        assert.match(auth.fix ?? '', /ACL SETUSER default on >/);
        // Protected mode on, loopback only: nothing more to say.
        assert.equal(only(report, 'redis.protected-mode').severity, 'ok');
      } finally {
        await open.stop();
      }
    });
  },
);
