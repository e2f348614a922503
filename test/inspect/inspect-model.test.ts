/**
 * `inspect` gives the same model shape on every engine: the same keys at every level, and the
 * same content for the same logical schema. Built for real on each engine, then compared.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { open, type Database, type SchemaModel } from '../../src/index.js';
import {
  allTestEngines,
  freshDatabase,
  skipReason,
  type TestEngine,
  type TestDatabase,
} from '../harness/test-databases.js';

const ddl: Record<Exclude<TestEngine, 'redis'>, string[]> = {
  postgres: [
    'CREATE TABLE authors (id integer PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) UNIQUE)',
    `CREATE TABLE books (id integer PRIMARY KEY, author_id integer NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
      title varchar(200) NOT NULL, pages integer CHECK (pages > 0))`,
    'CREATE INDEX books_author_idx ON books (author_id)',
    'CREATE VIEW long_books AS SELECT id, title FROM books WHERE pages > 500',
  ],
  mysql: [
    'CREATE TABLE authors (id integer PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) UNIQUE)',
    `CREATE TABLE books (id integer PRIMARY KEY, author_id integer NOT NULL, title varchar(200) NOT NULL,
      pages integer CHECK (pages > 0), INDEX books_author_idx (author_id),
      FOREIGN KEY (author_id) REFERENCES authors(id) ON DELETE CASCADE)`,
    'CREATE VIEW long_books AS SELECT id, title FROM books WHERE pages > 500',
  ],
  sqlite: [
    'CREATE TABLE authors (id integer PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) UNIQUE)',
    `CREATE TABLE books (id integer PRIMARY KEY, author_id integer NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
      title varchar(200) NOT NULL, pages integer CHECK (pages > 0))`,
    'CREATE INDEX books_author_idx ON books (author_id)',
    'CREATE VIEW long_books AS SELECT id, title FROM books WHERE pages > 500',
  ],
};

/** The key structure of a value: objects by key, arrays by their first element. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length ? [shape(value[0])] : [];
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, shape((value as Record<string, unknown>)[k])]),
    );
  }
  return 'leaf';
}

/** What should be equal across engines for the same logical schema. */
function logical(model: SchemaModel): unknown {
  return {
    tables: model.tables.map((t) => ({
      name: t.name,
      columns: t.columns.map((c) => [c.name, c.nullable]),
      primaryKey: t.primaryKey?.columns,
      foreignKeys: t.foreignKeys.map((f) => [f.columns, f.referencedTable, f.referencedColumns, f.onDelete]),
      unique: t.uniqueConstraints.map((u) => u.columns),
      checks: t.checkConstraints.length,
      indexes: t.indexes
        .filter((i) => !i.primary && !i.unique)
        .map((i) => [i.name, i.columns])
        .sort(),
    })),
    views: model.views.map((v) => v.name),
  };
}

const models = new Map<TestEngine, SchemaModel>();

for (const engine of allTestEngines) {
  describe(`inspect on ${engine}`, { skip: skipReason(engine) }, () => {
    let database: TestDatabase;
    let db: Database;
    before(async () => {
      database = await freshDatabase(engine);
      db = await open(database.url);
      if (db.kind === 'sql') for (const sql of ddl[engine as keyof typeof ddl]) await db.query(sql);
      else for (let i = 0; i < 20; i++) await db.command('SET', `book:${i}`, 'x');
    });
    after(async () => {
      await db?.close();
      await database?.cleanup();
    });

    it('returns the engine-neutral model with every key present', async () => {
      const model = await db.inspect();
      models.set(engine, model);
      assert.equal(model.engine, engine);
      for (const key of ['schemas', 'tables', 'views', 'sequences', 'keyspaces', 'keyPatterns'] as const) {
        assert.ok(Array.isArray(model[key]), `${key} is an array`);
      }
      if (db.engine.capabilities.isKeyValue) {
        assert.equal(model.tables.length, 0);
        assert.ok(model.keyPatterns.some((p) => p.pattern === 'book:*' && p.sampledKeys === 20));
      } else {
        assert.deepEqual(
          model.tables.map((t) => t.name),
          ['authors', 'books'],
        );
      }
    });
  });
}

describe('inspect across engines', () => {
  it('SQL engines give the same shape and the same logical content', (t) => {
    const sql = [...models.entries()].filter(([engine]) => engine !== 'redis');
    if (sql.length < 2) return t.skip('fewer than two SQL engines ran');
    const [firstEngine, first] = sql[0]!;
    for (const [engine, model] of sql.slice(1)) {
      assert.deepEqual(shape(model), shape(first), `${engine} vs ${firstEngine}: shape`);
      assert.deepEqual(logical(model), logical(first), `${engine} vs ${firstEngine}: content`);
    }
  });

  it('Redis gives the same top-level keys', (t) => {
    const redis = models.get('redis');
    const other = models.get('sqlite');
    if (!redis || !other) return t.skip('redis or sqlite did not run');
    assert.deepEqual(Object.keys(redis).sort(), Object.keys(other).sort());
  });
});
