/** The library handle, the same on every engine: open, ping, health, query/command, close. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { closeAll, open, openAll } from '../../src/index.js';
import type { Database } from '../../src/index.js';
import { ConnectionError } from '../../src/core/errors.js';
import type { Logger } from '../../src/core/logger.js';
import { allTestEngines, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';

for (const engine of allTestEngines) {
  describe(`handle on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let db: Database;
    before(async () => {
      database = await freshDatabase(engine);
      db = await open(database.url);
    });
    after(async () => {
      await db?.close();
      await database?.cleanup();
    });

    it('pings and reports health: reachable, latency, version, pool', async () => {
      assert.ok((await db.ping()) >= 0);
      const health = await db.health();
      assert.equal(health.reachable, true);
      assert.ok(health.latencyMs !== null && health.latencyMs >= 0);
      assert.match(health.serverVersion ?? '', /^\d+\.\d+/);
      assert.ok(health.pool && health.pool.max >= 1);
      assert.equal(health.error, undefined);
    });

    it('round-trips data with parameters, never string pasting', async () => {
      if (db.kind === 'keyvalue') {
        await db.command('SET', 'dbward:k', "it's");
        assert.equal(await db.command('GET', 'dbward:k'), "it's");
        return;
      }
      const t = db.ident('odd "name"');
      await db.query(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, note VARCHAR(50))`);
      const placeholder = engine === 'postgres' ? '$1' : '?';
      await db.query(`INSERT INTO ${t} (id, note) VALUES (1, ${placeholder})`, ["'); DROP TABLE x; --"]);
      const { rows } = await db.query<{ note: string }>(`SELECT note FROM ${t} WHERE id = 1`);
      assert.equal(rows[0]?.note, "'); DROP TABLE x; --");
    });

    it('transactions commit, and roll back when the function throws', async () => {
      if (db.kind !== 'sql') return;
      await db.query('CREATE TABLE tx_t (id INTEGER PRIMARY KEY)');
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_t (id) VALUES (1)');
      });
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO tx_t (id) VALUES (2)');
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
      const { rows } = await db.query<{ id: number }>('SELECT id FROM tx_t ORDER BY id');
      assert.deepEqual(
        rows.map((r) => Number(r.id)),
        [1],
      );
    });

    it('warns when a connection is held past leakWarning, with where it was taken', async () => {
      if (db.kind !== 'sql') return;
      const warnings: string[] = [];
      const logger: Logger = {
        debug() {},
        info() {},
        warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f)}`),
      };
      const leaky = await open({ url: database.url, leakWarning: 50 }, { logger });
      try {
        if (leaky.kind !== 'sql') throw new Error('expected sql');
        await leaky.session(() => new Promise((resolve) => setTimeout(resolve, 250)));
        await leaky.session(() => Promise.resolve());
      } finally {
        await leaky.close();
      }
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /possible leak/);
      assert.match(warnings[0]!, /handle\.test\.ts/);
    });
  });
}

describe('openAll', () => {
  it('opens what it can and reports the rest, one result per target', async () => {
    const database = await freshDatabase('sqlite');
    try {
      const result = await openAll({
        file: null,
        source: 'test',
        defaultTarget: null,
        targets: [
          (await import('../../src/config/load-config.js')).targetFromInput({
            name: 'good',
            url: database.url,
          }),
          (await import('../../src/config/load-config.js')).targetFromInput({
            name: 'bad',
            url: 'postgres://u:pw@127.0.0.1:1/db',
          }),
        ],
      });
      assert.deepEqual(
        result.results.map((r) => [r.target, r.ok]),
        [
          ['good', true],
          ['bad', false],
        ],
      );
      const bad = result.results[1]!;
      assert.ok(!bad.ok && bad.error.exitCode === 3);
      assert.ok(result.handles.has('good'));
      await result.close();
    } finally {
      await database.cleanup();
    }
  });

  it('closeAll closes every open handle (graceful shutdown)', async () => {
    const database = await freshDatabase('sqlite');
    const db = await open(database.url);
    await closeAll();
    await assert.rejects(db.ping());
    await database.cleanup();
  });

  it('a refused connection rejects with a ConnectionError of kind refused', async () => {
    await assert.rejects(
      open('postgres://u@127.0.0.1:1/db'),
      (err: unknown) => err instanceof ConnectionError && err.kind === 'refused',
    );
  });
});
