/**
 * The PostgreSQL migration store against a real server: the tracking table (created once even
 * when two processes race, rows that follow their transaction) and the advisory lock (exclusive,
 * names its holder, freed by release and by the holder's session dying).
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
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql } from '../helpers/engine-connect.js';

const ownerA: LockOwner = { pid: 4242, host: 'build-a', token: randomUUID() };
const ownerB: LockOwner = { pid: 5353, host: 'build-b', token: randomUUID() };

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

describe('postgres migration store', { skip: skipReason('postgres') }, () => {
  let database: TestDatabase;
  let role: MigrationStoreRole;
  // Two pools, standing in for two dbward processes.
  let a: SqlConnection;
  let b: SqlConnection;

  before(async () => {
    database = await freshDatabase('postgres');
    a = await connectSql(postgresEngine, database.url);
    b = await connectSql(postgresEngine, database.url);
    role = await postgresEngine.roles.migrationStore!();
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
    });

    it('survives two processes creating the table at the same moment', async () => {
      for (let i = 0; i < 10; i++) {
        const table = `race_${i}`;
        await Promise.all([role.ensureStore(a, table), role.ensureStore(b, table)]);
        assert.deepEqual(await role.listApplied(b, table), []);
      }
    });

    it('still fails when a type of that name is in the way', async () => {
      await a.query("CREATE TYPE in_the_way AS ENUM ('x')");
      await assert.rejects(role.ensureStore(a, 'in_the_way'), (err: unknown) => {
        assert.ok(err instanceof QueryError);
        assert.equal(err.sqlState, '42710');
        return true;
      });
    });

    it('quotes the table name', async () => {
      const table = 'Dbward "Migrations"';
      await role.ensureStore(a, table);
      await role.recordApplied(a, table, appliedRow('7'));
      assert.equal((await role.listApplied(a, table))[0]?.version, '7');
    });

    it('lists nothing when the table does not exist yet', async () => {
      assert.deepEqual(await role.listApplied(a, 'never_created'), []);
    });

    it('round-trips rows exactly, completes a partial row, and removes rows', async () => {
      const table = 'round_trip';
      await role.ensureStore(a, table);
      const partial = appliedRow('20261122043000', {
        name: 'create_users',
        checksum: 'f'.repeat(64),
        durationMs: 9_007_199_254,
        statementsApplied: 2,
        statementsTotal: 5,
        status: 'partial',
      });
      await role.recordApplied(a, table, partial);
      assert.deepEqual(await role.listApplied(a, table), [partial]);

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

    it('rejects a status other than applied or partial', async () => {
      await role.ensureStore(a, 'bad_status');
      const bad = { ...appliedRow('1'), status: 'done' } as unknown as AppliedMigration;
      await assert.rejects(role.recordApplied(a, 'bad_status', bad), (err: unknown) => {
        assert.ok(err instanceof QueryError);
        assert.equal(err.sqlState, '23514');
        return true;
      });
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

    it('records inside the migration transaction: a rollback leaves no row', async () => {
      const table = 'rolled_back';
      await role.ensureStore(a, table);
      await assert.rejects(
        a.withTransaction(async (session) => {
          await role.recordApplied(session, table, appliedRow('1'));
          throw new Error('migration failed');
        }),
        /migration failed/,
      );
      await a.withTransaction(async (session) => {
        await role.recordApplied(session, table, appliedRow('2'));
        await role.removeApplied(session, table, '2');
        await role.recordApplied(session, table, appliedRow('3'));
      });
      assert.deepEqual(
        (await role.listApplied(a, table)).map((m) => m.version),
        ['3'],
      );
    });
  });

  describe('executeScript', () => {
    it('runs several statements as one script', async () => {
      await a.withSession((session) =>
        role.executeScript(
          session,
          `CREATE TABLE script_t (x int);
           INSERT INTO script_t VALUES (1), (2);
           -- a comment between statements
           CREATE INDEX script_t_x ON script_t (x);
           UPDATE script_t SET x = x * 10;`,
        ),
      );
      const { rows } = await a.query<{ x: number }>('SELECT x FROM script_t ORDER BY x');
      assert.deepEqual(rows, [{ x: 10 }, { x: 20 }]);
      const index = await a.query<{ r: string | null }>("SELECT to_regclass('script_t_x')::text AS r");
      assert.equal(index.rows[0]?.r, 'script_t_x');
    });

    it('leaves nothing behind inside a rolled-back transaction', async () => {
      await assert.rejects(
        a.withTransaction(async (session) => {
          await role.executeScript(session, 'CREATE TABLE gone_t (x int); INSERT INTO gone_t VALUES (1);');
          throw new Error('later statement failed');
        }),
        /later statement failed/,
      );
      const { rows } = await a.query<{ r: string | null }>("SELECT to_regclass('gone_t')::text AS r");
      assert.equal(rows[0]?.r, null);
    });

    it('reports a failing statement as a QueryError', async () => {
      await assert.rejects(
        a.withSession((session) => role.executeScript(session, 'SELECT 1;\nSELECT * FROM no_such_table;')),
        (err: unknown) => {
          assert.ok(err instanceof QueryError);
          assert.equal(err.sqlState, '42P01');
          assert.match(err.message, /line 2/);
          return true;
        },
      );
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
        assert.equal(holder.description, `pid 4242 on build-a since ${holder.since}`);

        const started = Date.now();
        const err = await lockedError(role.acquireLock(b, { timeoutMs: 300, owner: ownerB }));
        const waited = Date.now() - started;
        assert.ok(waited >= 250, `gave up after ${waited} ms`);
        assert.equal(err.exitCode, 1);
        assert.match(err.message, new RegExp(`^Another migration run holds the lock on ${database.name}: `));
        assert.match(err.message, /pid 4242 on build-a/);
        assert.match(err.hint ?? '', /dbward migrate unlock.*backend pid is \d+/);

        // A zero timeout only tries.
        await lockedError(role.acquireLock(b, { timeoutMs: 0, owner: ownerB }));
      } finally {
        await lockA.release();
      }
      await lockA.release(); // a second release is harmless
      assert.equal(await role.lockHolder(a), null);

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

    it('is freed when the holder session dies', async () => {
      const lockA = await role.acquireLock(a, { timeoutMs: 1000, owner: ownerA });
      try {
        const { rows } = await b.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
          [`dbward migrate pid=${ownerA.pid} host=${ownerA.host}`],
        );
        assert.equal(rows.length, 1);
        await b.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);

        const lockB = await role.acquireLock(b, { timeoutMs: 2000, owner: ownerB });
        await lockB.release();
      } finally {
        // Resolves although its session is gone.
        await lockA.release();
      }
      // The dead client was dropped, not pooled: A still works.
      assert.deepEqual((await a.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      assert.equal(await role.lockHolder(a), null);
    });

    it('is per database', async () => {
      const other = await freshDatabase('postgres');
      const c = await connectSql(postgresEngine, other.url);
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
