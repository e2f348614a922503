/**
 * The scratchDatabase role on real servers: a scratch database is created beside the target's,
 * its target opens with the original credentials and settings, drop() removes it (also twice,
 * also with sessions still connected), and a user who may not create databases gets a hint
 * naming the grant — which then works.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { targetFromInput } from '../../src/config/load-config.js';
import { DbwardError } from '../../src/core/errors.js';
import type { Target } from '../../src/core/target.js';
import type { EngineDefinition, ScratchDatabase, ScratchDatabaseRole } from '../../src/engines/contract.js';
import { engineForUrl } from '../../src/engines/registry.js';
import { open, openSql, type Database, type SqlDatabase } from '../../src/index.js';
import {
  adminUrl,
  freshDatabase,
  skipReason,
  type TestDatabase,
  type TestEngine,
} from '../harness/test-databases.js';
import { withCredentials } from '../helpers/engine-connect.js';

async function scratchRole(engine: EngineDefinition): Promise<ScratchDatabaseRole> {
  const load = engine.roles.scratchDatabase;
  assert.ok(load, `${engine.id} has a scratchDatabase role`);
  return load();
}

// Connections the scratch databases were made through: drop() runs on them, so they stay open
// until the end of the file.
const connections: Database[] = [];
after(async () => {
  for (const db of connections) await db.close();
});

/** Create a scratch database beside `target`, through a connection opened on the target. */
async function createScratch(target: Target): Promise<ScratchDatabase> {
  const engine = engineForUrl(target.url);
  const db = await open(target);
  connections.push(db);
  return (await scratchRole(engine)).createScratch(db.connection, {
    target,
    spec: engine.parseUrl(target.url),
  });
}

/** Whether the scratch database still exists, asked of the server (or the file system). */
async function exists(engine: TestEngine, scratch: ScratchDatabase): Promise<boolean> {
  if (engine === 'sqlite') {
    const file = decodeURIComponent(scratch.target.url.replace(/^sqlite:/, '').replace(/\?.*$/, ''));
    return existsSync(file);
  }
  const name = decodeURIComponent(new URL(scratch.target.url).pathname.slice(1));
  const admin = await openSql(adminUrl(engine)!);
  try {
    const sql =
      engine === 'postgres'
        ? 'SELECT 1 FROM pg_database WHERE datname = $1'
        : 'SELECT 1 FROM information_schema.schemata WHERE schema_name = ?';
    return (await admin.query(sql, [name])).rows.length > 0;
  } finally {
    await admin.close();
  }
}

