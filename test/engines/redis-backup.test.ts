/**
 * The Redis backup role on real servers. A dump copies the whole server, so the round trip runs
 * on two password-protected redis-servers of this file's own (source and restore target): the
 * shared test server's databases are handed out to other test files running in parallel, and
 * their keys would make exact counts flaky. The shared server is used for a plain dump only.
 * Fake redis-cli wrappers (DBWARD_REDIS_CLI) record argv, damage the RDB, or pretend to be old.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  createReadStream,
  createWriteStream,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, afterEach, before, describe, it } from 'node:test';
import { DbwardError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { BackupContext, BackupRole, DumpOutcome, LoadContext } from '../../src/engines/backup-role.js';
import type { KeyValueConnection } from '../../src/engines/contract.js';
import { redisCliEnvOverride, redisCliInvocation } from '../../src/engines/redis/redis-backup-tools.js';
import { redisEngine } from '../../src/engines/redis/redis-engine.js';
import { findBinary } from '../harness/servers/server-process.js';
import { adminUrl, skipReason } from '../harness/test-databases.js';
import { connectKeyValue, testTarget } from '../helpers/engine-connect.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../helpers/throwaway-redis.js';

const redisServer = findBinary('redis-server');
const realRedisCli = findBinary('redis-cli');
const skip =
  skipReason('redis') ||
  (!redisServer && 'redis-server not found') ||
  (!realRedisCli && 'redis-cli not found');

/** A password-protected redis-server of our own on a free port. */
const startOwnRedis = (): Promise<ThrowawayRedis> =>
  startThrowawayRedis({ dirPrefix: 'dbward-backup-redis-' });

let scratch: string;
let role: BackupRole;
const opened: KeyValueConnection[] = [];

before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'dbward-redis-backup-'));
  role = await redisEngine.roles.backup!();
});
after(async () => {
  for (const conn of opened) await conn.close();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[redisCliEnvOverride];
});

let counter = 0;
const scratchFile = (name: string): string => path.join(scratch, `${++counter}-${name}`);

function backupContext(url: string): BackupContext {
  const tempDir = mkdtempSync(path.join(scratch, 'tmp-'));
  return { target: testTarget(url), spec: redisEngine.parseUrl(url), logger: silentLogger, tempDir, jobs: 1 };
}

const loadContext = (url: string, extra: Partial<LoadContext> = {}): LoadContext => ({
  ...backupContext(url),
  extension: 'rdb',
  ...extra,
});

async function connect(url: string): Promise<KeyValueConnection> {
  const conn = await connectKeyValue(redisEngine, url);
  opened.push(conn);
  return conn;
}

/** Dump the server behind `url` into `out`; settles like done. */
async function dumpTo(url: string, out: string): Promise<DumpOutcome> {
  const conn = await connect(url);
  const ctx = backupContext(url);
  const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
  const [streamed, done] = await Promise.allSettled([
    pipeline(running.stream!, createWriteStream(out)),
    running.done,
  ]);
  if (done.status === 'rejected') throw done.reason;
  if (streamed.status === 'rejected') throw streamed.reason;
  assert.deepEqual(readdirSync(ctx.tempDir), [], 'the dump removed its temporary files');
  return done.value;
}

/** A shell script standing in for redis-cli. */
function fakeCli(body: string): string {
  const file = scratchFile('redis-cli');
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o700 });
  chmodSync(file, 0o700);
  return file;
}

