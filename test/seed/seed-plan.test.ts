/**
 * Seeds without a server: which files are seeds and in what order, the repeatable marker, and
 * the decision per seed from files and tracking rows.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DbwardError } from '../../src/index.js';
import type { AppliedMigration } from '../../src/engines/contract.js';
import { migrationChecksum } from '../../src/migrate/migration-checksum.js';
import {
  compareNatural,
  discoverSeeds,
  parseSqlSeedHeader,
  scriptIsRepeatable,
  type SeedFile,
} from '../../src/seed/discover-seeds.js';
import { SeedChangedError, SeedFileError } from '../../src/seed/seed-errors.js';
import { planSeeds } from '../../src/seed/seed-plan.js';

function seedsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-seeds-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function seed(id: string, content: string, repeatable = false): SeedFile {
  return {
    id,
    name: path.basename(id).replace(/\.[^.]+$/, ''),
    path: `/project/seeds/${id}`,
    kind: id.endsWith('.sql') ? 'sql' : 'script',
    env: id.includes('/') ? id.split('/')[0]! : null,
    checksum: migrationChecksum(content),
    repeatable,
    sql: id.endsWith('.sql') ? content : null,
  };
}

function row(id: string, content: string): AppliedMigration {
  return {
    version: id,
    name: path.basename(id).replace(/\.[^.]+$/, ''),
    checksum: migrationChecksum(content),
    appliedAt: '2026-11-22T04:00:00.000Z',
    durationMs: 3,
    appliedBy: 'ci@build-7',
    dbwardVersion: '0.1.0',
    statementsApplied: 1,
    statementsTotal: 1,
    status: 'applied',
  };
}

describe('planSeeds', () => {
  it('runs new seeds, skips unchanged ones and re-runs changed repeatable ones, in file order', () => {
    const seeds = [
      seed('01_countries.sql', 'INSERT 1'),
      seed('02_currencies.sql', 'INSERT 2 v2', true),
      seed('03_settings.ts', 'export function seed() {}'),
      seed('dev/01_users.sql', 'INSERT users'),
    ];
    const applied = [
      row('01_countries.sql', 'INSERT 1'),
      row('02_currencies.sql', 'INSERT 2 v1'),
      row('gone.sql', 'whatever'), // a deleted seed's row is left alone
    ];
    assert.deepEqual(
      planSeeds(seeds, applied).map((p) => [p.seed.id, p.action, p.reason]),
      [
        ['01_countries.sql', 'skip', 'unchanged'],
        ['02_currencies.sql', 'rerun', 'changed'],
        ['03_settings.ts', 'run', 'new'],
        ['dev/01_users.sql', 'run', 'new'],
      ],
    );
  });

  it('an unchanged repeatable seed is skipped, not re-run', () => {
    const plan = planSeeds([seed('01_a.sql', 'X', true)], [row('01_a.sql', 'X')]);
    assert.equal(plan[0]!.action, 'skip');
  });

  it('line endings and trailing whitespace are not a change', () => {
    const plan = planSeeds(
      [seed('01_a.sql', 'INSERT 1;\r\nINSERT 2;  \r\n\r\n')],
      [row('01_a.sql', 'INSERT 1;\nINSERT 2;')],
    );
    assert.equal(plan[0]!.action, 'skip');
  });

  it('refuses the whole run when a non-repeatable seed changed, naming every such file', () => {
    const seeds = [
      seed('01_new.sql', 'new'), // would run, but the run is refused as a whole
      seed('02_changed.sql', 'v2'),
      seed('03_also.ts', 'v2'),
      seed('04_fine.sql', 'v2', true),
    ];
    const applied = [row('02_changed.sql', 'v1'), row('03_also.ts', 'v1'), row('04_fine.sql', 'v1')];
    assert.throws(
      () => planSeeds(seeds, applied),
      (err: unknown) => {
        assert.ok(err instanceof SeedChangedError);
        assert.ok(err instanceof DbwardError);
        assert.equal(err.code, 'E_SEED_CHANGED');
        assert.equal(err.exitCode, 1);
        assert.deepEqual(err.seeds, ['02_changed.sql', '03_also.ts']);
        assert.match(err.message, /\/project\/seeds\/02_changed\.sql, \/project\/seeds\/03_also\.ts/);
        assert.doesNotMatch(err.message, /01_new|04_fine/);
        assert.match(err.hint!, /-- seed:repeatable/);
        assert.match(err.hint!, /export const repeatable = true/);
        assert.match(err.hint!, /new seed file/);
        return true;
      },
    );
  });
});

describe('discoverSeeds', () => {
  const files = {
    '10_late.sql': 'SELECT 10;',
    '2_early.sql': 'SELECT 2;',
    '1_script.ts': 'export async function seed(db) {}',
    '3_module.mjs': 'export default async function (db) {}',
    'README.md': '# seeds',
    'notes.txt': 'not a seed',
    'types.d.ts': 'export {};',
    '.hidden.sql': 'SELECT 0;',
    'dev/20_more.sql': 'SELECT 20;',
    'dev/3_users.ts': 'export const repeatable = true;\nexport async function seed(db) {}',
    'dev/nested/9_no.sql': 'SELECT 9;',
    'test/1_test_only.sql': 'SELECT 1;',
  };

  it('finds the common seeds in natural order and ignores other files and folders', () => {
    const dir = seedsDir(files);
    const seeds = discoverSeeds(dir);
    assert.deepEqual(
      seeds.map((s) => s.id),
      ['1_script.ts', '2_early.sql', '3_module.mjs', '10_late.sql'],
    );
    const early = seeds[1]!;
    assert.equal(early.name, '2_early');
    assert.equal(early.path, path.join(dir, '2_early.sql'));
    assert.equal(early.kind, 'sql');
    assert.equal(early.env, null);
    assert.equal(early.sql, 'SELECT 2;');
    assert.equal(early.checksum, migrationChecksum('SELECT 2;'));
    assert.equal(seeds[0]!.kind, 'script');
    assert.equal(seeds[0]!.sql, null);
  });

  it('adds the environment folder after the common seeds, with ids relative to the seeds dir', () => {
    const dir = seedsDir(files);
    const seeds = discoverSeeds(dir, 'dev');
    assert.deepEqual(
      seeds.map((s) => s.id),
      ['1_script.ts', '2_early.sql', '3_module.mjs', '10_late.sql', 'dev/3_users.ts', 'dev/20_more.sql'],
    );
    const users = seeds[4]!;
    assert.equal(users.env, 'dev');
    assert.equal(users.name, '3_users');
    assert.equal(users.repeatable, true);
    assert.deepEqual(
      discoverSeeds(dir, 'test').map((s) => s.id),
      ['1_script.ts', '2_early.sql', '3_module.mjs', '10_late.sql', 'test/1_test_only.sql'],
    );
    // An environment without a folder runs only the common seeds.
    assert.equal(discoverSeeds(dir, 'production').length, 4);
  });

  it('a missing seeds directory has no seeds; a path-like environment name is refused', () => {
    assert.deepEqual(discoverSeeds(path.join(tmpdir(), 'dbward-no-such-dir-' + process.pid), 'dev'), []);
    const dir = seedsDir(files);
    for (const bad of ['../dev', 'dev/nested', '..']) {
      assert.throws(() => discoverSeeds(dir, bad), { code: 'E_USAGE' });
    }
  });

  it('reads the repeatable marker of SQL seeds before the first SQL', () => {
    const dir = seedsDir({
      '1_plain.sql': '-- countries\nINSERT INTO c VALUES (1);\n',
      '2_marked.sql':
        '-- countries\n\n-- seed:repeatable\nINSERT INTO c VALUES (1) ON CONFLICT DO NOTHING;\n',
      '3_spaced.sql': '  --  seed: repeatable  \r\nINSERT 1;\r\n',
    });
    assert.deepEqual(
      discoverSeeds(dir).map((s) => [s.id, s.repeatable]),
      [
        ['1_plain.sql', false],
        ['2_marked.sql', true],
        ['3_spaced.sql', true],
      ],
    );
  });

  it('an unknown directive, or a directive after the SQL started, is an error naming file and line', () => {
    const dir = seedsDir({ '1_typo.sql': '-- reference data\n-- seed:repeatible\nINSERT 1;\n' });
    assert.throws(
      () => discoverSeeds(dir),
      (err: unknown) => {
        assert.ok(err instanceof SeedFileError);
        assert.equal(err.code, 'E_SEED_FILE');
        assert.equal(err.line, 2);
        assert.equal(err.file, path.join(dir, '1_typo.sql'));
        assert.match(err.message, /1_typo\.sql:2: Unknown seed directive "-- seed:repeatible"/);
        assert.match(err.hint!, /-- seed:repeatable/);
        return true;
      },
    );
    assert.throws(() => parseSqlSeedHeader('late.sql', 'INSERT 1;\n-- seed:repeatable\n'), {
      code: 'E_SEED_FILE',
      message: /late\.sql:2: "-- seed:repeatable" comes after SQL/,
    });
    // A block comment counts as SQL starting: the marker must be on a `--` line before it.
    assert.throws(() => parseSqlSeedHeader('block.sql', '/* x */\n-- seed:repeatable\nINSERT 1;'), {
      code: 'E_SEED_FILE',
    });
    // Comments that merely mention seeds are not directives.
    assert.deepEqual(parseSqlSeedHeader('ok.sql', '-- seeds: countries\n-- seed data\nINSERT 1;'), {
      repeatable: false,
    });
  });

  it('reads `export const repeatable = true` from TS/JS seeds without running them', () => {
    assert.equal(
      scriptIsRepeatable('a.ts', 'export const repeatable = true;\nexport async function seed() {}'),
      true,
    );
    assert.equal(scriptIsRepeatable('a.ts', 'export const repeatable: boolean = true // idempotent\n'), true);
    assert.equal(scriptIsRepeatable('a.ts', 'export const repeatable = false;\n'), false);
    assert.equal(scriptIsRepeatable('a.ts', 'export async function seed() {}\n'), false);
    assert.equal(scriptIsRepeatable('a.ts', 'const repeatable = true;\n'), false, 'not exported');
    assert.throws(() => scriptIsRepeatable('a.ts', '// seed\nexport const repeatable = isDev;\n'), {
      code: 'E_SEED_FILE',
      message: /a\.ts:2: "repeatable" must be the literal true or false/,
    });
  });
});

describe('compareNatural', () => {
  it('orders digit runs as numbers', () => {
    const names = ['10_x.sql', '2_x.sql', '1_b.sql', '1_a.sql', '001_c.sql', 'b.sql', 'a10.sql', 'a9.sql'];
    assert.deepEqual([...names].sort(compareNatural), [
      '1_a.sql',
      '1_b.sql',
      '001_c.sql',
      '2_x.sql',
      '10_x.sql',
      'a9.sql',
      'a10.sql',
      'b.sql',
    ]);
    assert.ok(compareNatural('01_a.sql', '1_a.sql') !== 0, 'a total order: equal numbers still differ');
  });
});
