import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/core/errors.js';
import type { IndexInfo, SchemaModel, TableInfo } from '../../src/core/schema-model.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { mysqlInspectRole, normalizeDefault } from '../../src/engines/mysql/mysql-inspect.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

const skip = skipReason('mysql');

const open = (url: string): Promise<SqlConnection> => connectSql(mysqlEngine, url);

const schemaSql = [
  `CREATE TABLE authors (
    id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email VARCHAR(200) NOT NULL COMMENT 'login address',
    name VARCHAR(100) NOT NULL DEFAULT 'anon',
    bio TEXT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    settings JSON NULL,
    CONSTRAINT authors_email_key UNIQUE (email),
    CONSTRAINT authors_name_check CHECK (CHAR_LENGTH(name) > 0),
    FULLTEXT INDEX authors_bio_ft (bio),
    INDEX authors_name_prefix (name(10))
  ) ENGINE=InnoDB COMMENT='people who write'`,
  `CREATE TABLE books (
    author_id INT UNSIGNED NULL,
    isbn CHAR(13) NOT NULL,
    edition SMALLINT NOT NULL DEFAULT 1,
    price DECIMAL(8,2) NOT NULL,
    price_with_tax DECIMAL(8,2) AS (price * 1.2) STORED,
    isbn_upper VARCHAR(13) AS (UPPER(isbn)) VIRTUAL,
    PRIMARY KEY (isbn, edition),
    CONSTRAINT books_author_fk FOREIGN KEY (author_id) REFERENCES authors (id)
      ON DELETE CASCADE ON UPDATE SET NULL
  ) ENGINE=InnoDB`,
  `CREATE VIEW author_names AS SELECT id, name FROM authors`,
  `CREATE SEQUENCE invoice_seq START WITH 100 INCREMENT BY 5`,
  `INSERT INTO authors (email, name) VALUES ('a@x', 'Ann'), ('b@x', 'Bob'), ('c@x', 'Cy')`,
  `ANALYZE TABLE authors, books`,
];

const column = (
  name: string,
  position: number,
  type: string,
  more: Partial<TableInfo['columns'][number]> = {},
) => ({
  name,
  position,
  type,
  nullable: false,
  default: null,
  identity: null,
  autoIncrement: false,
  generated: null,
  comment: null,
  ...more,
});

const index = (name: string, columns: string[], more: Partial<IndexInfo> = {}): IndexInfo => ({
  name,
  columns,
  method: 'btree',
  unique: false,
  primary: false,
  predicate: null,
  bytes: 0,
  scans: null,
  valid: true,
  ...more,
});

/** Sizes depend on page size and statistics: check they are sane, then zero them for deepEqual. */
function withoutSizes(table: TableInfo): TableInfo {
  assert.equal(typeof table.tableBytes, 'number');
  assert.equal(typeof table.indexBytes, 'number');
  assert.equal(table.totalBytes, (table.tableBytes ?? 0) + (table.indexBytes ?? 0));
  for (const i of table.indexes) {
    if (i.method === 'fulltext') assert.equal(i.bytes, null, 'InnoDB keeps no size statistics for FULLTEXT');
    else assert.ok(typeof i.bytes === 'number' && i.bytes > 0, `${i.name} has a size`);
  }
  return {
    ...table,
    tableBytes: 0,
    indexBytes: 0,
    totalBytes: 0,
    indexes: table.indexes.map((i) => ({ ...i, bytes: i.method === 'fulltext' ? null : 0 })),
  };
}

