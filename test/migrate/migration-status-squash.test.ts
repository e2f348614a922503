/**
 * Squashed baselines without a database: the `-- dbward:squashed A..V` header, and what status,
 * `up` and `down` make of a baseline on databases that ran the history, none of it, or part of it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { AppliedMigration } from '../../src/engines/contract.js';
import { discoverMigrations } from '../../src/migrate/discover-migrations.js';
import { MigrationFileError } from '../../src/migrate/migration-errors.js';
import type { MigrationFile } from '../../src/migrate/migration-file.js';
import { MigrationPlanError, planDown, planUp } from '../../src/migrate/migration-plan.js';
import { migrationStatus } from '../../src/migrate/migration-status.js';
import { parseSqlMigration } from '../../src/migrate/parse-sql-migration.js';

const file = (version: string): MigrationFile => ({
  version,
  name: `m${version}`,
  path: `/m/${version}_m${version}.sql`,
  kind: 'sql',
  checksum: `c${version}`,
  up: { sql: `SELECT ${version};`, transaction: true, firstLine: 2 },
  down: { sql: 'SELECT 0;', transaction: true, firstLine: 4 },
});
/** The baseline `2_squashed.sql` replacing 1..2. */
const baseline = (from = '1', to = '2'): MigrationFile => ({
  version: to,
  name: 'squashed',
  path: `/m/${to}_squashed.sql`,
  kind: 'sql',
  checksum: 'baseline',
  up: { sql: 'CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);', transaction: true, firstLine: 3 },
  down: null,
  squashed: { from, to },
});
const row = (
  version: string,
  name = `m${version}`,
  checksum = `c${version}`,
  status: 'applied' | 'partial' = 'applied',
): AppliedMigration => ({
  version,
  name,
  checksum,
  appliedAt: '2026-11-22T00:00:00.000Z',
  durationMs: 1,
  appliedBy: 'me@here',
  dbwardVersion: '0.1.0',
  statementsApplied: status === 'partial' ? 1 : 2,
  statementsTotal: 2,
  status,
});
const states = (files: MigrationFile[], rows: AppliedMigration[]): [string, string][] =>
  migrationStatus(files, rows).map((s) => [s.version, s.state]);
const versions = (plan: MigrationFile[]): string[] => plan.map((f) => f.version);

function planError(fn: () => unknown): MigrationPlanError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MigrationPlanError, String(err));
    return err;
  }
  assert.fail('expected a MigrationPlanError');
}

describe('the squashed header', () => {
  const header = '-- dbward:squashed 20261101000000..20261122043005 (12 migrations)\n-- more words\n';

  it('is read from the comments before the first marker', () => {
    const parsed = parseSqlMigration('f.sql', `${header}\n-- migrate:up\nCREATE TABLE t (id int);\n`);
    assert.deepEqual(parsed.squashed, { from: '20261101000000', to: '20261122043005' });
    assert.equal(parsed.up.sql, 'CREATE TABLE t (id int);');
    assert.equal(parsed.down, null);
    assert.equal(parseSqlMigration('g.sql', '-- migrate:up\nSELECT 1;\n').squashed, undefined);
  });

  it('is only a header: the same comment inside a section is SQL', () => {
    const parsed = parseSqlMigration('f.sql', `-- migrate:up\n${header}SELECT 1;\n`);
    assert.equal(parsed.squashed, undefined);
    assert.match(parsed.up.sql, /dbward:squashed/);
  });

  it('refuses a malformed or repeated header, naming the line', () => {
    for (const [text, message, line] of [
      ['-- dbward:squashed 1-2\n-- migrate:up\nSELECT 1;\n', /Malformed/, 1],
      ['-- x\n-- dbward:squashed 1..2\n-- dbward:squashed 1..2\n-- migrate:up\nSELECT 1;\n', /A second/, 3],
    ] as const) {
      assert.throws(
        () => parseSqlMigration('f.sql', text),
        (err: unknown) => err instanceof MigrationFileError && message.test(err.message) && err.line === line,
      );
    }
  });

  it('must end at the file’s own version', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-squash-header-'));
    writeFileSync(
      path.join(dir, '5_squashed.sql'),
      '-- dbward:squashed 1..5 (3 migrations)\n-- migrate:up\nSELECT 1;\n',
    );
    assert.deepEqual(discoverMigrations(dir)[0]?.squashed, { from: '1', to: '5' });
    writeFileSync(
      path.join(dir, '6_squashed.sql'),
      '-- dbward:squashed 1..5 (3 migrations)\n-- migrate:up\nSELECT 1;\n',
    );
    assert.throws(() => discoverMigrations(dir), /does not end at its own version 6/);
  });
});

