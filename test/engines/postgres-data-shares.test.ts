/**
 * How restore -j N shares a dump's data entries between pg_restore workers: balanced by the
 * manifest's row counts, each share in the archive's order (a reader of a pipe cannot go back),
 * the share holding the archive's last entry last.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  planDataShares,
  shareDataEntries,
  splitsTable,
  splitThreshold,
} from '../../src/engines/postgres/postgres-data-shares.js';

const data = (id: number, schema: string, table: string): string =>
  `${id}; 0 ${16000 + id} TABLE DATA ${schema} ${table} app`;

describe('sharing data entries between pg_restore workers', () => {
  const lines = [
    data(3401, 'public', 'small'),
    data(3399, 'public', 'big'),
    '3402; 0 0 SEQUENCE SET public small_id_seq app',
    data(3403, 'public', 'medium'),
    data(3404, 'audit', 'log'),
  ];
  const rows = [
    { name: 'public.small', rows: 10 },
    { name: 'public.big', rows: 2000 },
    { name: 'public.medium', rows: 600 },
    { name: 'audit.log', rows: 500 },
  ];

  it('balances rows: the heaviest table alone, the rest together, each in archive order', () => {
    const shares = shareDataEntries(lines, 2, rows);
    assert.equal(shares.length, 2);
    assert.deepEqual(shares.flat().sort(), [...lines].sort(), 'every entry once');
    const big = shares.find((s) => s.some((l) => l.includes(' big ')))!;
    assert.deepEqual(big, [data(3399, 'public', 'big')]);
    const rest = shares.find((s) => s !== big)!;
    assert.deepEqual(rest, [lines[0], lines[2], lines[3], lines[4]], 'the archive’s order, not the ids’');
  });

  it('puts the share holding the archive’s last entry last', () => {
    for (const workers of [2, 3, 4]) {
      const shares = shareDataEntries(lines, workers, rows);
      assert.equal(shares.at(-1)?.at(-1), lines.at(-1), `${workers} workers`);
    }
  });

  it('drops empty shares, and one worker gets everything in order', () => {
    assert.deepEqual(shareDataEntries(lines.slice(0, 1), 4, rows), [lines.slice(0, 1)]);
    assert.deepEqual(shareDataEntries(lines, 1, rows), [lines]);
    assert.deepEqual(shareDataEntries([], 3, rows), []);
  });

  it('matches tables whose schema or name holds a dot, and spreads tables without counts', () => {
    const dotted = [data(1, 'my.schema', 'orders'), data(2, 'public', 'a'), data(3, 'public', 'b')];
    const shares = shareDataEntries(dotted, 2, [{ name: 'my.schema.orders', rows: 5000 }]);
    assert.deepEqual(shares, [[dotted[0]], [dotted[1], dotted[2]]]);
    const unknown = shareDataEntries(dotted, 3);
    assert.equal(unknown.length, 3, 'without counts, one table per worker');
  });

  it('splits a table heavier than a fair share between every worker, the rest balanced around it', () => {
    const heavy = [
      { name: 'public.small', rows: 10 },
      { name: 'public.big', rows: 200_000 },
      { name: 'public.medium', rows: 600 },
      { name: 'audit.log', rows: 500 },
    ];
    assert.equal(splitsTable(heavy, 2), true);
    const shares = planDataShares(lines, 2, heavy);
    assert.equal(shares.length, 2);
    shares.forEach((share, part) => {
      assert.deepEqual(share.split, { dumpId: 3399, part, parts: 2 });
      assert.ok(share.lines.includes(data(3399, 'public', 'big')), 'every share loads a part of big');
    });
    const others = shares.flatMap((s) => s.lines.filter((l) => !l.includes(' big ')));
    assert.deepEqual(others.sort(), lines.filter((l) => !l.includes(' big ')).sort(), 'the rest once');
    for (const share of shares) {
      const order = share.lines.map((l) => lines.indexOf(l));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        'archive order',
      );
    }
    assert.equal(shares.at(-1)?.lines.at(-1), lines.at(-1), 'the last entry in the last share');
  });

  it('does not split a small table, a balanced dump, or for one worker', () => {
    assert.equal(splitsTable(rows, 2), false, 'big has 2,000 rows');
    assert.deepEqual(
      planDataShares(lines, 2, rows),
      shareDataEntries(lines, 2, rows).map((l) => ({ lines: l })),
    );
    const balanced = [
      { name: 'public.big', rows: 300_000 },
      { name: 'public.medium', rows: 300_000 },
    ];
    assert.equal(splitsTable(balanced, 2), false);
    assert.equal(
      planDataShares(lines, 2, balanced).some((s) => s.split),
      false,
    );
    const heavy = [{ name: 'public.big', rows: 300_000 }];
    assert.equal(splitsTable(heavy, 1), false);
    assert.equal(
      planDataShares(lines, 1, heavy).some((s) => s.split),
      false,
    );
  });

  it('DBWARD_RESTORE_SPLIT_ROWS sets the smallest table that is split, or turns splitting off', () => {
    assert.equal(splitThreshold({}), 100_000);
    assert.equal(splitThreshold({ DBWARD_RESTORE_SPLIT_ROWS: '5000' }), 5000);
    assert.equal(splitThreshold({ DBWARD_RESTORE_SPLIT_ROWS: 'off' }), Number.POSITIVE_INFINITY);
    assert.equal(splitThreshold({ DBWARD_RESTORE_SPLIT_ROWS: 'lots' }), 100_000, 'not a number: the default');
    const heavy = [{ name: 'public.big', rows: 300_000 }];
    assert.equal(splitsTable(heavy, 2, splitThreshold({ DBWARD_RESTORE_SPLIT_ROWS: 'off' })), false);
  });
});
