/**
 * What test files use to get a database of their own. `run-tests.ts` starts one throwaway server
 * per engine and exports its admin URL as `DBWARD_TEST_<ENGINE>_URL`; set that variable yourself
 * to point the suite at an existing server instead. Each call to {@link freshDatabase} creates a
 * new, empty database (PostgreSQL/MariaDB: CREATE DATABASE; Redis: a flushed logical db;
 * SQLite: a file in a temp dir) and returns its URL plus a cleanup function.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export type TestEngine = 'postgres' | 'mysql' | 'sqlite' | 'redis';
export const allTestEngines: TestEngine[] = ['postgres', 'mysql', 'sqlite', 'redis'];
export const sqlTestEngines: TestEngine[] = ['postgres', 'mysql', 'sqlite'];

const envName = (engine: TestEngine): string => `DBWARD_TEST_${engine.toUpperCase()}_URL`;

/** The admin URL of the test server for an engine, or undefined when that engine is not running. */
export function adminUrl(engine: TestEngine): string | undefined {
  if (engine === 'sqlite') return 'sqlite::memory:';
  return process.env[envName(engine)] || undefined;
}

/** A reason to skip tests of `engine`, or false when it is available. Under CI=true the runner already failed. */
export function skipReason(engine: TestEngine): string | false {
  return adminUrl(engine)
    ? false
    : `${engine}: no test server (set ${envName(engine)} or install the server)`;
}

export interface TestDatabase {
  /** URL of the new database, with credentials. */
  url: string;
  /** Database name (PostgreSQL/MariaDB), db index (Redis) or file path (SQLite). */
  name: string;
  cleanup(): Promise<void>;
}

/** Create a new empty database on the engine's test server. */
export async function freshDatabase(engine: TestEngine): Promise<TestDatabase> {
  const name = `dbward_t_${randomBytes(5).toString('hex')}`;
  switch (engine) {
    case 'sqlite': {
      const dir = mkdtempSync(path.join(tmpdir(), 'dbward-sqlite-'));
      const file = path.join(dir, `${name}.db`);
      // An empty file is an empty SQLite database: like CREATE DATABASE on the server engines.
      writeFileSync(file, '');
      return {
        url: `sqlite:${file}`,
        name: file,
        cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
      };
    }
    case 'postgres': {
      const admin = requireUrl(engine);
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      const url = withPath(admin, `/${name}`);
      return {
        url,
        name,
        cleanup: async () => {
          const c = new pg.Client({ connectionString: admin });
          await c.connect();
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await c.end();
        },
      };
    }
    case 'mysql': {
      const admin = requireUrl(engine);
      const mysql = await import('mysql2/promise');
      const conn = await mysql.createConnection(admin);
      await conn.query(`CREATE DATABASE ${name}`);
      await conn.end();
      return {
        url: withPath(admin, `/${name}`),
        name,
        cleanup: async () => {
          const c = await mysql.createConnection(admin);
          await c.query(`DROP DATABASE IF EXISTS ${name}`);
          await c.end();
        },
      };
    }
    case 'redis': {
      const admin = requireUrl(engine);
      // Logical databases 1..15 are handed out per process; db 0 is left to ad-hoc use.
      const db = 1 + (redisCounter++ % 15);
      const url = withPath(admin, `/${db}`);
      const { Redis } = await import('ioredis');
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await client.connect();
      await client.flushdb();
      client.disconnect();
      return {
        url,
        name: String(db),
        cleanup: async () => {
          const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
          await c.connect();
          await c.flushdb();
          c.disconnect();
        },
      };
    }
  }
}

// Offset by pid so test files running in parallel processes rarely share a db.
let redisCounter = process.pid;

function requireUrl(engine: TestEngine): string {
  const url = adminUrl(engine);
  if (!url) throw new Error(`no test server for ${engine}: set ${envName(engine)}`);
  return url;
}

function withPath(url: string, pathname: string): string {
  const u = new URL(url);
  u.pathname = pathname;
  return u.toString();
}