describe('status, up and down with a squashed baseline', () => {
  const files = [baseline(), file('3')];

  it('a database that ran the history: old rows are squashed, the baseline counts as applied', () => {
    const status = migrationStatus(files, [row('1'), row('2'), row('3')]);
    assert.deepEqual(
      status.map((s) => [s.version, s.name, s.state]),
      [
        ['1', 'm1', 'squashed'],
        ['2', 'squashed', 'applied'],
        ['3', 'm3', 'applied'],
      ],
    );
    assert.equal(status[1]?.appliedAs, 'm2');
    assert.equal(status[1]?.file, '/m/2_squashed.sql');
    assert.deepEqual(planUp(status, files), []);
    // Rolling back reaches the baseline, which has no down section.
    assert.deepEqual(versions(planDown(status, files)), ['3']);
    const error = planError(() => planDown(status, files, { step: 2 }));
    assert.match(error.message, /2_squashed\.sql is a squashed baseline \(it replaces 1\.\.2\)/);
  });

  it('a new database runs the baseline; there its own checksum counts', () => {
    assert.deepEqual(versions(planUp(migrationStatus(files, []), files)), ['2', '3']);
    assert.deepEqual(states(files, [row('2', 'squashed', 'baseline')]), [
      ['2', 'applied'],
      ['3', 'pending'],
    ]);
    assert.deepEqual(states(files, [row('2', 'squashed', 'changed')]), [
      ['2', 'edited'],
      ['3', 'pending'],
    ]);
    // A baseline stopped part-way (no transactional DDL) resumes like any migration.
    const partial = migrationStatus(files, [row('2', 'squashed', 'baseline', 'partial')]);
    assert.deepEqual(versions(planUp(partial, files)), ['2', '3']);
  });

  it('a database inside the range is refused by up, before anything runs', () => {
    const status = migrationStatus(files, [row('1')]);
    assert.deepEqual(
      status.map((s) => [s.version, s.state]),
      [
        ['1', 'squashed'],
        ['2', 'pending'],
        ['3', 'pending'],
      ],
    );
    for (const options of [{}, { to: '3' }, { step: 1 }]) {
      const error = planError(() => planUp(status, files, options));
      assert.match(
        error.message,
        /This database is at 1_m1, inside the squashed range 1\.\.2 \(2_squashed\.sql\)/,
      );
      assert.match(error.hint ?? '', /Check out the old migrations .* apply up to 2 first/);
    }
    // Its old rows cannot be rolled back without their files either.
    assert.match(
      planError(() => planDown(status, files)).message,
      /1_m1: it was squashed into 2_squashed\.sql/,
    );
  });

  it('a database that stopped part-way through the last replaced migration is refused too', () => {
    const status = migrationStatus(files, [row('1'), row('2', 'm2', 'c2', 'partial')]);
    assert.equal(status[1]?.state, 'partial');
    assert.match(
      planError(() => planUp(status, files)).message,
      /This database is partway through 2_m2, inside the squashed range 1\.\.2/,
    );
  });

  it('only versions inside the range are squashed; others stay missing-file', () => {
    const laterBaseline = [baseline('5', '7'), file('8')];
    assert.deepEqual(states(laterBaseline, [row('4'), row('5'), row('6'), row('7')]), [
      ['4', 'missing-file'],
      ['5', 'squashed'],
      ['6', 'squashed'],
      ['7', 'applied'],
      ['8', 'pending'],
    ]);
    // Numeric, not textual: 10 is past a range ending at 9.
    assert.deepEqual(states([baseline('1', '9'), file('11')], [row('10'), row('9')]), [
      ['9', 'applied'],
      ['10', 'missing-file'],
      ['11', 'pending'],
    ]);
  });
});
