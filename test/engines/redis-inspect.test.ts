import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import type { KeyPatternInfo } from '../../src/core/schema-model.js';
import type { KeyValueConnection } from '../../src/engines/contract.js';
import { redisEngine } from '../../src/engines/redis/redis-engine.js';
import { redisInspectRole } from '../../src/engines/redis/redis-inspect.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectKeyValue, testTarget } from '../helpers/engine-connect.js';

const connect = (url: string): Promise<KeyValueConnection> => connectKeyValue(redisEngine, url);

const byPattern = (patterns: KeyPatternInfo[]) => new Map(patterns.map((p) => [`${p.pattern} ${p.type}`, p]));

describe('redis inspect', { skip: skipReason('redis') }, () => {
  let db: TestDatabase;
  let conn: KeyValueConnection;
  let dbIndex: number;

  before(async () => {
    db = await freshDatabase('redis');
    dbIndex = Number(db.name);
    conn = await connect(db.url);
    const writes: Promise<unknown>[] = [];
    for (let i = 1; i <= 300; i++) {
      writes.push(conn.command('HSET', `user:${i}`, 'name', `user ${i}`, 'plan', 'free'));
      writes.push(conn.command('PEXPIRE', `user:${i}`, 600_000));
    }
    for (let i = 0; i < 50; i++) writes.push(conn.command('SET', `session:${randomUUID()}`, 'x'.repeat(40)));
    for (let i = 1; i <= 10; i++) writes.push(conn.command('RPUSH', `queue:jobs:${i}`, 'a', 'b', 'c'));
    await Promise.all(writes);
  });
  after(async () => {
    await conn?.close();
    await db?.cleanup();
  });

  it('reports keyspaces and exact patterns when the sample covers every key', async () => {
    const model = await redisInspectRole.inspect(conn, testTarget(db.url), {});
    assert.equal(model.engine, 'redis');
    assert.equal(model.target, 't');
    assert.equal(model.database, `db${dbIndex}`);
    assert.equal(model.serverVersion, await conn.serverVersion());
    assert.ok(!Number.isNaN(Date.parse(model.inspectedAt)));
    for (const empty of [model.schemas, model.tables, model.views, model.sequences])
      assert.deepEqual(empty, []);

    const keyspace = model.keyspaces.find((k) => k.db === dbIndex);
    assert.ok(keyspace, 'the target database is listed');
    assert.equal(keyspace.keys, 360);
    assert.equal(keyspace.keysWithExpiry, 300);
    assert.ok(keyspace.avgTtlMs === null || (keyspace.avgTtlMs > 0 && keyspace.avgTtlMs <= 600_000));

    assert.deepEqual(
      model.keyPatterns.map(({ estimatedBytes: _bytes, ...rest }) => rest),
      [
        {
          db: dbIndex,
          pattern: 'user:*',
          type: 'hash',
          sampledKeys: 300,
          estimatedKeys: 300,
          ttlCoverage: 1,
        },
        {
          db: dbIndex,
          pattern: 'session:*',
          type: 'string',
          sampledKeys: 50,
          estimatedKeys: 50,
          ttlCoverage: 0,
        },
        {
          db: dbIndex,
          pattern: 'queue:jobs:*',
          type: 'list',
          sampledKeys: 10,
          estimatedKeys: 10,
          ttlCoverage: 0,
        },
      ],
    );
    const bytes = model.keyPatterns.map((p) => p.estimatedBytes);
    assert.ok(
      bytes.every((b) => b > 0),
      `MEMORY USAGE measured every pattern: ${bytes.join(', ')}`,
    );
    assert.deepEqual(
      bytes,
      [...bytes].sort((a, b) => b - a),
    );
  });

  it('extrapolates from a partial sample', async () => {
    const model = await redisInspectRole.inspect(conn, testTarget(db.url), { sampleKeys: 120 });
    const sampled = model.keyPatterns.reduce((sum, p) => sum + p.sampledKeys, 0);
    const estimated = model.keyPatterns.reduce((sum, p) => sum + p.estimatedKeys, 0);
    assert.equal(sampled, 120);
    assert.ok(Math.abs(estimated - 360) <= model.keyPatterns.length, `estimated ${estimated} keys of 360`);
    const users = byPattern(model.keyPatterns).get('user:* hash');
    assert.ok(users && users.ttlCoverage === 1);
  });

  it('leaves bytes at 0 when the user may not run MEMORY USAGE', async () => {
    const user = `dbward_t_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(8).toString('hex');
    await conn.command('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '+@all', '-memory');
    const url = new URL(db.url);
    url.username = user;
    url.password = password;
    const limited = await connect(url.toString());
    try {
      const model = await redisInspectRole.inspect(limited, testTarget(url.toString()), {});
      const patterns = byPattern(model.keyPatterns);
      assert.equal(patterns.get('user:* hash')?.estimatedKeys, 300);
      assert.equal(patterns.get('session:* string')?.estimatedKeys, 50);
      assert.ok(model.keyPatterns.every((p) => p.estimatedBytes === 0));
    } finally {
      await limited.close();
      await conn.command('ACL', 'DELUSER', user);
    }
  });

  it('samples nothing in an empty database', async () => {
    const empty = await freshDatabase('redis');
    const c = await connect(empty.url);
    try {
      const model = await redisInspectRole.inspect(c, testTarget(empty.url), {});
      assert.deepEqual(model.keyPatterns, []);
    } finally {
      await c.close();
      await empty.cleanup();
    }
  });
});
