/**
 * Which PostgreSQL statements refuse a transaction block, told by PostgreSQL's own parser
 * (libpg-query). No server needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { postgresMigrationStoreRole } from '../../src/engines/postgres/postgres-migration-store.js';
import { nonTransactionalStatement } from '../../src/engines/postgres/postgres-transaction-rules.js';

/** [sql, the name nonTransactionalStatement gives it] */
const refused: [string, string][] = [
  ['CREATE INDEX CONCURRENTLY users_email ON users (email)', 'CREATE INDEX CONCURRENTLY'],
  ['create unique index concurrently if not exists i on t (a) where a > 0', 'CREATE INDEX CONCURRENTLY'],
  ['DROP INDEX CONCURRENTLY IF EXISTS users_email', 'DROP INDEX CONCURRENTLY'],
  ['REINDEX INDEX CONCURRENTLY users_email', 'REINDEX CONCURRENTLY'],
  ['REINDEX (CONCURRENTLY) TABLE users', 'REINDEX CONCURRENTLY'],
  ['REINDEX (VERBOSE, CONCURRENTLY true) TABLE users', 'REINDEX CONCURRENTLY'],
  ['REINDEX SYSTEM', 'REINDEX SYSTEM'],
  ['REINDEX DATABASE', 'REINDEX DATABASE'],
  ['REINDEX DATABASE app', 'REINDEX DATABASE'],
  ['REINDEX SCHEMA public', 'REINDEX SCHEMA'],
  ['VACUUM', 'VACUUM'],
  ['VACUUM users', 'VACUUM'],
  ['VACUUM FULL users', 'VACUUM'],
  ['VACUUM ANALYZE users', 'VACUUM'],
  ['VACUUM (ANALYZE, VERBOSE) users (email)', 'VACUUM'],
  ['CLUSTER', 'CLUSTER'],
  ['CLUSTER (VERBOSE)', 'CLUSTER'],
  ['CREATE DATABASE app_copy', 'CREATE DATABASE'],
  ['DROP DATABASE IF EXISTS app_copy WITH (FORCE)', 'DROP DATABASE'],
  ['ALTER DATABASE app SET TABLESPACE fast', 'ALTER DATABASE ... SET TABLESPACE'],
  ["CREATE TABLESPACE fast LOCATION '/mnt/fast'", 'CREATE TABLESPACE'],
  ['DROP TABLESPACE IF EXISTS fast', 'DROP TABLESPACE'],
  ["ALTER SYSTEM SET work_mem = '64MB'", 'ALTER SYSTEM'],
  ['ALTER SYSTEM RESET ALL', 'ALTER SYSTEM'],
  ["ALTER TYPE mood ADD VALUE 'meh'", 'ALTER TYPE ... ADD VALUE'],
  ["ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'meh' BEFORE 'sad'", 'ALTER TYPE ... ADD VALUE'],
  [
    'ALTER TABLE events DETACH PARTITION events_2026 CONCURRENTLY',
    'ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY',
  ],
  ["CREATE SUBSCRIPTION sub CONNECTION 'host=primary dbname=app' PUBLICATION pub", 'CREATE SUBSCRIPTION'],
  [
    "CREATE SUBSCRIPTION sub CONNECTION 'host=primary' PUBLICATION pub WITH (create_slot = true, connect = true)",
    'CREATE SUBSCRIPTION',
  ],
  ['DROP SUBSCRIPTION IF EXISTS sub', 'DROP SUBSCRIPTION'],
  ['ALTER SUBSCRIPTION sub REFRESH PUBLICATION', 'ALTER SUBSCRIPTION ... REFRESH PUBLICATION'],
  [
    'ALTER SUBSCRIPTION sub REFRESH PUBLICATION WITH (copy_data = false)',
    'ALTER SUBSCRIPTION ... REFRESH PUBLICATION',
  ],
  ['ALTER SUBSCRIPTION sub SET PUBLICATION pub2', 'ALTER SUBSCRIPTION ... PUBLICATION (refresh)'],
  ['ALTER SUBSCRIPTION sub ADD PUBLICATION pub2', 'ALTER SUBSCRIPTION ... PUBLICATION (refresh)'],
  [
    'ALTER SUBSCRIPTION sub DROP PUBLICATION pub2 WITH (refresh = true)',
    'ALTER SUBSCRIPTION ... PUBLICATION (refresh)',
  ],
  ['ALTER SUBSCRIPTION sub SET (failover = true)', 'ALTER SUBSCRIPTION ... SET (failover)'],
  ['ALTER SUBSCRIPTION sub SET (two_phase = false)', 'ALTER SUBSCRIPTION ... SET (two_phase)'],
  ['DISCARD ALL', 'DISCARD ALL'],
  ["COMMIT PREPARED 'tx1'", 'COMMIT PREPARED'],
  ["ROLLBACK PREPARED 'tx1'", 'ROLLBACK PREPARED'],
];

