import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TableInfo } from '../../src/core/schema-model.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { sqliteEngine } from '../../src/engines/sqlite/sqlite-engine.js';
import { sqliteInspectRole } from '../../src/engines/sqlite/sqlite-inspect.js';
import { freshDatabase, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

const connect = (url: string): Promise<SqlConnection> => connectSql(sqliteEngine, url);

/** The same connection, counting the statements sent through it. */
function counting(conn: SqlConnection): { conn: SqlConnection; count: () => number } {
  let n = 0;
  const wrapped = Object.create(conn) as SqlConnection;
  wrapped.query = (sql, params) => {
    n++;
    return conn.query(sql, params);
  };
  return { conn: wrapped, count: () => n };
}

const schema = `
  CREATE TABLE customers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT DEFAULT 'anon',
    email_domain TEXT GENERATED ALWAYS AS (substr(email, instr(email, '@') + 1)) VIRTUAL,
    CONSTRAINT email_has_at CHECK (instr(email, '@') > 0)
  );
  CREATE TABLE orders (
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    line INT NOT NULL,
    total REAL CHECK (total >= 0), -- a comment with a ) in it
    note TEXT,
    PRIMARY KEY (customer_id, line)
  );
  CREATE TABLE tags (name TEXT PRIMARY KEY, customer_id INTEGER REFERENCES customers) WITHOUT ROWID;
  CREATE INDEX orders_big ON orders (total DESC) WHERE total > 100;
  CREATE INDEX customers_lower_name ON customers (lower(name) COLLATE NOCASE, id);
  CREATE VIEW big_orders AS SELECT customer_id, total FROM orders WHERE total > 100;
  INSERT INTO customers (email, name) VALUES ('a@example.com', 'Ann'), ('b@example.org', 'Bob');
  INSERT INTO orders VALUES (1, 1, 50, NULL), (1, 2, 150, 'big'), (2, 1, 10, NULL);
  ANALYZE;
`;

const column = {
  identity: null,
  autoIncrement: false,
  generated: null,
  comment: null,
  default: null,
  nullable: true,
} as const;
const index = { method: 'btree', unique: false, primary: false, predicate: null, scans: null, valid: true };
const page = 4096;

describe('sqlite inspect', () => {
  let db: TestDatabase;
  let conn: SqlConnection;

  before(async () => {
    db = await freshDatabase('sqlite');
    conn = await connect(db.url);
    await conn.query(schema);
  });
  after(async () => {
    await conn.close();
    await db.cleanup();
  });

  it('fills every field of the schema model', async () => {
    const model = await sqliteInspectRole.inspect(conn, testTarget(db.url), {});
    assert.equal(model.engine, 'sqlite');
    assert.equal(model.target, 't');
    assert.equal(model.database, db.name);
    assert.equal(model.serverVersion, await conn.serverVersion());
    assert.ok(!Number.isNaN(Date.parse(model.inspectedAt)));
    assert.deepEqual(model.schemas, [{ name: 'main', owner: null }]);
    assert.deepEqual(model.keyspaces, []);
    assert.deepEqual(model.keyPatterns, []);
    assert.deepEqual(
      model.tables.map((t) => t.name),
      ['customers', 'orders', 'tags'],
    );
    const [customers, orders, tags] = model.tables as [TableInfo, TableInfo, TableInfo];

    assert.deepEqual(customers, {
      schema: 'main',
      name: 'customers',
      rowEstimate: 2,
      tableBytes: page,
      indexBytes: 2 * page,
      totalBytes: 3 * page,
      comment: null,
      columns: [
        { ...column, name: 'id', position: 1, type: 'INTEGER', nullable: false, autoIncrement: true },
        { ...column, name: 'email', position: 2, type: 'TEXT', nullable: false },
        { ...column, name: 'name', position: 3, type: 'TEXT', default: "'anon'" },
        {
          ...column,
          name: 'email_domain',
          position: 4,
          type: 'TEXT',
          generated: "substr(email, instr(email, '@') + 1)",
        },
      ],
      primaryKey: { name: null, columns: ['id'] },
      foreignKeys: [],
      uniqueConstraints: [{ name: null, columns: ['email'] }],
      checkConstraints: [{ name: 'email_has_at', expression: "instr(email, '@') > 0" }],
      indexes: [
        { ...index, name: 'customers_lower_name', columns: ['lower(name)', 'id'], bytes: page },
        { ...index, name: 'sqlite_autoindex_customers_1', columns: ['email'], unique: true, bytes: page },
      ],
    });

    assert.deepEqual(orders, {
      schema: 'main',
      name: 'orders',
      rowEstimate: 3,
      tableBytes: page,
      indexBytes: 2 * page,
      totalBytes: 3 * page,
      comment: null,
      columns: [
        { ...column, name: 'customer_id', position: 1, type: 'INTEGER', nullable: false },
        { ...column, name: 'line', position: 2, type: 'INT', nullable: false },
        { ...column, name: 'total', position: 3, type: 'REAL' },
        { ...column, name: 'note', position: 4, type: 'TEXT' },
      ],
      primaryKey: { name: null, columns: ['customer_id', 'line'] },
      foreignKeys: [
        {
          name: null,
          columns: ['customer_id'],
          referencedSchema: 'main',
          referencedTable: 'customers',
          referencedColumns: ['id'],
          onUpdate: 'no action',
          onDelete: 'cascade',
        },
      ],
      uniqueConstraints: [],
      checkConstraints: [{ name: null, expression: 'total >= 0' }],
      indexes: [
        { ...index, name: 'orders_big', columns: ['total'], predicate: 'total > 100', bytes: page },
        {
          ...index,
          name: 'sqlite_autoindex_orders_1',
          columns: ['customer_id', 'line'],
          unique: true,
          primary: true,
          bytes: page,
        },
      ],
    });

    // WITHOUT ROWID: the primary key index is the table's own b-tree, so it has no size of its own;
    // the implicit FK target (REFERENCES customers) resolves to the parent's primary key.
    assert.deepEqual(tags, {
      schema: 'main',
      name: 'tags',
      rowEstimate: null,
      tableBytes: page,
      indexBytes: 0,
      totalBytes: page,
      comment: null,
      columns: [
        { ...column, name: 'name', position: 1, type: 'TEXT', nullable: false },
        { ...column, name: 'customer_id', position: 2, type: 'INTEGER' },
      ],
      primaryKey: { name: null, columns: ['name'] },
      foreignKeys: [
        {
          name: null,
          columns: ['customer_id'],
          referencedSchema: 'main',
          referencedTable: 'customers',
          referencedColumns: ['id'],
          onUpdate: 'no action',
          onDelete: 'no action',
        },
      ],
      uniqueConstraints: [],
      checkConstraints: [],
      indexes: [
        {
          ...index,
          name: 'sqlite_autoindex_tags_1',
          columns: ['name'],
          unique: true,
          primary: true,
          bytes: null,
        },
      ],
    });

    assert.deepEqual(model.views, [
      {
        schema: 'main',
        name: 'big_orders',
        materialized: false,
        definition: 'SELECT customer_id, total FROM orders WHERE total > 100',
      },
    ]);
    assert.deepEqual(model.sequences, [
      {
        schema: 'main',
        name: 'customers',
        dataType: 'integer',
        lastValue: 2,
        maxValue: Number(2n ** 63n - 1n),
        increment: 1,
        ownedBy: 'customers.id',
      },
    ]);
  });

  it('runs the same number of queries for 3 tables as for 30', async () => {
    const queriesFor = async (tables: number): Promise<number> => {
      const fresh = await freshDatabase('sqlite');
      const c = await connect(fresh.url);
      try {
        const ddl = Array.from(
          { length: tables },
          (_, i) =>
            `CREATE TABLE t${i} (id INTEGER PRIMARY KEY, parent INT REFERENCES t0, v TEXT UNIQUE);
             CREATE INDEX t${i}_v ON t${i} (lower(v)) WHERE v IS NOT NULL;`,
        );
        await c.query(ddl.join('\n'));
        const { conn: counted, count } = counting(c);
        const model = await sqliteInspectRole.inspect(counted, testTarget(fresh.url), {});
        assert.equal(model.tables.length, tables);
        return count();
      } finally {
        await c.close();
        await fresh.cleanup();
      }
    };
    const few = await queriesFor(3);
    assert.equal(await queriesFor(30), few);
    assert.ok(few <= 9, `inspect ran ${few} queries`);
  });

  it('inspects 500 tables quickly', async () => {
    const fresh = await freshDatabase('sqlite');
    const c = await connect(fresh.url);
    try {
      const ddl = Array.from(
        { length: 500 },
        (_, i) =>
          `CREATE TABLE t${i} (id INTEGER PRIMARY KEY, parent INT REFERENCES t0 ON DELETE CASCADE,
             v TEXT NOT NULL UNIQUE, n INT CHECK (n > 0), g INT AS (n * 2));
           CREATE INDEX t${i}_n ON t${i} (n) WHERE n > 10;`,
      );
      await c.query(ddl.join('\n'));
      const started = performance.now();
      const model = await sqliteInspectRole.inspect(c, testTarget(fresh.url), {});
      const ms = performance.now() - started;
      assert.equal(model.tables.length, 500);
      assert.equal(model.tables[0]?.indexes.length, 2);
      // The CLI budget is 0.5 s end to end; inspect itself must leave most of it to the rest.
      assert.ok(ms < 400, `inspect of 500 tables took ${ms.toFixed(0)} ms`);
    } finally {
      await c.close();
      await fresh.cleanup();
    }
  });

  it('lists a virtual table with its columns, and not its shadow tables', async () => {
    const fresh = await freshDatabase('sqlite');
    const c = await connect(fresh.url);
    try {
      await c.query('CREATE VIRTUAL TABLE docs USING fts5 (title, body)');
      const model = await sqliteInspectRole.inspect(c, testTarget(fresh.url), {});
      assert.deepEqual(
        model.tables.map((t) => [t.name, t.columns.map((col) => col.name), t.tableBytes]),
        [['docs', ['title', 'body'], null]],
      );
    } finally {
      await c.close();
      await fresh.cleanup();
    }
  });

  it('leaves rowEstimate null without ANALYZE statistics', async () => {
    const fresh = await freshDatabase('sqlite');
    const c = await connect(fresh.url);
    try {
      await c.query('CREATE TABLE a (x); INSERT INTO a VALUES (1), (2)');
      const model = await sqliteInspectRole.inspect(c, testTarget(fresh.url), {});
      assert.equal(model.tables[0]?.rowEstimate, null);
      assert.deepEqual(model.sequences, []);
    } finally {
      await c.close();
      await fresh.cleanup();
    }
  });
});
