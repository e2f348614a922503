/**
 * The MySQL/MariaDB migration store against a real server: the tracking table (created once even
 * when two processes race, partial rows completed in place), statement splitting with DELIMITER,
 * and the GET_LOCK lock (exclusive, names its holder, freed by release and by the holder's
 * connection dying).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DbwardError, QueryError } from '../../src/core/errors.js';
import type {
  AppliedMigration,
  LockOwner,
  MigrationStoreRole,
  SqlConnection,
} from '../../src/engines/contract.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql } from '../helpers/engine-connect.js';

const ownerA: LockOwner = { pid: 4242, host: 'build-a', token: randomUUID() };
const ownerB: LockOwner = { pid: 5353, host: 'build-b', token: randomUUID() };

const lockName = "CONCAT('dbward_migrations:', DATABASE())";

/** A complete tracking row; `overrides` change single fields. */
function appliedRow(version: string, overrides: Partial<AppliedMigration> = {}): AppliedMigration {
  return {
    version,
    name: `migration_${version}`,
    checksum: 'a'.repeat(64),
    appliedAt: '2026-11-22T04:00:00.123Z',
    durationMs: 1234,
    appliedBy: 'ci@build-a',
    dbwardVersion: '0.1.0',
    statementsApplied: 3,
    statementsTotal: 3,
    status: 'applied',
    ...overrides,
  };
}

/** The E_MIGRATION_LOCKED error `promise` rejects with. */
async function lockedError(promise: Promise<unknown>): Promise<DbwardError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    assert.equal(err.code, 'E_MIGRATION_LOCKED');
    return err;
  }
  assert.fail('expected the lock to be refused');
}

