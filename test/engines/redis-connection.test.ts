import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { QueryError, type ConnectionError } from '../../src/core/errors.js';
import type { TargetOptions } from '../../src/core/target.js';
import type { KeyValueConnection } from '../../src/engines/contract.js';
import { redisEngine } from '../../src/engines/redis/redis-engine.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import {
  closedPort,
  connectKeyValue,
  expectConnectionError,
  silentServer,
  withCredentials,
} from '../helpers/engine-connect.js';

const connect = (url: string, options: Partial<TargetOptions> = {}): Promise<KeyValueConnection> =>
  connectKeyValue(redisEngine, url, options);

const connectError = (url: string, options: Partial<TargetOptions> = {}): Promise<ConnectionError> =>
  expectConnectionError(redisEngine, url, options);

describe('redis connection', { skip: skipReason('redis') }, () => {
  let db: TestDatabase;
  let conn: KeyValueConnection;

  before(async () => {
    db = await freshDatabase('redis');
    conn = await connect(db.url);
  });
  after(async () => {
    await conn?.close();
    await db?.cleanup();
  });

  it('sends commands and returns the replies', async () => {
    assert.equal(await conn.command('SET', 'greeting', 'hello'), 'OK');
    assert.equal(await conn.command('GET', 'greeting'), 'hello');
    assert.equal(await conn.command('HSET', 'h', 'a', 1, 'b', Buffer.from('2')), 2);
    assert.deepEqual(await conn.command('HGETALL', 'h'), ['a', '1', 'b', '2']);
    await conn.ping();
    assert.match(await conn.serverVersion(), /^\d+\.\d+\.\d+/);
    assert.deepEqual(conn.poolStats(), { max: 1, total: 1, idle: 1, inUse: 0, waiting: 0 });
  });

  it('uses the database from the URL path', async () => {
    await conn.command('SET', 'where', 'here');
    assert.equal(await conn.command('EXISTS', 'where'), 1);
    const info = String(await conn.command('CLIENT', 'INFO'));
    assert.match(info, new RegExp(`\\bdb=${db.name}\\b`));
  });

  it('turns error replies into QueryErrors named by the reply class', async () => {
    await conn.command('SET', 'plain', 'x');
    await assert.rejects(conn.command('LPUSH', 'plain', 'y'), (err) => {
      assert.ok(err instanceof QueryError);
      assert.equal(err.sqlState, 'WRONGTYPE');
      assert.equal(err.context.engine, 'redis');
      return true;
    });
  });

  it('closes idempotently and refuses use after close', async () => {
    const extra = await connect(db.url);
    await extra.close();
    await extra.close();
    assert.equal(extra.poolStats().total, 0);
    await assert.rejects(extra.command('PING'), /closed/);
  });

  it('diagnoses a wrong password as auth-failed without printing the password', async () => {
    const user = `dbward_t_${randomBytes(4).toString('hex')}`;
    const password = `right-${randomBytes(6).toString('hex')}`;
    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    await conn.command('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '+@all');
    try {
      const err = await connectError(withCredentials(db.url, user, wrong));
      assert.equal(err.kind, 'auth-failed');
      assert.match(err.message, new RegExp(`user "${user}"`));
      const printed = JSON.stringify(err.toJSON()) + err.message + (err.hint ?? '');
      assert.ok(!printed.includes(wrong), 'the password must not appear');
      const ok = await connect(withCredentials(db.url, user, password));
      await ok.ping();
      await ok.close();
    } finally {
      await conn.command('ACL', 'DELUSER', user);
    }
  });

  it('diagnoses a db index beyond the configured databases as unknown-database', async () => {
    const u = new URL(db.url);
    u.pathname = '/9999';
    const err = await connectError(u.toString());
    assert.equal(err.kind, 'unknown-database');
    assert.match(err.message, /DB index is out of range/);
  });
});

describe('redis connection failures', () => {
  it('diagnoses a closed port as refused, fast, without ioredis console noise', async () => {
    const printed: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => printed.push(args);
    try {
      const started = Date.now();
      const err = await connectError(`redis://127.0.0.1:${await closedPort()}/0`);
      assert.equal(err.kind, 'refused');
      assert.ok(Date.now() - started < 2_000, 'no reconnect loop while connecting');
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      console.error = original;
    }
    assert.deepEqual(printed, []);
  });

  it('diagnoses an unresolvable host as unknown-host', async () => {
    const err = await connectError('redis://no-such-host.invalid:6379/0');
    assert.equal(err.kind, 'unknown-host');
  });

  it('diagnoses a server that accepts but never answers as timeout', async () => {
    const silent = await silentServer();
    try {
      const started = Date.now();
      const err = await connectError(`redis://127.0.0.1:${silent.port}/0`, { connectTimeoutMs: 300 });
      assert.equal(err.kind, 'timeout');
      assert.match(err.message, /300 ms/);
      assert.ok(Date.now() - started < 2_000);
    } finally {
      await silent.close();
    }
  });
});
