/**
 * The PostgreSQL connection role against a real server: pooling, sessions, transactions,
 * retryable errors, QueryError details, and the diagnosis of every connect failure we can
 * provoke on a test server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConnectionError, QueryError } from '../../src/core/errors.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import { defaultTargetOptions, type TargetOptions } from '../../src/core/target.js';
import type { SqlConnection, SqlSession } from '../../src/engines/contract.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { sslOptions } from '../../src/engines/postgres/postgres-connection.js';
import { connectionFailureKind, lineAndColumn } from '../../src/engines/postgres/postgres-errors.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import {
  closedPort,
  connectSql,
  expectConnectionError,
  silentServer,
  withCredentials,
} from '../helpers/engine-connect.js';

const connect = (
  url: string,
  options: Partial<TargetOptions> = {},
  logger?: Logger,
): Promise<SqlConnection> => connectSql(postgresEngine, url, options, logger);

/** The ConnectionError a connect attempt fails with (the test fails if it connects). */
const connectFailure = (url: string, options: Partial<TargetOptions> = {}): Promise<ConnectionError> =>
  expectConnectionError(postgresEngine, url, options);

describe('postgres connection', { skip: skipReason('postgres') }, () => {
  let database: TestDatabase;
  let conn: SqlConnection;
  const roles: string[] = [];

  before(async () => {
    database = await freshDatabase('postgres');
    conn = await connect(database.url);
  });

  after(async () => {
    await conn?.close();
    await database?.cleanup();
    if (roles.length > 0) {
      const admin = await connect(adminUrl('postgres')!);
      for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.close();
    }
  });

  /** A role that exists only for this test run, dropped in `after`. */
  async function createRole(options: string): Promise<string> {
    const name = `dbward_t_role_${Math.random().toString(36).slice(2, 8)}`;
    await conn.query(`CREATE ROLE ${name} LOGIN ${options}`);
    roles.push(name);
    return name;
  }

  describe('queries', () => {
    it('runs a query with parameters and leaves driver types alone', async () => {
      const { rows, rowCount } = await conn.query<{ sum: number; big: string; num: string }>(
        'SELECT $1::int + $2::int AS sum, 9007199254740993::bigint AS big, 1.50::numeric AS num',
        [1, 2],
      );
      assert.equal(rowCount, 1);
      assert.deepEqual(rows, [{ sum: 3, big: '9007199254740993', num: '1.50' }]);
    });

    it('counts affected rows, and answers a multi-statement string with its last result', async () => {
      await conn.query('CREATE TABLE counted (x int)');
      const insert = await conn.query('INSERT INTO counted VALUES (1), (2), (3)');
      assert.equal(insert.rowCount, 3);
      const multi = await conn.query<{ n: string }>(
        'UPDATE counted SET x = x + 1 WHERE x > 1; SELECT count(*) AS n FROM counted',
      );
      assert.deepEqual(multi.rows, [{ n: '3' }]);
      assert.equal(multi.rowCount, 3); // 2 updated + 1 row selected
    });

    it('reports the server version without the distribution suffix', async () => {
      const version = await conn.serverVersion();
      assert.match(version, /^\d+(\.\d+)?$|^\d+(beta|rc)\d+$/);
      const { rows } = await conn.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      assert.ok(rows[0]!.v.startsWith(version));
    });

    it('pings, reports pool stats and quotes identifiers', async () => {
      await conn.ping();
      const stats = conn.poolStats();
      assert.equal(stats.max, defaultTargetOptions.pool.max);
      assert.ok(stats.total >= 1 && stats.total <= stats.max);
      assert.equal(stats.inUse, stats.total - stats.idle);
      assert.equal(stats.waiting, 0);
      assert.equal(conn.quoteIdent('plain'), '"plain"');
      assert.equal(conn.quoteIdent('we"ird'), '"we""ird"');
      await conn.query(`CREATE TABLE ${conn.quoteIdent('Mixed "Case"')} (id int)`);
      await conn.query(`SELECT * FROM ${conn.quoteIdent('Mixed "Case"')}`);
    });

    it('counts connections held in a session as in use', async () => {
      await conn.withSession(async () => {
        const stats = conn.poolStats();
        assert.ok(stats.inUse >= 1);
      });
    });

    it('keeps one session for withSession (session state survives between statements)', async () => {
      const pids = await conn.withSession(async (s) => {
        await s.query("SET application_name = 'dbward-session-test'");
        const a = await s.query<{ pid: number; app: string }>(
          "SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app",
        );
        const b = await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        assert.equal(a.rows[0]!.app, 'dbward-session-test');
        return [a.rows[0]!.pid, b.rows[0]!.pid];
      });
      assert.equal(pids[0], pids[1]);
    });

    it('does not let session state leak into the pool', async () => {
      await conn.withSession(async (s) => {
        await s.query("SET application_name = 'dbward-leak-test'");
        await s.query('SELECT pg_advisory_lock(4242)');
      });
      await conn.withTransaction(async (s) => {
        await s.query("SET search_path = 'nowhere'");
      });
      // Every pooled client, not just the next one, is back to its defaults.
      const checks = await Promise.all(
        Array.from({ length: 5 }, () =>
          conn.query<{ app: string; path: string }>(
            "SELECT current_setting('application_name') AS app, current_setting('search_path') AS path",
          ),
        ),
      );
      for (const { rows } of checks) {
        assert.equal(rows[0]!.app, 'dbward');
        assert.notEqual(rows[0]!.path, 'nowhere');
      }
      const { rows } = await conn.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242",
      );
      assert.equal(rows[0]!.n, '0');
    });

    it('destroys a session left inside a transaction instead of pooling it', async () => {
      await conn.withSession(async (s) => {
        await s.query('BEGIN');
        await s.query('CREATE TABLE never_committed (x int)');
      });
      const { rows } = await conn.query("SELECT to_regclass('never_committed') AS t");
      assert.deepEqual(rows, [{ t: null }]);
    });

    it('identifies itself as dbward to the server', async () => {
      const { rows } = await conn.query<{ app: string }>("SELECT current_setting('application_name') AS app");
      assert.equal(rows[0]!.app, 'dbward');
    });
  });

  describe('transactions', () => {
    before(async () => {
      await conn.query('CREATE TABLE ledger (id int PRIMARY KEY, v int NOT NULL)');
    });

    it('commits', async () => {
      const result = await conn.withTransaction(async (s) => {
        await s.query('INSERT INTO ledger VALUES (1, 10)');
        return 'done';
      });
      assert.equal(result, 'done');
      const { rows } = await conn.query('SELECT v FROM ledger WHERE id = 1');
      assert.deepEqual(rows, [{ v: 10 }]);
    });

    it('rolls back and rethrows when the function throws', async () => {
      const boom = new Error('boom');
      await assert.rejects(
        conn.withTransaction(async (s) => {
          await s.query('INSERT INTO ledger VALUES (2, 20)');
          throw boom;
        }),
        (err) => err === boom,
      );
      const { rows } = await conn.query('SELECT * FROM ledger WHERE id = 2');
      assert.deepEqual(rows, []);
    });

    it('rolls back when a statement fails, and the pooled session is clean afterwards', async () => {
      await assert.rejects(
        conn.withTransaction(async (s) => {
          await s.query('INSERT INTO ledger VALUES (3, 30)');
          await s.query('INSERT INTO ledger VALUES (3, 31)');
        }),
        (err) => err instanceof QueryError && err.sqlState === '23505',
      );
      const { rows } = await conn.query('SELECT * FROM ledger WHERE id = 3');
      assert.deepEqual(rows, []);
      // No session is left inside an aborted transaction.
      for (let i = 0; i < defaultTargetOptions.pool.max; i++) await conn.query('SELECT 1');
    });

    it('runs at the requested isolation level', async () => {
      const level = await conn.withTransaction(async (s) => {
        const { rows } = await s.query<{ l: string }>("SELECT current_setting('transaction_isolation') AS l");
        return rows[0]!.l;
      }, 'serializable');
      assert.equal(level, 'serializable');
    });

    it('marks a real serialization failure (two SERIALIZABLE sessions) as retryable', async () => {
      await conn.query('CREATE TABLE oncall (doctor text PRIMARY KEY, on_call boolean NOT NULL)');
      await conn.query("INSERT INTO oncall VALUES ('alice', true), ('bob', true)");
      // Write skew: both see two doctors on call and each takes one off. One must fail.
      const goOffCall = (doctor: string) => async (s: SqlSession) => {
        const { rows } = await s.query<{ n: string }>('SELECT count(*) AS n FROM oncall WHERE on_call');
        if (Number(rows[0]!.n) >= 2)
          await s.query('UPDATE oncall SET on_call = false WHERE doctor = $1', [doctor]);
      };
      const failure = await conn
        .withTransaction(async (s) => {
          await goOffCall('alice')(s);
          // The second transaction runs and commits while the first is still open.
          await conn.withTransaction(goOffCall('bob'), 'serializable');
        }, 'serializable')
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      assert.ok(failure instanceof QueryError, `expected a QueryError, got ${String(failure)}`);
      assert.equal(failure.sqlState, '40001');
      assert.equal(conn.isRetryable(failure), true);
      assert.equal(conn.isRetryable(new QueryError('x', { sqlState: '23505' })), false);
      assert.equal(conn.isRetryable(new Error('x')), false);
    });

    it('marks a real deadlock as retryable', async () => {
      await conn.query('CREATE TABLE locks (id int PRIMARY KEY)');
      await conn.query('INSERT INTO locks VALUES (1), (2)');
      let release!: () => void;
      const bothLocked = new Promise<void>((resolve) => (release = resolve));
      let locked = 0;
      const lockInOrder = (first: number, second: number) =>
        conn.withTransaction(async (s) => {
          await s.query("SET LOCAL deadlock_timeout = '50ms'");
          await s.query('SELECT * FROM locks WHERE id = $1 FOR UPDATE', [first]);
          if (++locked === 2) release();
          await bothLocked;
          await s.query('SELECT * FROM locks WHERE id = $1 FOR UPDATE', [second]);
        });
      const results = await Promise.allSettled([lockInOrder(1, 2), lockInOrder(2, 1)]);
      const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown);
      assert.equal(failures.length, 1);
      assert.ok(failures[0] instanceof QueryError);
      assert.equal(failures[0].sqlState, '40P01');
      assert.equal(conn.isRetryable(failures[0]), true);
    });
  });

  describe('query errors', () => {
    it('keep SQLSTATE, position, and a message that names line and column', async () => {
      const sql = 'SELECT 1\nFROM nowhere_at_all';
      const err = await conn.query(sql).then(
        () => assert.fail('query succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof QueryError);
      assert.equal(err.sqlState, '42P01');
      assert.equal(err.position, 15);
      assert.equal(err.context.engine, 'postgres');
      assert.equal(err.exitCode, 1);
      assert.match(err.message, /relation "nowhere_at_all" does not exist \(line 2, column 6\)/);
    });

    it('keep detail and hint', async () => {
      await conn.query('CREATE TABLE uniq (id int PRIMARY KEY)');
      await conn.query('INSERT INTO uniq VALUES (1)');
      const dup = await conn.query('INSERT INTO uniq VALUES (1)').catch((e: unknown) => e);
      assert.ok(dup instanceof QueryError);
      assert.equal(dup.sqlState, '23505');
      assert.equal(dup.detail, 'Key (id)=(1) already exists.');
      const hinted = await conn.query('SELECT * FROM uniq WHERE idd = 1').catch((e: unknown) => e);
      assert.ok(hinted instanceof QueryError);
      assert.equal(hinted.sqlState, '42703');
      assert.match(hinted.hint ?? '', /Perhaps you meant to reference the column "uniq.id"/);
    });

    it('a wrong parameter count (SQLSTATE 08P01) is a statement error, not a lost connection', async () => {
      const err = await conn.query('SELECT $1::int + $2::int', [1]).catch((e: unknown) => e);
      assert.ok(err instanceof QueryError, `expected a QueryError, got ${String(err)}`);
      assert.equal(err.sqlState, '08P01');
    });

    it('toQueryError maps a raw driver error too', async () => {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const raw = await client.query('SELEC 1').catch((e: unknown) => e);
      await client.end();
      const mapped = conn.toQueryError(raw, 'SELEC 1');
      assert.ok(mapped instanceof QueryError);
      assert.equal(mapped.sqlState, '42601');
      assert.equal(mapped.position, 1);
      assert.equal(mapped.cause, raw);
    });

    it('lineAndColumn counts characters, not bytes', () => {
      assert.equal(lineAndColumn('SELECT 1', 8), 'line 1, column 8');
      assert.equal(lineAndColumn("SELECT 'é'\n, x", 13), 'line 2, column 2');
      assert.equal(lineAndColumn("SELECT '🐘', x", 12), 'line 1, column 12');
    });
  });

  describe('lost connections', () => {
    it('turns a session killed mid-use into a ConnectionError and discards that client', async () => {
      const other = await connect(database.url);
      const err = await conn
        .withSession(async (s) => {
          const { rows } = await s.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await other.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          await s.query('SELECT 1');
        })
        .catch((e: unknown) => e);
      await other.close();
      assert.ok(err instanceof ConnectionError, `expected a ConnectionError, got ${String(err)}`);
      // The pool hands out working clients afterwards.
      for (let i = 0; i < 3; i++) await conn.query('SELECT 1');
    });

    it('logs (and survives) an idle pooled client being killed', async () => {
      const warnings: string[] = [];
      const logger: Logger = { ...silentLogger, warn: (m) => warnings.push(m) };
      const watched = await connect(database.url, {}, logger);
      const { rows } = await watched.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await conn.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
      for (let i = 0; i < 50 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(warnings.some((w) => /idle connection failed/.test(w)));
      await watched.query('SELECT 1');
      await watched.close();
    });
  });

  describe('close', () => {
    it('is idempotent and later calls fail clearly', async () => {
      const c = await connect(database.url);
      await c.close();
      await c.close();
      await assert.rejects(c.query('SELECT 1'), /connection to target "t" is closed/);
    });
  });

  describe('connect failures', () => {
    it('refused: a closed port', async () => {
      const err = await connectFailure(`postgres://postgres@127.0.0.1:${await closedPort()}/postgres`);
      assert.equal(err.kind, 'refused');
      assert.equal(err.exitCode, 3);
      assert.equal(err.context.engine, 'postgres');
    });

    it('unknown-host', async () => {
      const err = await connectFailure('postgres://postgres@nonexistent.invalid:5432/postgres');
      assert.equal(err.kind, 'unknown-host');
      assert.match(err.message, /nonexistent\.invalid/);
    });

    it('timeout: a server that accepts and never answers', async () => {
      const silent = await silentServer();
      try {
        const started = Date.now();
        const err = await connectFailure(`postgres://postgres@127.0.0.1:${silent.port}/postgres`, {
          connectTimeoutMs: 300,
        });
        assert.equal(err.kind, 'timeout');
        assert.match(err.message, /300 ms/);
        assert.ok(Date.now() - started < 5_000);
      } finally {
        await silent.close();
      }
    });

    it('unknown-database', async () => {
      const url = new URL(database.url);
      url.pathname = '/dbward_no_such_database';
      const err = await connectFailure(url.toString());
      assert.equal(err.kind, 'unknown-database');
      assert.match(err.message, /dbward_no_such_database/);
    });

    it('tls: TLS demanded from a server that does not offer it or is not trusted', async () => {
      const url = new URL(database.url);
      url.searchParams.set('sslmode', 'verify-full');
      const err = await connectFailure(url.toString());
      assert.equal(err.kind, 'tls');
    });

    it('auth-failed: a wrong password, which never appears in the error', async (t) => {
      const password = 'correct-horse-9f2c';
      const wrong = 'Wr0ng-pa55word-7d1e';
      const role = await createRole(`PASSWORD '${password}'`);
      const url = withCredentials(database.url, role, wrong);
      try {
        const c = await connect(url);
        await c.close();
        // Only a trust-auth server (a developer's own, no password in its URL) lets this in.
        if (!new URL(adminUrl('postgres')!).password) return t.skip('server uses trust authentication');
        assert.fail('connected with a wrong password');
      } catch (err) {
        assert.ok(err instanceof ConnectionError);
        assert.equal(err.kind, 'auth-failed');
        const everything = JSON.stringify({ ...err.toJSON(), stack: err.stack, cause: String(err.cause) });
        assert.ok(!everything.includes(wrong), 'the wrong password leaked');
        assert.ok(!everything.includes(password));
      }
    });

    it('auth-failed: a role that does not exist', async () => {
      const err = await connectFailure(withCredentials(database.url, 'dbward_no_such_role', 'whatever-pw'));
      assert.equal(err.kind, 'auth-failed');
    });

    it('permission-denied: no CONNECT privilege on the database', async () => {
      const role = await createRole(`PASSWORD 'pw-connect-1'`);
      await conn.query(`REVOKE CONNECT ON DATABASE ${database.name} FROM PUBLIC`);
      try {
        const err = await connectFailure(withCredentials(database.url, role, 'pw-connect-1'));
        assert.equal(err.kind, 'permission-denied');
      } finally {
        await conn.query(`GRANT CONNECT ON DATABASE ${database.name} TO PUBLIC`);
      }
    });

    it('too-many-connections: a role over its CONNECTION LIMIT', async () => {
      const role = await createRole(`PASSWORD 'pw-limit-1' CONNECTION LIMIT 1`);
      const url = withCredentials(database.url, role, 'pw-limit-1');
      const first = await connect(url);
      try {
        await first.withSession(async () => {
          const err = await connectFailure(url);
          assert.equal(err.kind, 'too-many-connections');
        });
      } finally {
        await first.close();
      }
    });

    it('no-hba-entry: a connection type pg_hba.conf has no line for', async (t) => {
      const url = process.env.DBWARD_TEST_POSTGRES_NOHBA_URL;
      if (!url) return t.skip('DBWARD_TEST_POSTGRES_NOHBA_URL is not set (the harness sets it)');
      const err = await connectFailure(url);
      assert.equal(err.kind, 'no-hba-entry');
    });
  });
});

describe('postgres TLS options from the URL', () => {
  it('follows libpq: require encrypts without verifying, verify-full verifies, prefer is plain', () => {
    assert.equal(sslOptions({}), false);
    assert.equal(sslOptions({ sslmode: 'disable' }), false);
    assert.equal(sslOptions({ sslmode: 'prefer' }), false);
    assert.deepEqual(sslOptions({ sslmode: 'require' }), { rejectUnauthorized: false });
    assert.deepEqual(sslOptions({ sslmode: 'verify-full' }), {});
    const verifyCa = sslOptions({ sslmode: 'verify-ca' });
    assert.ok(typeof verifyCa === 'object' && typeof verifyCa.checkServerIdentity === 'function');
    assert.deepEqual(sslOptions({ ssl: 'true' }), {});
    assert.deepEqual(sslOptions({ ssl: 'no-verify' }), { rejectUnauthorized: false });
    assert.throws(() => sslOptions({ sslmode: 'sometimes' }), /Unknown sslmode "sometimes"/);
    assert.throws(
      () => sslOptions({ sslmode: 'verify-full', sslrootcert: '/nonexistent/ca.pem' }),
      /sslrootcert/,
    );
  });
});

describe('postgres error classification', () => {
  const serverError = (code: string, message: string, severity = 'FATAL'): Error =>
    Object.assign(new Error(message), { code, severity });

  it('reads SQLSTATEs as connect failures only where they mean one', () => {
    assert.equal(
      connectionFailureKind(serverError('28P01', 'password authentication failed'), 'connect'),
      'auth-failed',
    );
    assert.equal(
      connectionFailureKind(serverError('28000', 'no pg_hba.conf entry for host "10.0.0.1"'), 'connect'),
      'no-hba-entry',
    );
    assert.equal(
      connectionFailureKind(
        serverError('28000', 'pg_hba.conf rejects connection for host "10.0.0.1"'),
        'connect',
      ),
      'permission-denied',
    );
    assert.equal(
      connectionFailureKind(serverError('53300', 'sorry, too many clients already'), 'connect'),
      'too-many-connections',
    );
    assert.equal(
      connectionFailureKind(
        serverError(
          '53300',
          'remaining connection slots are reserved for roles with the SUPERUSER attribute',
        ),
        'connect',
      ),
      'too-many-connections',
    );
    assert.equal(
      connectionFailureKind(serverError('42501', 'permission denied for database "x"'), 'connect'),
      'permission-denied',
    );
    // On a running session only FATAL ends the session; the same SQLSTATEs at ERROR are statement errors.
    assert.equal(
      connectionFailureKind(serverError('42501', 'permission denied for table t', 'ERROR'), 'query'),
      undefined,
    );
    assert.equal(
      connectionFailureKind(serverError('08P01', 'bind message supplies 1 parameters', 'ERROR'), 'query'),
      undefined,
    );
    assert.equal(
      connectionFailureKind(
        serverError('57P01', 'terminating connection due to administrator command'),
        'query',
      ),
      'unknown',
    );
  });

  it('reads Node socket errors', () => {
    const sys = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });
    assert.equal(connectionFailureKind(sys('ECONNREFUSED'), 'connect'), 'refused');
    assert.equal(connectionFailureKind(sys('EAI_AGAIN'), 'connect'), 'unknown-host');
    assert.equal(connectionFailureKind(sys('DEPTH_ZERO_SELF_SIGNED_CERT'), 'connect'), 'tls');
    assert.equal(connectionFailureKind(sys('ECONNRESET'), 'query'), 'unknown');
    assert.equal(connectionFailureKind(new Error('Query read timeout'), 'query'), undefined);
  });
});
