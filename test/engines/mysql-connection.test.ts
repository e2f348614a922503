import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QueryError, type ConnectionError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { silentLogger } from '../../src/core/logger.js';
import type { TargetOptions } from '../../src/core/target.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { connectionFailureKind } from '../../src/engines/mysql/mysql-errors.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import {
  closedPort,
  connectSql,
  expectConnectionError,
  silentServer,
  withCredentials,
} from '../helpers/engine-connect.js';

const skip = skipReason('mysql');

const open = (url: string, options: Partial<TargetOptions> = {}, logger?: Logger): Promise<SqlConnection> =>
  connectSql(mysqlEngine, url, options, logger);

/** The connection error `open(url)` fails with; fails the test if it connects. */
const connectError = (url: string, options: Partial<TargetOptions> = {}): Promise<ConnectionError> =>
  expectConnectionError(mysqlEngine, url, options);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('mysql connection', { skip }, () => {
  let db: TestDatabase;
  let conn: SqlConnection;
  let admin: SqlConnection;

  before(async () => {
    db = await freshDatabase('mysql');
    conn = await open(db.url);
    admin = await open(db.url);
  });

  after(async () => {
    await conn?.close();
    await admin?.close();
    await db?.cleanup();
  });

  it('connects and runs a parameterized query', async () => {
    const { rows, rowCount } = await conn.query<{ n: number; s: string }>('SELECT ? + 1 AS n, ? AS s', [
      41,
      "it's",
    ]);
    assert.deepEqual(rows, [{ n: 42, s: "it's" }]);
    assert.equal(rowCount, 1);
    assert.match(await conn.serverVersion(), /^\d+\.\d+\.\d+/);
  });

  it('returns plain row objects, and affected rows for writes', async () => {
    await conn.query('CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(20) NULL)');
    const insert = await conn.query('INSERT INTO items VALUES (?, ?), (?, ?)', [1, 'a', 2, undefined]);
    assert.deepEqual(insert, { rows: [], rowCount: 2 });
    const { rows } = await conn.query('SELECT id, label FROM items ORDER BY id LIMIT ?', [10]);
    assert.deepEqual(rows, [
      { id: 1, label: 'a' },
      { id: 2, label: null },
    ]);
    assert.equal(Object.getPrototypeOf(rows[0]), Object.prototype);
    assert.deepEqual(await conn.query('DELETE FROM items'), { rows: [], rowCount: 2 });
  });

  it('commits a transaction, and rolls back and rethrows when the callback throws', async () => {
    await conn.query('CREATE TABLE ledger (id INT PRIMARY KEY) ENGINE=InnoDB');
    const result = await conn.withTransaction(async (s) => {
      await s.query('INSERT INTO ledger VALUES (1)');
      return 'done';
    }, 'serializable');
    assert.equal(result, 'done');
    await assert.rejects(
      conn.withTransaction(async (s) => {
        await s.query('INSERT INTO ledger VALUES (2)');
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.deepEqual((await conn.query('SELECT id FROM ledger')).rows, [{ id: 1 }]);
    assert.equal(conn.poolStats().inUse, 0);
  });

  it('reports a real deadlock as retryable', async () => {
    await conn.query('CREATE TABLE pair (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
    await conn.query('INSERT INTO pair VALUES (1, 0), (2, 0)');
    // Each transaction locks one row, waits until the other holds its row, then asks for it.
    let arrived = 0;
    let bothLocked!: () => void;
    const barrier = new Promise<void>((resolve) => (bothLocked = resolve));
    const lockInOrder = (first: number, second: number) =>
      conn.withTransaction(async (s) => {
        await s.query('UPDATE pair SET v = v + 1 WHERE id = ?', [first]);
        if (++arrived === 2) bothLocked();
        await barrier;
        await s.query('UPDATE pair SET v = v + 1 WHERE id = ?', [second]);
      });
    const results = await Promise.allSettled([lockInOrder(1, 2), lockInOrder(2, 1)]);
    const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
    assert.equal(failures.length, 1, 'InnoDB rolls back exactly one deadlock victim');
    const victim = failures[0];
    assert.ok(victim instanceof QueryError);
    assert.equal(victim.sqlState, '40001');
    assert.match(victim.message, /ER_LOCK_DEADLOCK \(errno 1213/);
    assert.equal(conn.isRetryable(victim), true);
    assert.equal(conn.isRetryable(new Error('nope')), false);
  });

  it('reports a lock wait timeout as retryable', async () => {
    await conn.query('CREATE TABLE held (id INT PRIMARY KEY) ENGINE=InnoDB');
    await conn.query('INSERT INTO held VALUES (1)');
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const holder = conn.withTransaction(async (s) => {
      await s.query('SELECT id FROM held WHERE id = 1 FOR UPDATE');
      locked();
      await released;
    });
    await isLocked;
    const waiter = conn.withSession(async (s) => {
      await s.query('SET SESSION innodb_lock_wait_timeout = 1');
      try {
        await s.query('UPDATE held SET id = 2 WHERE id = 1');
      } finally {
        await s.query('SET SESSION innodb_lock_wait_timeout = DEFAULT');
      }
    });
    const err: unknown = await waiter.then(
      () => undefined,
      (e: unknown) => e,
    );
    release();
    await holder;
    assert.ok(err instanceof QueryError);
    assert.match(err.message, /errno 1205/);
    assert.equal(conn.isRetryable(err), true);
  });

  it('maps a syntax error to a QueryError with SQLSTATE, errno, line and position', async () => {
    const sql = 'SELECT 1\nFORM items';
    const err: unknown = await conn.query(sql).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof QueryError);
    assert.equal(err.sqlState, '42000');
    assert.match(err.message, /^ER_PARSE_ERROR \(errno 1064, SQLSTATE 42000\): .* at line 2$/s);
    assert.equal(err.position, sql.indexOf('items') + 1);
    assert.deepEqual(err.context, { engine: 'mysql', operation: 'query', target: 't' });
    // toQueryError on its own, for callers that run SQL some other way.
    const again = conn.toQueryError(err.cause, sql);
    assert.ok(again instanceof QueryError);
    assert.equal(again.sqlState, '42000');
  });

  it('quotes identifiers with backticks, doubling inner backticks', async () => {
    const name = 'odd`name';
    assert.equal(conn.quoteIdent(name), '`odd``name`');
    await conn.query(`CREATE TABLE ${conn.quoteIdent(name)} (x INT)`);
    const { rows } = await conn.query(
      'SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [db.name, name],
    );
    assert.deepEqual(rows, [{ t: name }]);
  });

  it('refuses a session used after its callback returned', async () => {
    let leaked: { query(sql: string): Promise<unknown> } | undefined;
    await conn.withSession(async (s) => {
      leaked = s;
      await s.query('SELECT 1');
    });
    await assert.rejects(
      leaked!.query('SELECT 1'),
      (err: Error & { code?: string }) => err.code === 'E_SESSION_ENDED',
    );
  });

  it('survives pooled connections being killed, idle or mid-transaction', async () => {
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };
    const victim = await open(db.url, {}, logger);
    try {
      const idleId = (await victim.query<{ id: number }>('SELECT CONNECTION_ID() AS id')).rows[0]?.id;
      await admin.query(`KILL ${Number(idleId)}`);
      await sleep(200);
      assert.equal(victim.poolStats().total, 0, 'the dead idle connection left the pool');
      assert.ok(warnings.some((w) => /pooled MySQL connection .* failed/.test(w)));
      assert.deepEqual((await victim.query('SELECT 1 AS one')).rows, [{ one: 1 }]);

      // Killed inside a transaction: ROLLBACK fails, the connection is destroyed, the caller's error wins.
      await assert.rejects(
        victim.withTransaction(async (s) => {
          const id = (await s.query<{ id: number }>('SELECT CONNECTION_ID() AS id')).rows[0]?.id;
          await admin.query(`KILL ${Number(id)}`);
          await sleep(100);
          throw new Error('original failure');
        }),
        /original failure/,
      );
      assert.ok(warnings.some((w) => /ROLLBACK failed/.test(w)));
      assert.equal(victim.poolStats().inUse, 0);
      assert.deepEqual((await victim.query('SELECT 2 AS two')).rows, [{ two: 2 }]);
    } finally {
      await victim.close();
    }
  });

  it('closes idle connections after pool.idleTimeoutMs (mysql2 ignores idleTimeout unless maxIdle < connectionLimit)', async () => {
    const c = await open(db.url, { pool: { max: 2, idleTimeoutMs: 500 } });
    try {
      assert.equal(c.poolStats().total, 1);
      // mysql2's reaper runs once a second.
      await sleep(2_200);
      assert.equal(c.poolStats().total, 0);
    } finally {
      await c.close();
    }
  });

  it('reports pool stats and closes idempotently', async () => {
    const options = { pool: { max: 3, idleTimeoutMs: 30_000 } };
    const c = await open(db.url, options);
    assert.deepEqual(c.poolStats(), { max: 3, total: 1, idle: 1, inUse: 0, waiting: 0 });
    await c.withSession(async () => {
      assert.deepEqual(c.poolStats(), { max: 3, total: 1, idle: 0, inUse: 1, waiting: 0 });
    });
    await c.close();
    await c.close();
    await assert.rejects(c.query('SELECT 1'), (err: Error & { code?: string }) => err.code === 'E_CLOSED');
  });
});

describe('mysql connection diagnosis', { skip }, () => {
  const suffix = randomBytes(4).toString('hex');
  const users = { pw: `dbw_pw_${suffix}`, nogrant: `dbw_ng_${suffix}`, limited: `dbw_lim_${suffix}` };
  const password = `Sup3r-secret-${suffix}`;
  let db: TestDatabase;
  let admin: SqlConnection;

  before(async () => {
    db = await freshDatabase('mysql');
    admin = await open(adminUrl('mysql') ?? '');
    // '%' for TCP clients; 'localhost' too, so an anonymous ''@localhost account cannot shadow ours.
    for (const host of ['%', 'localhost']) {
      await admin.query(`CREATE USER '${users.pw}'@'${host}' IDENTIFIED BY '${password}'`);
      await admin.query(`CREATE USER '${users.nogrant}'@'${host}' IDENTIFIED BY '${password}'`);
      await admin.query(
        `CREATE USER '${users.limited}'@'${host}' IDENTIFIED BY '${password}' WITH MAX_USER_CONNECTIONS 1`,
      );
      await admin.query(`GRANT ALL ON \`${db.name}\`.* TO '${users.limited}'@'${host}'`);
    }
  });

  after(async () => {
    for (const user of Object.values(users)) {
      for (const host of ['%', 'localhost']) await admin?.query(`DROP USER IF EXISTS '${user}'@'${host}'`);
    }
    await admin?.close();
    await db?.cleanup();
  });

  it('refused: nothing listens on the port', async () => {
    const port = await closedPort();
    const err = await connectError(`mysql://root@127.0.0.1:${port}/x`);
    assert.equal(err.kind, 'refused');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(err.exitCode, 3);
  });

  it('unknown host', async () => {
    const err = await connectError('mysql://root@nonexistent.invalid:3306/x');
    assert.equal(err.kind, 'unknown-host');
    assert.match(err.message, /nonexistent\.invalid/);
  });

  it('timeout: the server accepts but never greets', async () => {
    const silent = await silentServer();
    try {
      const err = await connectError(`mysql://root@127.0.0.1:${silent.port}/x`, { connectTimeoutMs: 300 });
      assert.equal(err.kind, 'timeout');
      assert.match(err.message, /300 ms/);
    } finally {
      await silent.close();
    }
  });

  it('unknown database', async () => {
    const url = new URL(db.url);
    url.pathname = '/no_such_db_here';
    const err = await connectError(url.toString());
    assert.equal(err.kind, 'unknown-database');
    assert.match(err.message, /no_such_db_here/);
  });

  it('wrong password, without printing it', async () => {
    const wrong = `Wr0ng-${suffix}-pass`;
    const err = await connectError(withCredentials(db.url, users.pw, wrong));
    assert.equal(err.kind, 'auth-failed');
    assert.match(err.message, new RegExp(users.pw));
    const printed = `${err.message} ${err.hint ?? ''} ${JSON.stringify(err.toJSON())}`;
    assert.ok(!printed.includes(wrong), printed);
    assert.ok(!printed.includes(password), printed);
  });

  it('permission denied on a database the user has no grant for', async () => {
    const err = await connectError(withCredentials(db.url, users.nogrant, password));
    assert.equal(err.kind, 'permission-denied');
    assert.ok(!err.message.includes(password));
  });

  it('too many connections for a user with MAX_USER_CONNECTIONS 1', async () => {
    const url = withCredentials(db.url, users.limited, password);
    const holder = await open(url);
    try {
      const err = await connectError(url);
      assert.equal(err.kind, 'too-many-connections');
    } finally {
      await holder.close();
    }
  });

  it('tls: ssl=true against a server without a trusted certificate', async (t) => {
    const url = `${db.url}?ssl=true`;
    let err: ConnectionError | undefined;
    try {
      await (await open(url)).close();
    } catch (e) {
      err = e as ConnectionError;
    }
    if (!err) return t.skip('this server presents a trusted certificate');
    assert.equal(err.kind, 'tls');
  });

  it('classifies the driver errors a test server cannot easily produce', () => {
    const e = (props: Record<string, unknown>) => Object.assign(new Error('x'), props);
    assert.equal(
      connectionFailureKind(e({ errno: 1130, code: 'ER_HOST_NOT_PRIVILEGED' })),
      'permission-denied',
    );
    assert.equal(
      connectionFailureKind(e({ errno: 1040, code: 'ER_CON_COUNT_ERROR' })),
      'too-many-connections',
    );
    assert.equal(
      connectionFailureKind(e({ errno: 1203, code: 'ER_TOO_MANY_USER_CONNECTIONS' })),
      'too-many-connections',
    );
    assert.equal(connectionFailureKind(e({ code: 'EAI_AGAIN' })), 'unknown-host');
    assert.equal(connectionFailureKind(e({ code: 'ETIMEDOUT' })), 'timeout');
    assert.equal(connectionFailureKind(e({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' })), 'tls');
    assert.equal(connectionFailureKind(e({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })), 'tls');
    assert.equal(connectionFailureKind(new Error('plain')), 'unknown');
  });
});