describe('mysql inspect', { skip }, () => {
  let db: TestDatabase;
  let conn: SqlConnection;
  let model: SchemaModel;

  before(async () => {
    db = await freshDatabase('mysql');
    conn = await open(db.url);
    for (const sql of schemaSql) await conn.query(sql);
    await conn.query('SELECT NEXTVAL(invoice_seq)');
    model = await mysqlInspectRole.inspect(conn, testTarget(db.url), {});
  });

  after(async () => {
    await conn?.close();
    await db?.cleanup();
  });

  it('describes the database', async () => {
    const { tables: _t, views: _v, sequences: _s, inspectedAt, ...rest } = model;
    assert.deepEqual(rest, {
      engine: 'mysql',
      target: 't',
      serverVersion: await conn.serverVersion(),
      database: db.name,
      schemas: [{ name: db.name, owner: null }],
      keyspaces: [],
      keyPatterns: [],
    });
    assert.ok(Math.abs(Date.parse(inspectedAt) - Date.now()) < 60_000);
    assert.deepEqual(
      model.tables.map((t) => t.name),
      ['authors', 'books'],
    );
  });

  it('reads columns, keys, constraints and indexes exactly', () => {
    const [authors, books] = model.tables.map(withoutSizes);
    assert.deepEqual(authors, {
      schema: db.name,
      name: 'authors',
      rowEstimate: 3,
      tableBytes: 0,
      indexBytes: 0,
      totalBytes: 0,
      comment: 'people who write',
      columns: [
        column('id', 1, 'int(10) unsigned', { autoIncrement: true }),
        column('email', 2, 'varchar(200)', { comment: 'login address' }),
        column('name', 3, 'varchar(100)', { default: "'anon'" }),
        column('bio', 4, 'text', { nullable: true }),
        column('created_at', 5, 'timestamp', { default: 'current_timestamp()' }),
        // MariaDB's JSON is LONGTEXT plus an automatic json_valid() check.
        column('settings', 6, 'longtext', { nullable: true }),
      ],
      primaryKey: { name: 'PRIMARY', columns: ['id'] },
      foreignKeys: [],
      uniqueConstraints: [{ name: 'authors_email_key', columns: ['email'] }],
      checkConstraints: [
        { name: 'authors_name_check', expression: 'char_length(`name`) > 0' },
        { name: 'settings', expression: 'json_valid(`settings`)' },
      ],
      indexes: [
        index('PRIMARY', ['id'], { unique: true, primary: true }),
        index('authors_bio_ft', ['bio'], { method: 'fulltext', bytes: null }),
        index('authors_email_key', ['email'], { unique: true }),
        index('authors_name_prefix', ['name(10)']),
      ],
    });
    assert.deepEqual(books, {
      schema: db.name,
      name: 'books',
      rowEstimate: 0,
      tableBytes: 0,
      indexBytes: 0,
      totalBytes: 0,
      comment: null,
      columns: [
        column('author_id', 1, 'int(10) unsigned', { nullable: true }),
        column('isbn', 2, 'char(13)'),
        column('edition', 3, 'smallint(6)', { default: '1' }),
        column('price', 4, 'decimal(8,2)'),
        column('price_with_tax', 5, 'decimal(8,2)', { nullable: true, generated: '`price` * 1.2' }),
        column('isbn_upper', 6, 'varchar(13)', { nullable: true, generated: 'ucase(`isbn`)' }),
      ],
      primaryKey: { name: 'PRIMARY', columns: ['isbn', 'edition'] },
      foreignKeys: [
        {
          name: 'books_author_fk',
          columns: ['author_id'],
          referencedSchema: db.name,
          referencedTable: 'authors',
          referencedColumns: ['id'],
          onUpdate: 'set null',
          onDelete: 'cascade',
        },
      ],
      uniqueConstraints: [],
      checkConstraints: [],
      indexes: [
        index('PRIMARY', ['isbn', 'edition'], { unique: true, primary: true }),
        index('books_author_fk', ['author_id']),
      ],
    });
  });

  it('reads views and MariaDB sequences', () => {
    assert.deepEqual(model.views, [
      {
        schema: db.name,
        name: 'author_names',
        materialized: false,
        definition: `select \`${db.name}\`.\`authors\`.\`id\` AS \`id\`,\`${db.name}\`.\`authors\`.\`name\` AS \`name\` from \`${db.name}\`.\`authors\``,
      },
    ]);
    // One NEXTVAL reserved a cache block of 1000 values: lastValue is the end of that block.
    assert.deepEqual(model.sequences, [
      {
        schema: db.name,
        name: 'invoice_seq',
        dataType: 'bigint',
        lastValue: 100 + 1000 * 5 - 5,
        // The default maximum, 2^63 - 2, as the nearest double.
        maxValue: Number('9223372036854775806'),
        increment: 5,
        ownedBy: null,
      },
    ]);
  });

  it('runs the same number of queries for 3 tables as for 30', async () => {
    const scratch = await freshDatabase('mysql');
    const c = await open(scratch.url);
    try {
      let queries = 0;
      const query = c.query.bind(c);
      c.query = ((sql: string, params?: readonly unknown[]) => {
        queries++;
        return query(sql, params);
      }) as SqlConnection['query'];
      const createTables = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          await query(
            `CREATE TABLE t${i} (id INT PRIMARY KEY, parent INT NULL, label VARCHAR(20) UNIQUE,
              CHECK (id > 0), INDEX (label, parent), FOREIGN KEY (parent) REFERENCES t${Math.max(0, i - 1)} (id))`,
          );
        }
      };
      const countFor = async () => {
        queries = 0;
        await mysqlInspectRole.inspect(c, testTarget(scratch.url), {});
        return queries;
      };
      await createTables(0, 3);
      const forThree = await countFor();
      await createTables(3, 30);
      const forThirty = await countFor();
      assert.equal(forThirty, forThree);
      assert.ok(forThree <= 9, `inspect ran ${forThree} queries`);
    } finally {
      await c.close();
      await scratch.cleanup();
    }
  });

  it('needs a database in the URL', async () => {
    const c = await open(adminUrl('mysql') ?? '');
    try {
      const url = new URL(adminUrl('mysql') ?? '');
      url.pathname = '/';
      await assert.rejects(mysqlInspectRole.inspect(c, testTarget(url.toString()), {}), ConfigError);
    } finally {
      await c.close();
    }
  });
});

describe('mysql column defaults', () => {
  it('keeps MariaDB expressions and drops its NULL text', () => {
    const col = (defaultValue: string | null, dataType = 'varchar', extra = '') => ({
      defaultValue,
      dataType,
      extra,
    });
    assert.equal(normalizeDefault(col('NULL'), true), null);
    assert.equal(normalizeDefault(col("'NULL'"), true), "'NULL'");
    assert.equal(normalizeDefault(col('current_timestamp()', 'timestamp'), true), 'current_timestamp()');
    assert.equal(normalizeDefault(col(null), true), null);
  });

  it('quotes MySQL string literals but not numbers or expressions', () => {
    const col = (defaultValue: string | null, dataType = 'varchar', extra = '') => ({
      defaultValue,
      dataType,
      extra,
    });
    assert.equal(normalizeDefault(col("it's"), false), "'it''s'");
    assert.equal(normalizeDefault(col('1', 'int'), false), '1');
    assert.equal(normalizeDefault(col('(now())', 'datetime', 'DEFAULT_GENERATED'), false), '(now())');
    assert.equal(normalizeDefault(col('CURRENT_TIMESTAMP', 'timestamp'), false), 'CURRENT_TIMESTAMP');
    assert.equal(normalizeDefault(col(null), false), null);
  });
});
