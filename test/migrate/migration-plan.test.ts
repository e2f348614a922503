import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppliedMigration } from '../../src/engines/contract.js';
import type { MigrationFile } from '../../src/migrate/migration-file.js';
import { MigrationPlanError, planDown, planUp } from '../../src/migrate/migration-plan.js';
import { migrationStatus } from '../../src/migrate/migration-status.js';

const file = (version: string, checksum = `c${version}`, down = true): MigrationFile => ({
  version,
  name: `m${version}`,
  path: `/m/${version}_m${version}.sql`,
  kind: 'sql',
  checksum,
  up: { sql: `SELECT ${version};`, transaction: true, firstLine: 2 },
  down: down ? { sql: 'SELECT 0;', transaction: true, firstLine: 4 } : null,
});
const row = (
  version: string,
  checksum = `c${version}`,
  status: 'applied' | 'partial' = 'applied',
): AppliedMigration => ({
  version,
  name: `m${version}`,
  checksum,
  appliedAt: '2026-11-22T00:00:00.000Z',
  durationMs: 1,
  appliedBy: 'me@here',
  dbwardVersion: '0.1.0',
  statementsApplied: 1,
  statementsTotal: 1,
  status,
});
const states = (files: MigrationFile[], rows: AppliedMigration[]): [string, string][] =>
  migrationStatus(files, rows).map((s) => [s.version, s.state]);

describe('migration status', () => {
  it('tells applied, pending, edited, missing, out-of-order and partial apart', () => {
    assert.deepEqual(
      states(
        [file('1'), file('2', 'changed'), file('3'), file('5'), file('7')],
        [row('1'), row('2'), row('4'), row('6'), row('7', 'c7', 'partial')],
      ),
      [
        ['1', 'applied'],
        ['2', 'edited'],
        ['3', 'out-of-order'],
        ['4', 'missing-file'],
        ['5', 'out-of-order'],
        ['6', 'missing-file'],
        ['7', 'partial'],
      ],
    );
  });

  it('orders numerically and treats leading zeros as the same version', () => {
    assert.deepEqual(states([file('10'), file('9')], [row('09', 'c9')]), [
      ['9', 'applied'],
      ['10', 'pending'],
    ]);
  });
});

describe('planning up', () => {
  const files = [file('1'), file('2'), file('3')];
  it('applies pending in order, honouring --to and --step', () => {
    const status = migrationStatus(files, [row('1')]);
    assert.deepEqual(
      planUp(status, files).map((f) => f.version),
      ['2', '3'],
    );
    assert.deepEqual(
      planUp(status, files, { to: '2' }).map((f) => f.version),
      ['2'],
    );
    assert.deepEqual(
      planUp(status, files, { step: 1 }).map((f) => f.version),
      ['2'],
    );
  });

  it('refuses an edited applied migration, an unknown --to, and out-of-order files unless allowed', () => {
    assert.throws(
      () => planUp(migrationStatus([file('1', 'x')], [row('1')]), [file('1', 'x')]),
      MigrationPlanError,
    );
    assert.throws(
      () => planUp(migrationStatus(files, []), files, { to: '99' }),
      /No migration has version 99/,
    );
    const merged = [file('1'), file('2'), file('3')];
    const status = migrationStatus(merged, [row('1'), row('3')]);
    assert.throws(() => planUp(status, merged), /older than the newest applied/);
    assert.deepEqual(
      planUp(status, merged, { allowOutOfOrder: true }).map((f) => f.version),
      ['2'],
    );
  });
});

describe('planning down', () => {
  it('rolls back the newest by default, --step N, or everything after --to', () => {
    const files = [file('1'), file('2'), file('3')];
    const status = migrationStatus(files, [row('1'), row('2'), row('3')]);
    assert.deepEqual(
      planDown(status, files).map((f) => f.version),
      ['3'],
    );
    assert.deepEqual(
      planDown(status, files, { step: 2 }).map((f) => f.version),
      ['3', '2'],
    );
    assert.deepEqual(
      planDown(status, files, { to: '1' }).map((f) => f.version),
      ['3', '2'],
    );
  });

  it('refuses a migration without a down section or without its file', () => {
    const noDown = [file('1', 'c1', false)];
    assert.throws(
      () => planDown(migrationStatus(noDown, [row('1')]), noDown),
      /no "-- migrate:down" section/,
    );
    assert.throws(() => planDown(migrationStatus([], [row('1')]), []), /its file is missing/);
  });
});
