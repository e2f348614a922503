// Smoke test of the test harness itself: each engine's server is really there, has what later
// tests rely on (pg_stat_statements, hypopg, MariaDB, password auth), and leaks no password to `ps`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { adminUrl, freshDatabase, skipReason } from './test-databases.js';
import type { TestEngine } from './test-databases.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';

// The build of better-sqlite3 that is safe on this Node version (see sqlite-driver.ts).
const { Database } = await loadSqliteDriver();

const noHbaUrl = process.env.DBWARD_TEST_POSTGRES_NOHBA_URL;

void describe('test harness', () => {
  void it(
    'postgres: round-trip, pg_stat_statements and hypopg in a fresh database',
    { skip: skipReason('postgres') },
    async () => {
      const db = await freshDatabase('postgres');
      const client = new pg.Client({ connectionString: db.url });
      try {
        await client.connect();
        const one = await client.query<{ one: number }>('SELECT 1 AS one');
        assert.equal(one.rows[0]?.one, 1);
        const current = await client.query<{ name: string }>('SELECT current_database() AS name');
        assert.equal(current.rows[0]?.name, db.name);
        await client.query('CREATE EXTENSION hypopg');
        const hypo = await client.query<{ n: string }>(
          "SELECT count(*) AS n FROM hypopg_create_index('CREATE INDEX ON pg_class (relname)')",
        );
        assert.equal(hypo.rows[0]?.n, '1');
        await client.query('CREATE EXTENSION pg_stat_statements');
        const stats = await client.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_statements');
        assert.ok(Number(stats.rows[0]?.n) >= 0);
      } finally {
        await client.end();
        await db.cleanup();
      }
    },
  );

  void it(
    'postgres: the no-hba URL is refused by pg_hba.conf',
    { skip: noHbaUrl ? false : 'DBWARD_TEST_POSTGRES_NOHBA_URL not set' },
    async () => {
      const client = new pg.Client({ connectionString: noHbaUrl });
      client.on('error', () => {});
      await assert.rejects(client.connect(), (error: Error & { code?: string }) => {
        assert.match(error.message, /no pg_hba\.conf entry for host/);
        assert.equal(error.code, '28000');
        return true;
      });
    },
  );

  void it(
    'mysql: round-trip against MariaDB in a fresh database',
    { skip: skipReason('mysql') },
    async () => {
      const db = await freshDatabase('mysql');
      const conn = await mysql.createConnection(db.url);
      try {
        const [rows] = await conn.query('SELECT VERSION() AS v, DATABASE() AS db');
        const row = (rows as { v: string; db: string }[])[0];
        assert.match(row?.v ?? '', /MariaDB/);
        assert.equal(row?.db, db.name);
        await conn.query('CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(10))');
        await conn.query("INSERT INTO t VALUES (1, 'é')");
        const [back] = await conn.query('SELECT s FROM t WHERE id = 1');
        assert.equal((back as { s: string }[])[0]?.s, 'é');
      } finally {
        await conn.end();
        await db.cleanup();
      }
    },
  );

  void it('redis: SET/GET in a fresh logical database', { skip: skipReason('redis') }, async () => {
    const db = await freshDatabase('redis');
    const client = new Redis(db.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      assert.equal(await client.set('dbward:harness', 'ok'), 'OK');
      assert.equal(await client.get('dbward:harness'), 'ok');
      assert.equal(await client.dbsize(), 1);
    } finally {
      client.disconnect();
      await db.cleanup();
    }
  });

  void it('sqlite: round-trip in a fresh file', async () => {
    const db = await freshDatabase('sqlite');
    const conn = new Database(db.name);
    try {
      conn.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)');
      conn.prepare('INSERT INTO t (s) VALUES (?)').run('ok');
      assert.deepEqual(conn.prepare('SELECT s FROM t').get(), { s: 'ok' });
    } finally {
      conn.close();
      await db.cleanup();
    }
  });

  void it('no admin password appears in any process arguments', () => {
    const engines: TestEngine[] = ['postgres', 'mysql', 'redis'];
    const passwords = engines
      .map((e) => adminUrl(e))
      .filter((url): url is string => url !== undefined)
      .map((url) => decodeURIComponent(new URL(url).password))
      .filter((pw) => pw.length > 0);
    if (passwords.length === 0) return;
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
    for (const pw of passwords) assert.ok(!ps.includes(pw), 'a test server password is visible in ps');
  });
});
