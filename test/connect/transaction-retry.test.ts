/**
 * `transaction(fn, { retries })` re-runs the whole transaction when the server aborts it for a
 * serialization failure or a deadlock. Provoked for real: two transactions that collide.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSql, type SqlDatabase, type SqlSession } from '../../src/index.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';

/** Two parties meet here once before either goes on. */
function barrier(): () => Promise<void> {
  let waiting = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return () => {
    if (++waiting === 2) release();
    return all;
  };
}

describe('transaction retries on postgres (serialization failure)', { skip: skipReason('postgres') }, () => {
  let database: TestDatabase;
  let db: SqlDatabase;
  before(async () => {
    database = await freshDatabase('postgres');
    db = await openSql(database.url);
    await db.query('CREATE TABLE shifts (doctor text, on_call boolean)');
  });
  after(async () => {
    await db?.close();
    await database?.cleanup();
  });

  // Write skew: each transaction reads the other's row and writes its own; SERIALIZABLE must abort one.
  const collide = async (retries: number): Promise<PromiseSettledResult<void>[]> => {
    await db.query('DELETE FROM shifts');
    await db.query("INSERT INTO shifts VALUES ('alice', true), ('bob', true)");
    const meet = barrier();
    const attempt =
      (me: string) =>
      async (tx: SqlSession): Promise<void> => {
        const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM shifts WHERE on_call');
        await meet();
        if (Number(rows[0]!.n) >= 2)
          await tx.query('UPDATE shifts SET on_call = false WHERE doctor = $1', [me]);
      };
    return Promise.allSettled([
      db.transaction(attempt('alice'), { isolation: 'serializable', retries }),
      db.transaction(attempt('bob'), { isolation: 'serializable', retries }),
    ]);
  };

  it('without retries one transaction fails with SQLSTATE 40001', async () => {
    const results = await collide(0);
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 1);
    assert.equal((failed[0] as PromiseRejectedResult).reason.sqlState, '40001');
  });

  it('with retries both commit and the invariant holds', async () => {
    const results = await collide(3);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled'],
    );
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM shifts WHERE on_call');
    assert.equal(Number(rows[0]!.n), 1);
  });
});

describe('transaction retries on mysql (deadlock)', { skip: skipReason('mysql') }, () => {
  let database: TestDatabase;
  let db: SqlDatabase;
  before(async () => {
    database = await freshDatabase('mysql');
    db = await openSql(database.url);
    await db.query('CREATE TABLE accounts (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB');
    await db.query('INSERT INTO accounts VALUES (1, 100), (2, 100)');
  });
  after(async () => {
    await db?.close();
    await database?.cleanup();
  });

  it('a deadlocked transfer is retried and both transfers land', async () => {
    const meet = barrier();
    const transfer =
      (from: number, to: number) =>
      async (tx: SqlSession): Promise<void> => {
        await tx.query('UPDATE accounts SET balance = balance - 10 WHERE id = ?', [from]);
        await meet();
        await tx.query('UPDATE accounts SET balance = balance + 10 WHERE id = ?', [to]);
      };
    const results = await Promise.allSettled([
      db.transaction(transfer(1, 2), { retries: 3 }),
      db.transaction(transfer(2, 1), { retries: 3 }),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled'],
    );
    const { rows } = await db.query<{ id: number; balance: number }>(
      'SELECT id, balance FROM accounts ORDER BY id',
    );
    assert.deepEqual(
      rows.map((r) => Number(r.balance)),
      [100, 100],
    );
  });
});