for (const engine of ['postgres', 'mysql', 'sqlite'] as TestEngine[]) {
  describe(`scratch database on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let target: Target;
    // Handles opened by a test, closed after it whatever happened.
    const opened: SqlDatabase[] = [];

    before(async () => {
      database = await freshDatabase(engine);
      // A query parameter the scratch URL must keep.
      const param = engine === 'postgres' ? 'application_name=dbward-test' : 'charset=utf8mb4';
      target = targetFromInput({
        name: 'app',
        url: engine === 'sqlite' ? database.url : `${database.url}?${param}`,
      });
    });
    after(async () => {
      for (const db of opened) await db.close();
      await database?.cleanup();
    });

    it('creates an empty database that opens with the target settings, and drop() removes it (twice is fine)', async () => {
      const scratch = await createScratch(target);
      try {
        assert.equal(scratch.target.name, 'app~scratch');
        assert.notEqual(scratch.target.url, target.url);
        assert.deepEqual(scratch.target.options, target.options);
        if (engine !== 'sqlite') {
          const [original, copy] = [new URL(target.url), new URL(scratch.target.url)];
          assert.equal(copy.username, original.username);
          assert.equal(copy.password, original.password);
          assert.equal(copy.host, original.host);
          assert.equal(copy.search, original.search);
          assert.match(copy.pathname, /^\/dbward_scratch_[0-9a-f]{12}$/);
          if (original.password) {
            assert.ok(!scratch.target.displayUrl.includes(decodeURIComponent(original.password)));
          }
        }
        assert.ok(await exists(engine, scratch), 'created');

        const db = await openSql(scratch.target);
        opened.push(db);
        const tables =
          engine === 'postgres'
            ? "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
            : engine === 'mysql'
              ? 'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()'
              : "SELECT name FROM sqlite_schema WHERE type = 'table'";
        assert.deepEqual((await db.query(tables)).rows, [], 'empty');
        if (engine === 'postgres') {
          const { rows } = await db.query<{ name: string }>(
            "SELECT current_setting('application_name') AS name",
          );
          assert.equal(rows[0]?.name, 'dbward-test', 'the URL parameters apply to the scratch database');
        }
        await db.query('CREATE TABLE scratch_probe (id INTEGER PRIMARY KEY, label VARCHAR(20))');
        await db.query("INSERT INTO scratch_probe (id, label) VALUES (1, 'one')");
        assert.deepEqual((await db.query<{ label: string }>('SELECT label FROM scratch_probe')).rows, [
          { label: 'one' },
        ]);
        // Created beside the target, not in it.
        const original = await openSql(target);
        opened.push(original);
        const inTarget =
          engine === 'sqlite'
            ? "SELECT name FROM sqlite_schema WHERE name = 'scratch_probe'"
            : engine === 'postgres'
              ? "SELECT tablename FROM pg_tables WHERE tablename = 'scratch_probe'"
              : "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'scratch_probe'";
        assert.equal((await original.query(inTarget)).rows.length, 0);
        await db.close();
      } finally {
        await scratch.drop();
      }
      assert.equal(await exists(engine, scratch), false, 'dropped');
      await scratch.drop();
      assert.equal(await exists(engine, scratch), false, 'still dropped');
    });

    it('drop() works while a session is still connected to it', async () => {
      const scratch = await createScratch(target);
      const db = await openSql(scratch.target);
      opened.push(db);
      await db.query('CREATE TABLE held (id INTEGER)');
      await scratch.drop();
      assert.equal(await exists(engine, scratch), false);
      if (engine === 'sqlite') {
        for (const suffix of ['-wal', '-shm']) {
          const file = decodeURIComponent(scratch.target.url.replace(/^sqlite:/, '').replace(/\?.*$/, ''));
          assert.equal(existsSync(`${file}${suffix}`), false, `${suffix} removed`);
        }
      }
    });

    it('two scratch databases of one target are distinct', async () => {
      const [a, b] = [await createScratch(target), await createScratch(target)];
      try {
        assert.notEqual(a.target.url, b.target.url);
      } finally {
        await a.drop();
        await b.drop();
      }
    });
  });
}

describe('scratch database without the privilege to create one', () => {
  const suffix = (): string => randomBytes(4).toString('hex');

  it(
    'postgres: names ALTER ROLE … CREATEDB, and works once granted',
    { skip: skipReason('postgres') },
    async () => {
      const database = await freshDatabase('postgres');
      const admin = await openSql(adminUrl('postgres')!);
      const role = `dbward_noscratch_${suffix()}`;
      try {
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-scratch'`);
        const target = targetFromInput(withCredentials(database.url, role, 'pw-scratch'));
        const error = await createScratch(target).then(
          () => assert.fail('expected CREATE DATABASE to be refused'),
          (err: unknown) => err,
        );
        assert.ok(error instanceof DbwardError, String(error));
        assert.equal(error.code, 'E_SCRATCH_DATABASE');
        assert.match(error.message, new RegExp(`role ${role} may not create databases`));
        assert.ok(error.hint?.includes(`ALTER ROLE "${role}" CREATEDB`), error.hint);

        await admin.query(`ALTER ROLE ${role} CREATEDB`);
        const scratch = await createScratch(target);
        try {
          const db = await openSql(scratch.target);
          await db.query('CREATE TABLE t (id int)');
          await db.close();
        } finally {
          await scratch.drop();
        }
        assert.equal(await exists('postgres', scratch), false);
      } finally {
        await database.cleanup();
        await admin.query(`DROP ROLE IF EXISTS ${role}`);
        await admin.close();
      }
    },
  );

  it(
    'mysql: names the GRANT on dbward_scratch_%, and works once granted',
    { skip: skipReason('mysql') },
    async () => {
      const database = await freshDatabase('mysql');
      const admin = await openSql(adminUrl('mysql')!);
      const user = `dbw_ns_${suffix()}`;
      const hosts = ['%', 'localhost'];
      try {
        for (const host of hosts) {
          await admin.query(`CREATE USER '${user}'@'${host}' IDENTIFIED BY 'pw-scratch'`);
          await admin.query(`GRANT ALL PRIVILEGES ON \`${database.name}\`.* TO '${user}'@'${host}'`);
        }
        const target = targetFromInput(withCredentials(database.url, user, 'pw-scratch'));
        const error = await createScratch(target).then(
          () => assert.fail('expected CREATE DATABASE to be refused'),
          (err: unknown) => err,
        );
        assert.ok(error instanceof DbwardError, String(error));
        assert.equal(error.code, 'E_SCRATCH_DATABASE');
        assert.match(error.message, new RegExp(`'${user}'@'[^']+' may not create databases`));
        const grant = /GRANT ALL PRIVILEGES ON `dbward_scratch_%`\.\* TO '([^']+)'@'([^']+)'/.exec(
          error.hint ?? '',
        );
        assert.ok(grant, error.hint);
        assert.equal(grant[1], user);

        // The grant exactly as the hint words it.
        await admin.query(grant[0]);
        const scratch = await createScratch(target);
        try {
          const db = await openSql(scratch.target);
          await db.query('CREATE TABLE t (id int)');
          await db.close();
        } finally {
          await scratch.drop();
        }
        assert.equal(await exists('mysql', scratch), false);
      } finally {
        await database.cleanup();
        for (const host of hosts) await admin.query(`DROP USER IF EXISTS '${user}'@'${host}'`);
        await admin.close();
      }
    },
  );
});
