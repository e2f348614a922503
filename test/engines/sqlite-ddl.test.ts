import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseCreateIndex, parseCreateTable, viewSelectText } from '../../src/engines/sqlite/sqlite-ddl.js';
import { identifierValue, tokenize } from '../../src/engines/sqlite/sqlite-ddl-tokens.js';

describe('sqlite DDL tokens', () => {
  it('keeps strings, quoted identifiers and numbers whole and drops comments', () => {
    const tokens = tokenize(`CREATE TABLE "a""b" ([x y] INT DEFAULT 1.5e+3, b x'AB' -- c )
      , 'it''s' /* ) */ 0x1F .5)`);
    assert.deepEqual(
      tokens.map((t) => `${t.kind}:${t.text}`),
      [
        'word:CREATE',
        'word:TABLE',
        'identifier:"a""b"',
        'punct:(',
        'identifier:[x y]',
        'word:INT',
        'word:DEFAULT',
        'number:1.5e+3',
        'punct:,',
        'word:b',
        "string:x'AB'",
        'punct:,',
        "string:'it''s'",
        'number:0x1F',
        'number:.5',
        'punct:)',
      ],
    );
    assert.equal(identifierValue(tokens[2]!), 'a"b');
    assert.equal(identifierValue(tokens[4]!), 'x y');
  });

  it('runs unterminated constructs to the end instead of failing', () => {
    assert.deepEqual(
      tokenize("a 'open").map((t) => t.text),
      ['a', "'open"],
    );
    assert.deepEqual(
      tokenize('a /* open').map((t) => t.text),
      ['a'],
    );
  });
});

describe('sqlite CREATE TABLE facts', () => {
  it('reads named and unnamed CHECK constraints at column and table level', () => {
    const facts = parseCreateTable(`CREATE TABLE t (
      a INT CONSTRAINT a_pos CHECK (a > 0) NOT NULL,
      b TEXT CHECK (b <> ')') DEFAULT (')'), -- ) in a comment
      c INT CONSTRAINT c_nn NOT NULL CHECK (c IN (1, 2)),
      CONSTRAINT a_lt_c CHECK (a < c),
      CHECK (length(b) < 10)
    )`);
    assert.deepEqual(facts.checks, [
      { name: 'a_pos', expression: 'a > 0' },
      { name: null, expression: "b <> ')'" },
      // A CONSTRAINT name belongs to the constraint right after it (here NOT NULL), not to CHECK.
      { name: null, expression: 'c IN (1, 2)' },
      { name: 'a_lt_c', expression: 'a < c' },
      { name: null, expression: 'length(b) < 10' },
    ]);
  });

  it('reads generated column expressions with either spelling', () => {
    const facts = parseCreateTable(`CREATE TABLE t (
      a INT, "Full Name" TEXT GENERATED ALWAYS AS (upper(b) || ' ' || 'x') STORED,
      c INT AS (a * 2), d INT DEFAULT (CAST(1 AS INT)))`);
    assert.deepEqual(
      [...facts.generated],
      [
        ['full name', "upper(b) || ' ' || 'x'"],
        ['c', 'a * 2'],
      ],
    );
  });

  it('has nothing to read from CREATE TABLE … AS SELECT', () => {
    assert.deepEqual(parseCreateTable('CREATE TABLE t AS SELECT (1) AS x'), {
      generated: new Map(),
      checks: [],
    });
  });
});

describe('sqlite CREATE INDEX facts', () => {
  it('reads expression terms without ordering or collation, and the partial predicate', () => {
    assert.deepEqual(
      parseCreateIndex(`CREATE UNIQUE INDEX "i" ON t (lower(name) COLLATE NOCASE DESC, a, (b + 1) ASC)
        WHERE deleted_at IS NULL AND kind IN ('a', 'b');`),
      { terms: ['lower(name)', 'a', '(b + 1)'], predicate: "deleted_at IS NULL AND kind IN ('a', 'b')" },
    );
    assert.deepEqual(parseCreateIndex('CREATE INDEX i ON t(a)'), { terms: ['a'], predicate: null });
  });
});

describe('sqlite view text', () => {
  it('returns the SELECT after the top-level AS', () => {
    assert.equal(
      viewSelectText('CREATE VIEW v (a, b) AS SELECT x AS a, y AS b FROM t;'),
      'SELECT x AS a, y AS b FROM t',
    );
  });
});