describe('mysql migration store', { skip: skipReason('mysql') }, () => {
  let database: TestDatabase;
  let role: MigrationStoreRole;
  // Two pools, standing in for two dbward processes.
  let a: SqlConnection;
  let b: SqlConnection;

  before(async () => {
    database = await freshDatabase('mysql');
    a = await connectSql(mysqlEngine, database.url);
    b = await connectSql(mysqlEngine, database.url);
    role = await mysqlEngine.roles.migrationStore!();
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await database?.cleanup();
  });

  describe('tracking table', () => {
    it('creates the table once; a second ensureStore is a no-op', async () => {
      await role.ensureStore(a, 'twice');
      await role.recordApplied(a, 'twice', appliedRow('1'));
      await role.ensureStore(a, 'twice');
      assert.deepEqual(
        (await role.listApplied(a, 'twice')).map((m) => m.version),
        ['1'],
      );
      const { rows } = await a.query<{ engine: string }>(
        "SELECT ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'twice'",
      );
      assert.equal(rows[0]?.engine, 'InnoDB');
    });

    it('survives two processes creating the table at the same moment', async () => {
      for (let i = 0; i < 10; i++) {
        const table = `race_${i}`;
        await Promise.all([role.ensureStore(a, table), role.ensureStore(b, table)]);
        assert.deepEqual(await role.listApplied(b, table), []);
      }
    });

    it('quotes the table name', async () => {
      const table = 'Dbward `Migrations`';
      await role.ensureStore(a, table);
      await role.recordApplied(a, table, appliedRow('7'));
      assert.equal((await role.listApplied(a, table))[0]?.version, '7');
      await role.removeApplied(a, table, '7');
      assert.deepEqual(await role.listApplied(a, table), []);
    });

    it('lists nothing when the table does not exist yet', async () => {
      assert.deepEqual(await role.listApplied(a, 'never_created'), []);
    });

    it('round-trips rows exactly, completes a partial row step by step, and removes rows', async () => {
      const table = 'round_trip';
      await role.ensureStore(a, table);
      const base = {
        name: 'create_users',
        checksum: 'f'.repeat(64),
        durationMs: 9_007_199_254,
        statementsTotal: 5,
        status: 'partial' as const,
      };
      // As a non-transactional run does: one upsert after every statement, on the run's session.
      await a.withSession(async (session) => {
        for (let done = 1; done < 5; done++) {
          const partial = appliedRow('20261122043000', { ...base, statementsApplied: done });
          await role.recordApplied(session, table, partial);
          assert.deepEqual(await role.listApplied(a, table), [partial]);
        }
      });

      const completed = appliedRow('20261122043000', {
        name: 'create_users',
        checksum: 'f'.repeat(64),
        appliedAt: '2026-11-22T04:05:06.789Z',
        durationMs: 77,
        appliedBy: 'deploy@build-b',
        dbwardVersion: '0.2.0',
        statementsApplied: 5,
        statementsTotal: 5,
      });
      await role.recordApplied(a, table, completed);
      assert.deepEqual(await role.listApplied(a, table), [completed]);

      await role.removeApplied(a, table, '20261122043000');
      assert.deepEqual(await role.listApplied(a, table), []);
    });

    it('stores applied_at in UTC whatever the offset it is given in', async () => {
      const table = 'utc';
      await role.ensureStore(a, table);
      await role.recordApplied(a, table, appliedRow('1', { appliedAt: '2026-11-22T06:00:00.500+02:00' }));
      assert.equal((await role.listApplied(a, table))[0]?.appliedAt, '2026-11-22T04:00:00.500Z');
      const { rows } = await a.query<{ at: string }>(`SELECT CAST(applied_at AS CHAR) AS at FROM utc`);
      assert.equal(rows[0]?.at, '2026-11-22 04:00:00.500');
    });

    it('rejects a status other than applied or partial', async () => {
      await role.ensureStore(a, 'bad_status');
      const bad = { ...appliedRow('1'), status: 'done' } as unknown as AppliedMigration;
      await assert.rejects(role.recordApplied(a, 'bad_status', bad), QueryError);
    });

    it('orders versions numerically: 9 < 10 < 100', async () => {
      const table = 'ordering';
      await role.ensureStore(a, table);
      for (const version of ['100', '9', '20261122043000', '10']) {
        await role.recordApplied(a, table, appliedRow(version));
      }
      assert.deepEqual(
        (await role.listApplied(a, table)).map((m) => m.version),
        ['9', '10', '100', '20261122043000'],
      );
    });

    it('records inside a transaction: a rollback leaves no row', async () => {
      const table = 'rolled_back';
      await role.ensureStore(a, table);
      await assert.rejects(
        a.withTransaction(async (session) => {
          await role.recordApplied(session, table, appliedRow('1'));
          throw new Error('migration failed');
        }),
        /migration failed/,
      );
      assert.deepEqual(await role.listApplied(a, table), []);
    });
  });

  describe('splitStatements', () => {
    it('splits on DELIMITER and keeps quoted semicolons', () => {
      const sql = [
        'INSERT INTO t VALUES (\'a;b\', "c;d");',
        'DELIMITER $$',
        'CREATE PROCEDURE p()',
        'BEGIN',
        '  SELECT 1;',
        '  SELECT 2;',
        'END$$',
        'DELIMITER ;',
        '-- a comment; with a semicolon',
        'SELECT `odd;name` FROM t;',
      ].join('\n');
      assert.deepEqual(role.splitStatements(sql), [
        { text: 'INSERT INTO t VALUES (\'a;b\', "c;d")', line: 0 },
        { text: 'CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND', line: 2 },
        { text: '-- a comment; with a semicolon\nSELECT `odd;name` FROM t', line: 8 },
      ]);
    });
  });

  describe('executeScript', () => {
    it('runs several statements in order, procedures included', async () => {
      await a.withSession((session) =>
        role.executeScript(
          session,
          `CREATE TABLE script_t (x int, s varchar(10));
           INSERT INTO script_t VALUES (1, 'a;b'), (2, 'c');
           -- a comment between statements
           CREATE INDEX script_t_x ON script_t (x);
           DELIMITER $$
           CREATE PROCEDURE script_p()
           BEGIN
             UPDATE script_t SET x = x * 10;
             UPDATE script_t SET x = x + 1;
           END$$
           DELIMITER ;
           CALL script_p();`,
        ),
      );
      const { rows } = await a.query<{ x: number; s: string }>('SELECT x, s FROM script_t ORDER BY x');
      assert.deepEqual(rows, [
        { x: 11, s: 'a;b' },
        { x: 21, s: 'c' },
      ]);
      const index = await a.query("SHOW INDEX FROM script_t WHERE Key_name = 'script_t_x'");
      assert.equal(index.rowCount, 1);
    });

    it('stops at a failing statement, with its position in the whole script', async () => {
      const sql = 'CREATE TABLE stop_t (x int);\nSELECT * FROM no_such_table;\nCREATE TABLE never_t (x int);';
      await assert.rejects(
        a.withSession((session) => role.executeScript(session, sql)),
        (err: unknown) => {
          assert.ok(err instanceof QueryError);
          assert.equal(err.sqlState, '42S02');
          return true;
        },
      );
      await assert.rejects(
        a.withSession((session) => role.executeScript(session, 'SELECT 1;\nSELECT * FROM x WHERE;')),
        (err: unknown) => {
          assert.ok(err instanceof QueryError);
          assert.equal(err.position, 'SELECT 1;\nSELECT * FROM x WHERE'.length + 1);
          return true;
        },
      );
      const { rows } = await a.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('stop_t', 'never_t')",
      );
      assert.equal(Number(rows[0]?.n), 1);
    });
  });

  describe('lock', () => {
    it('is free at first', async () => {
      assert.equal(await role.lockHolder(a), null);
    });

    it('is exclusive and names its holder; release lets the next run in', async () => {
      const lockA = await role.acquireLock(a, { timeoutMs: 1000, owner: ownerA });
      try {
        const holder = await role.lockHolder(b);
        assert.ok(holder);
        assert.equal(holder.pid, ownerA.pid);
        assert.equal(holder.host, ownerA.host);
        assert.ok(holder.since && !Number.isNaN(Date.parse(holder.since)), `since: ${holder.since}`);
        assert.match(holder.since, /Z$/);
        assert.ok(Math.abs(Date.parse(holder.since) - Date.now()) < 60_000, `since: ${holder.since}`);
        assert.equal(holder.description, `pid 4242 on build-a since ${holder.since}`);

        const started = Date.now();
        const err = await lockedError(role.acquireLock(b, { timeoutMs: 1000, owner: ownerB }));
        const waited = Date.now() - started;
        assert.ok(waited >= 900, `gave up after ${waited} ms`);
        assert.equal(err.exitCode, 1);
        assert.match(err.message, new RegExp(`^Another migration run holds the lock on ${database.name}: `));
        assert.match(err.message, /pid 4242 on build-a since /);
        assert.match(err.hint ?? '', /dbward migrate unlock.*connection id is \d+/);

        // A fractional timeout waits about that long on MariaDB (rounded up to seconds on MySQL).
        const startedShort = Date.now();
        await lockedError(role.acquireLock(b, { timeoutMs: 300, owner: ownerB }));
        const waitedShort = Date.now() - startedShort;
        const mariadb = /mariadb/i.test(await b.serverVersion());
        assert.ok(waitedShort >= 250, `gave up after ${waitedShort} ms`);
        if (mariadb) assert.ok(waitedShort < 900, `MariaDB waited ${waitedShort} ms for a 300 ms timeout`);

        // A zero timeout only tries.
        const startedZero = Date.now();
        await lockedError(role.acquireLock(b, { timeoutMs: 0, owner: ownerB }));
        assert.ok(Date.now() - startedZero < 900, `waited ${Date.now() - startedZero} ms`);
      } finally {
        await lockA.release();
      }
      await lockA.release(); // a second release is harmless
      assert.equal(await role.lockHolder(a), null);
      const rows = await a.query('SELECT * FROM dbward_migration_lock');
      assert.equal(rows.rowCount, 0);

      const lockB = await role.acquireLock(b, { timeoutMs: 300, owner: ownerB });
      try {
        assert.equal((await role.lockHolder(a))?.host, ownerB.host);
      } finally {
        await lockB.release();
      }
      assert.equal(await role.lockHolder(a), null);
    });

    it('waits for a holder that releases within the timeout', async () => {
      const lockA = await role.acquireLock(a, { timeoutMs: 1000, owner: ownerA });
      const waiting = role.acquireLock(b, { timeoutMs: 5000, owner: ownerB });
      setTimeout(() => void lockA.release(), 200);
      const lockB = await waiting;
      assert.equal((await role.lockHolder(a))?.pid, ownerB.pid);
      await lockB.release();
    });

    it('names a holder that is not dbward by its connection', async () => {
      await a.withSession(async (session) => {
        const { rows } = await session.query<{ got: number; id: number }>(
          `SELECT GET_LOCK(${lockName}, 0) AS got, CONNECTION_ID() AS id`,
        );
        assert.equal(Number(rows[0]?.got), 1);
        try {
          const holder = await role.lockHolder(b);
          assert.ok(holder);
          assert.equal(holder.pid, null);
          assert.match(holder.description, new RegExp(`^connection ${rows[0]?.id}( from \\S+)?$`));
          const err = await lockedError(role.acquireLock(b, { timeoutMs: 0, owner: ownerB }));
          assert.match(err.message, new RegExp(`connection ${rows[0]?.id}`));
        } finally {
          await session.query(`SELECT RELEASE_LOCK(${lockName})`);
        }
      });
      assert.equal(await role.lockHolder(a), null);
    });

    it('is freed when the holder connection is killed', async () => {
      const lockA = await role.acquireLock(a, { timeoutMs: 1000, owner: ownerA });
      try {
        const { rows } = await b.query<{ id: number | null }>(`SELECT IS_USED_LOCK(${lockName}) AS id`);
        const id = rows[0]?.id;
        assert.ok(id !== null && id !== undefined);
        await b.query(`KILL ${Number(id)}`);

        const lockB = await role.acquireLock(b, { timeoutMs: 2000, owner: ownerB });
        try {
          // The dead holder's row is stale: the new holder is named.
          assert.equal((await role.lockHolder(a))?.pid, ownerB.pid);
        } finally {
          await lockB.release();
        }
      } finally {
        // Resolves although its session is gone.
        await lockA.release();
      }
      // The dead connection was dropped, not pooled: A still works.
      assert.deepEqual((await a.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      assert.equal(await role.lockHolder(a), null);
    });

    it('is per database', async () => {
      const other = await freshDatabase('mysql');
      const c = await connectSql(mysqlEngine, other.url);
      try {
        const lockA = await role.acquireLock(a, { timeoutMs: 1000, owner: ownerA });
        try {
          assert.equal(await role.lockHolder(c), null);
          const lockC = await role.acquireLock(c, { timeoutMs: 300, owner: ownerB });
          await lockC.release();
        } finally {
          await lockA.release();
        }
      } finally {
        await c.close();
        await other.cleanup();
      }
    });
  });
});
