import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { discoverMigrations } from '../../src/migrate/discover-migrations.js';
import { migrationChecksum } from '../../src/migrate/migration-checksum.js';
import { MigrationFileError } from '../../src/migrate/migration-errors.js';
import { compareVersions } from '../../src/migrate/migration-file.js';
import { createMigrationFile, timestampVersion } from '../../src/migrate/new-migration.js';
import { parseSqlMigration } from '../../src/migrate/parse-sql-migration.js';
import { positionInFile } from '../../src/migrate/migration-error.js';
import { runCli } from '../helpers/run-cli.js';

const dir = (): string => mkdtempSync(path.join(tmpdir(), 'dbward-migrations-'));
const fileError = (line: number | undefined, pattern: RegExp) => (err: unknown) =>
  err instanceof MigrationFileError && err.line === line && pattern.test(err.message);

describe('SQL migration sections', () => {
  it('splits up and down, keeps directives and the line each section starts on', () => {
    const parsed = parseSqlMigration(
      'm.sql',
      '-- a comment first is fine\n-- migrate:up transaction:false\n\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- migrate:down\nDROP INDEX i;\n',
    );
    assert.deepEqual(parsed.up, {
      sql: 'CREATE INDEX CONCURRENTLY i ON t (a);',
      transaction: false,
      firstLine: 4,
    });
    assert.deepEqual(parsed.down, { sql: 'DROP INDEX i;', transaction: true, firstLine: 6 });
  });

  it('allows a migration without a down section', () => {
    assert.equal(parseSqlMigration('m.sql', '-- migrate:up\nSELECT 1;\n').down, null);
  });

  it('refuses what would run half a file or the wrong half', () => {
    assert.throws(
      () => parseSqlMigration('m.sql', 'CREATE TABLE t (a int);\n-- migrate:up\n'),
      fileError(1, /before the first/),
    );
    assert.throws(
      () => parseSqlMigration('m.sql', '-- migrate:down\nDROP TABLE t;\n'),
      fileError(undefined, /No "-- migrate:up"/),
    );
    assert.throws(
      () => parseSqlMigration('m.sql', '-- migrate:up\n-- migrate:up\n'),
      fileError(2, /second "-- migrate:up"/),
    );
    assert.throws(() => parseSqlMigration('m.sql', '-- migrate:upp\n'), fileError(1, /Unknown marker/));
    assert.throws(
      () => parseSqlMigration('m.sql', '-- migrate:up transaction:no\n'),
      fileError(1, /Unknown directive/),
    );
  });
});

describe('migration checksums', () => {
  it('ignore line endings, trailing whitespace and trailing blank lines', () => {
    const base = migrationChecksum('-- migrate:up\nCREATE TABLE t (a int);\n');
    assert.equal(migrationChecksum('-- migrate:up\r\nCREATE TABLE t (a int);  \r\n\r\n'), base);
    assert.equal(migrationChecksum('\uFEFF-- migrate:up\nCREATE TABLE t (a int);'), base);
  });

  it('change with any change to the SQL', () => {
    const base = migrationChecksum('-- migrate:up\nCREATE TABLE t (a int);\n');
    assert.notEqual(migrationChecksum('-- migrate:up\nCREATE TABLE t (a bigint);\n'), base);
    assert.notEqual(migrationChecksum('-- migrate:up\nCREATE TABLE t  (a int);\n'), base);
  });
});

describe('discovering migrations', () => {
  it('orders versions numerically and skips files that are not migrations', () => {
    const d = dir();
    writeFileSync(path.join(d, '10_second.sql'), '-- migrate:up\nSELECT 2;\n');
    writeFileSync(path.join(d, '9_first.sql'), '-- migrate:up\nSELECT 1;\n');
    writeFileSync(path.join(d, '11_script.ts'), 'export async function up() {}\n');
    writeFileSync(path.join(d, 'README.md'), 'notes');
    writeFileSync(path.join(d, 'schema.sql'), 'CREATE TABLE t (a int);');
    const found = discoverMigrations(d);
    assert.deepEqual(
      found.map((m) => [m.version, m.name, m.kind]),
      [
        ['9', 'first', 'sql'],
        ['10', 'second', 'sql'],
        ['11', 'script', 'script'],
      ],
    );
    assert.equal(found[0]!.checksum.length, 64);
    assert.equal(found[2]!.up, null);
  });

  it('a missing directory is an empty project', () => {
    assert.deepEqual(discoverMigrations(path.join(dir(), 'nope')), []);
  });

  it('refuses duplicated versions and misnamed migrations, naming the files', () => {
    const dup = dir();
    writeFileSync(path.join(dup, '20261122000000_a.sql'), '-- migrate:up\n');
    writeFileSync(path.join(dup, '020261122000000_b.sql'), '-- migrate:up\n');
    assert.throws(() => discoverMigrations(dup), /is also used by/);
    const misnamed = dir();
    writeFileSync(path.join(misnamed, '20261122000000-create users.sql'), '-- migrate:up\n');
    assert.throws(
      () => discoverMigrations(misnamed),
      (err: unknown) => err instanceof MigrationFileError && err.file.endsWith('create users.sql'),
    );
  });

  it('compares versions of different lengths numerically', () => {
    assert.ok(compareVersions('9', '10') < 0);
    assert.equal(compareVersions('007', '7'), 0);
    assert.ok(compareVersions('20261122000001', '20261122000000') > 0);
  });
});

describe('creating migrations', () => {
  it('names files by UTC timestamp and keeps versions unique within one second', () => {
    const d = dir();
    const now = new Date('2026-11-22T04:30:05.123Z');
    assert.equal(timestampVersion(now), '20261122043005');
    const a = createMigrationFile(d, 'Create users', { now });
    const b = createMigrationFile(d, 'add email index', { now });
    assert.equal(path.basename(a), '20261122043005_create_users.sql');
    assert.equal(path.basename(b), '20261122043006_add_email_index.sql');
    const parsed = discoverMigrations(d);
    assert.equal(parsed.length, 2);
    assert.equal(parsed[0]!.up?.sql, '');
  });

  it('writes a TypeScript template with up and down', () => {
    const file = createMigrationFile(dir(), 'backfill', { script: true });
    assert.match(file, /_backfill\.ts$/);
    assert.match(
      readFileSync(file, 'utf8'),
      /export async function up\(db: Database\)[\s\S]*export async function down/,
    );
  });

  it('dbward migrate new creates the file; a name without letters is a usage error', async () => {
    const d = dir();
    const ok = await runCli(['migrate', 'new', 'create orders', '--json'], { cwd: d });
    assert.equal(ok.code, 0, ok.all);
    const { file } = JSON.parse(ok.stdout) as { file: string };
    assert.match(file, /migrations\/\d{14}_create_orders\.sql$/);
    assert.equal(discoverMigrations(path.join(d, 'migrations')).length, 1);
    const bad = await runCli(['migrate', 'new', '!!!'], { cwd: d });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /not a usable migration name/);
  });
});

describe('mapping a server error position into the file', () => {
  it('counts lines from where the section starts in the file', () => {
    const section = {
      sql: 'CREATE TABLE a (id int);\n\nCREATE TABLE b (id int,);',
      transaction: true,
      firstLine: 2,
    };
    const position = section.sql.indexOf(',)') + 2; // 1-based position of ")"
    assert.deepEqual(positionInFile(section, position), { line: 4, column: 24 });
    assert.deepEqual(positionInFile(section, 1), { line: 2, column: 1 });
  });
});