async function expectRoleError(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<DbwardError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    assert.ok(err.hint, 'the error has a hint');
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('redis backup', { skip }, () => {
  let source: ThrowawayRedis;
  let target: ThrowawayRedis;
  let dumpFile: string;
  let outcome: DumpOutcome;

  before(async () => {
    [source, target] = await Promise.all([startOwnRedis(), startOwnRedis()]);
    const db0 = source.client(0);
    const db3 = source.client(3);
    await db0.set('greeting', 'hello-world-value');
    await db0.set(Buffer.from([0xff, 0x00, 0x41]), Buffer.from([1, 2, 3]));
    await db0.set('session', 'short-lived', 'PX', 600_000);
    await db0.hset('user:1', { name: 'Ada', role: 'admin' });
    await db0.rpush('queue', 'a', 'b', 'c');
    await db3.hset('cart:9', { apples: '3', pears: '1' });
    await db3.rpush('log', ...Array.from({ length: 1000 }, (_, i) => `line ${i}`));
    await db3.sadd('tags', 'x', 'y');
    await db3.zadd('scores', 1, 'one', 2, 'two');
    await db3.set('token', 't', 'EX', 3600);
    dumpFile = scratchFile('source.rdb');
    outcome = await dumpTo(source.url, dumpFile);
  });
  after(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('plans with the server version and redis-cli', async () => {
    const conn = await connect(source.url);
    const plan = await role.plan(conn, backupContext(source.url));
    assert.match(plan.serverVersion, /^\d+\.\d+\.\d+/);
    assert.equal(plan.tool.name, 'redis-cli');
    assert.match(plan.tool.version, /^\d+\.\d+/);
    assert.equal(plan.extension, 'rdb');
  });

  it('refuses a redis-cli older than the server, or a missing one, with E_BACKUP_TOOL', async () => {
    const conn = await connect(source.url);
    process.env[redisCliEnvOverride] = fakeCli('echo "redis-cli 5.0.7"');
    const err = await expectRoleError(
      role.plan(conn, backupContext(source.url)),
      'E_BACKUP_TOOL',
      /older than/,
    );
    assert.match(err.hint!, /redis-tools/);
    process.env[redisCliEnvOverride] = path.join(scratch, 'no-such-redis-cli');
    await expectRoleError(role.plan(conn, backupContext(source.url)), 'E_BACKUP_TOOL', /not an executable/);
  });

  it('counts keys per database exactly, from the snapshot', () => {
    assert.deepEqual(outcome.tables, [
      { name: 'db0', rows: 5 },
      { name: 'db3', rows: 5 },
    ]);
    assert.equal(readFileSync(dumpFile).subarray(0, 5).toString(), 'REDIS');
  });

  it('loads the dump into a temporary server with the same counts, and disposes of it', async () => {
    const ctx = loadContext(source.url);
    let progress = 0;
    const copy = await role.loadCopy(createReadStream(dumpFile), await connect(source.url), {
      ...ctx,
      onProgress: (bytes) => (progress = bytes),
    });
    try {
      const check = await copy.check();
      assert.deepEqual(check.tables, outcome.tables);
      assert.deepEqual(check.problems, []);
      assert.equal(check.checks.length, 1);
      assert.ok(progress > 0);
    } finally {
      await copy.dispose();
    }
    assert.deepEqual(readdirSync(ctx.tempDir), [], 'dispose removed the directory');
  });

  it('restores into another server: data, types and TTLs across db0 and db3, old keys gone', async () => {
    const junk = target.client(5);
    await junk.set('leftover', '1');
    await target.client(0).set('greeting', 'old value');
    const conn = await connect(target.url);
    const ctx = loadContext(target.url);
    assert.deepEqual(await role.existingContents(conn, ctx), ['db0: 1 keys', 'db5: 1 keys']);

    await role.restore(createReadStream(dumpFile), conn, ctx);

    assert.deepEqual(await role.existingContents(conn, ctx), ['db0: 5 keys', 'db3: 5 keys']);
    const db0 = target.client(0);
    const db3 = target.client(3);
    assert.equal(await db0.get('greeting'), 'hello-world-value');
    assert.deepEqual(await db0.getBuffer(Buffer.from([0xff, 0x00, 0x41])), Buffer.from([1, 2, 3]));
    assert.deepEqual(await db0.hgetall('user:1'), { name: 'Ada', role: 'admin' });
    assert.deepEqual(await db0.lrange('queue', 0, -1), ['a', 'b', 'c']);
    assert.equal(await db0.pttl('greeting'), -1, 'a key without TTL stays without');
    const ttl = await db0.pttl('session');
    assert.ok(ttl > 500_000 && ttl <= 600_000, `the TTL survives (${ttl} ms)`);
    assert.deepEqual(await db3.hgetall('cart:9'), { apples: '3', pears: '1' });
    assert.equal(await db3.llen('log'), 1000);
    assert.deepEqual((await db3.smembers('tags')).sort(), ['x', 'y']);
    assert.deepEqual(await db3.zrange('scores', 0, -1, 'WITHSCORES'), ['one', '1', 'two', '2']);
    assert.ok((await db3.ttl('token')) > 3500);
    assert.equal(await junk.exists('leftover'), 0, 'FLUSHALL emptied every database first');
    assert.deepEqual(readdirSync(ctx.tempDir), []);
  });

  it('refuses --tables with a clear E_BACKUP_RESTORE', async () => {
    await expectRoleError(
      role.restore(
        Readable.from([]),
        await connect(target.url),
        loadContext(target.url, { tables: ['db0'] }),
      ),
      'E_BACKUP_RESTORE',
      /--tables is not supported for Redis/,
    );
  });

  it('a damaged RDB fails loadCopy with E_BACKUP_RESTORE quoting redis-server', async () => {
    const damaged = readFileSync(dumpFile);
    const at = damaged.indexOf('hello-world-value');
    assert.ok(at > 0);
    damaged.writeUInt8(damaged.readUInt8(at) ^ 0x01, at);
    const ctx = loadContext(source.url);
    const err = await expectRoleError(
      role.loadCopy(Readable.from([damaged]), await connect(source.url), ctx),
      'E_BACKUP_RESTORE',
      /could not load the RDB: .*checksum/i,
    );
    assert.doesNotMatch(err.message, /\n/);
    assert.deepEqual(readdirSync(ctx.tempDir), [], 'the failed copy was removed');
  });

  it('a file that is not an RDB fails loadCopy with E_BACKUP_RESTORE', async () => {
    await expectRoleError(
      role.loadCopy(
        Readable.from([Buffer.from('SQLite format 3\0')]),
        await connect(source.url),
        loadContext(source.url),
      ),
      'E_BACKUP_RESTORE',
      /not a Redis RDB file/,
    );
  });

  it('a damaged snapshot fails the dump with E_BACKUP_DUMP (redis-check-rdb)', async () => {
    // The real redis-cli, then one byte of the value flipped: only the CRC64 trailer can tell.
    process.env[redisCliEnvOverride] = fakeCli(
      [
        `"${realRedisCli}" "$@" || exit $?`,
        'for last; do :; done',
        `node -e 'const fs=require("fs");const b=fs.readFileSync(process.argv[1]);const i=b.indexOf("hello-world-value");b[i]^=1;fs.writeFileSync(process.argv[1],b)' "$last"`,
      ].join('\n'),
    );
    await expectRoleError(
      dumpTo(source.url, scratchFile('damaged.rdb')),
      'E_BACKUP_DUMP',
      /redis-check-rdb rejected the RDB.*(CRC|checksum)/i,
    );
  });

  it('keeps the password out of redis-cli argv and out of errors', async () => {
    const argvFile = scratchFile('argv');
    // Record argv, then behave like redis-cli; a second wrapper prints the password and fails.
    process.env[redisCliEnvOverride] = fakeCli(`echo "$@" >> "${argvFile}"\nexec "${realRedisCli}" "$@"`);
    await dumpTo(source.url, scratchFile('argv.rdb'));
    const argv = readFileSync(argvFile, 'utf8');
    assert.match(argv, /--rdb/);
    assert.ok(!argv.includes(source.password), 'the password is not in argv');
    assert.equal(redisCliInvocation(redisEngine.parseUrl(source.url)).env.REDISCLI_AUTH, source.password);

    process.env[redisCliEnvOverride] = fakeCli(
      'case "$1" in --version) echo "redis-cli 99.0.0"; exit 0;; esac\necho "AUTH failed with $REDISCLI_AUTH" >&2\nexit 1',
    );
    const err = await expectRoleError(
      dumpTo(source.url, scratchFile('fail.rdb')),
      'E_BACKUP_DUMP',
      /redis-cli --rdb failed/,
    );
    assert.ok(!err.message.includes(source.password), err.message);
    assert.ok(!String(err.hint).includes(source.password));
  });

  it('lists nothing for an empty server', async () => {
    const empty = await startOwnRedis();
    try {
      assert.deepEqual(await role.existingContents(await connect(empty.url), loadContext(empty.url)), []);
    } finally {
      await empty.stop();
    }
  });
});

describe('redis backup on the shared test server', { skip }, () => {
  it('dumps the whole server to a checked RDB', async () => {
    const url = adminUrl('redis')!;
    const out = scratchFile('shared.rdb');
    const result = await dumpTo(url, out);
    assert.ok(result.tables.every((t) => /^db\d+$/.test(t.name) && t.rows > 0));
    assert.equal(readFileSync(out).subarray(0, 5).toString(), 'REDIS');
  });
});