/** Statements that look close to one above but run fine inside a transaction block. */
const allowed: string[] = [
  'CREATE INDEX users_email ON users (email)',
  'DROP INDEX users_email',
  'DROP TABLE users',
  'REINDEX TABLE users',
  'REINDEX INDEX users_email',
  'REINDEX (CONCURRENTLY false) TABLE users',
  'REINDEX (CONCURRENTLY off) TABLE users',
  'ANALYZE',
  'ANALYZE users',
  'ANALYZE VERBOSE users (email)',
  'CLUSTER users',
  'CLUSTER users USING users_pkey',
  'ALTER DATABASE app CONNECTION LIMIT 10',
  "ALTER DATABASE app SET work_mem = '64MB'",
  'ALTER TABLESPACE fast SET (random_page_cost = 1.1)',
  "ALTER TYPE mood RENAME VALUE 'meh' TO 'okay'",
  "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
  'ALTER TABLE events DETACH PARTITION events_2026',
  'ALTER TABLE events DETACH PARTITION events_2026 FINALIZE',
  "CREATE SUBSCRIPTION sub CONNECTION 'host=primary' PUBLICATION pub WITH (connect = false)",
  "CREATE SUBSCRIPTION sub CONNECTION 'host=primary' PUBLICATION pub WITH (create_slot = false)",
  "CREATE SUBSCRIPTION sub CONNECTION 'host=primary' PUBLICATION pub WITH (create_slot = off, enabled = false)",
  'ALTER SUBSCRIPTION sub SET PUBLICATION pub2 WITH (refresh = false)',
  'ALTER SUBSCRIPTION sub ADD PUBLICATION pub2 WITH (refresh = 0)',
  'ALTER SUBSCRIPTION sub SET (binary = true)',
  'ALTER SUBSCRIPTION sub DISABLE',
  'DISCARD PLANS',
  'DISCARD TEMP',
  'REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals',
  'SELECT 1',
  "INSERT INTO settings (name, value) VALUES ('system', 'database')",
  "SELECT 'CREATE INDEX CONCURRENTLY i ON t (a)'",
];

describe('PostgreSQL statements that refuse a transaction block', () => {
  for (const [sql, name] of refused) {
    it(`${sql} → ${name}`, async () => {
      assert.equal(await nonTransactionalStatement(sql), name);
      // Also found after ordinary statements, with a trailing semicolon and comments around it.
      assert.equal(
        await nonTransactionalStatement(
          `-- setup\nCREATE TABLE t0 (a int);\n/* then */ ${sql};\nSELECT 1;\n`,
        ),
        name,
      );
    });
  }

  for (const sql of allowed) {
    it(`${sql} → null`, async () => {
      assert.equal(await nonTransactionalStatement(sql), null);
    });
  }

  it('the first such statement names the section', async () => {
    const sql =
      "CREATE TABLE t (a int);\nALTER TYPE mood ADD VALUE 'x';\nCREATE INDEX CONCURRENTLY i ON t (a);\nVACUUM t;\n";
    assert.equal(await nonTransactionalStatement(sql), 'ALTER TYPE ... ADD VALUE');
  });

  it('ignores the words inside a $$ function body, a string, or a comment', async () => {
    const body =
      'CREATE FUNCTION reindex_all() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n' +
      "  EXECUTE 'CREATE INDEX CONCURRENTLY i ON t (a)';\n  -- VACUUM;\nEND\n$$;\n" +
      'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $body$ CREATE INDEX CONCURRENTLY i ON t (a) $body$;\n';
    assert.equal(await nonTransactionalStatement(body), null);
    assert.equal(
      await nonTransactionalStatement(
        '-- CREATE INDEX CONCURRENTLY users_email ON users (email);\nCREATE INDEX users_email ON users (email);\n',
      ),
      null,
    );
    assert.equal(
      await nonTransactionalStatement('/* VACUUM FULL; DROP DATABASE app; */ CREATE TABLE t (a int);'),
      null,
    );
    assert.equal(
      await nonTransactionalStatement("COMMENT ON TABLE t IS 'run VACUUM and CREATE DATABASE by hand';"),
      null,
    );
  });

  it('SQL the parser rejects yields null (the server reports it when the section runs)', async () => {
    assert.equal(await nonTransactionalStatement('CREATE INDEX CONCURRENTLY ON;'), null);
    assert.equal(await nonTransactionalStatement('CREATE TABLE t (a int,);\nVACUUM;\n'), null);
    assert.equal(await nonTransactionalStatement('\\c otherdb\nVACUUM;\n'), null);
  });

  it('empty and comment-only SQL yields null', async () => {
    assert.equal(await nonTransactionalStatement(''), null);
    assert.equal(await nonTransactionalStatement('  \n-- nothing here\n'), null);
    assert.equal(await nonTransactionalStatement(';;'), null);
  });

  it('is the PostgreSQL migration store role’s nonTransactionalStatement', async () => {
    const role = postgresMigrationStoreRole;
    assert.equal(typeof role.nonTransactionalStatement, 'function');
    assert.equal(
      await role.nonTransactionalStatement?.('CREATE INDEX CONCURRENTLY i ON t (a)'),
      'CREATE INDEX CONCURRENTLY',
    );
    assert.equal(await role.nonTransactionalStatement?.('CREATE INDEX i ON t (a)'), null);
  });
});
