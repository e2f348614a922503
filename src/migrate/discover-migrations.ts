import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { migrationChecksum } from './migration-checksum.js';
import { MigrationFileError } from './migration-errors.js';
import { compareVersions, type MigrationFile } from './migration-file.js';
import { parseSqlMigration } from './parse-sql-migration.js';

const migrationName = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_.-]*)\.(sql|ts|mts|js|mjs)$/;
const scriptExtensions = new Set(['ts', 'mts', 'js', 'mjs']);

/**
 * Read every migration in `dir`, sorted by version. A missing directory is an empty list (a new
 * project). Files that look like migrations but are misnamed, and two files with the same
 * version, are errors naming the files: either would otherwise be skipped or applied twice.
 * Other files (README.md, .gitkeep, schema.sql) are left alone.
 */
export function discoverMigrations(dir: string): MigrationFile[] {
  const root = path.resolve(dir);
  if (!existsSync(root)) return [];
  const byVersion = new Map<string, MigrationFile>();
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const match = migrationName.exec(entry.name);
    const file = path.join(root, entry.name);
    if (!match) {
      if (/^\d+.*\.(sql|ts|mts|js|mjs)$/.test(entry.name)) {
        throw new MigrationFileError(file, 'Not a valid migration file name.', {
          hint: 'Name migrations <version>_<name>.sql (or .ts/.js), e.g. 20261122043000_create_users.sql; `dbward migrate new <name>` does it for you.',
        });
      }
      continue;
    }
    const [, version, name, extension] = match as unknown as [string, string, string, string];
    const content = readFileSync(file, 'utf8');
    const isScript = scriptExtensions.has(extension);
    const sections = isScript ? null : parseSqlMigration(file, content);
    const migration: MigrationFile = {
      version,
      name,
      path: file,
      kind: isScript ? 'script' : 'sql',
      checksum: migrationChecksum(content),
      up: sections?.up ?? null,
      down: sections?.down ?? null,
    };
    if (sections?.squashed) {
      const { from, to } = sections.squashed;
      if (compareVersions(to, version) !== 0 || compareVersions(from, to) > 0) {
        throw new MigrationFileError(
          file,
          `Its "-- dbward:squashed ${from}..${to}" header does not end at its own version ${version}.`,
          {
            hint: 'A squashed baseline keeps the version of the last migration it replaces; restore the file as `dbward migrate squash` wrote it.',
          },
        );
      }
      migration.squashed = sections.squashed;
    }
    // Keyed by the version without leading zeros, so 007 and 7 clash; a Map keeps this linear
    // (a scan per file made `status` quadratic: ~1 s for 5,000 files).
    const key = version.replace(/^0+(?=\d)/, '');
    const clash = byVersion.get(key);
    if (clash) {
      throw new MigrationFileError(file, `Version ${version} is also used by ${path.basename(clash.path)}.`, {
        hint: 'Give one of them a new version (rename it with a later timestamp), then run again.',
      });
    }
    byVersion.set(key, migration);
  }
  return [...byVersion.values()].sort((a, b) => compareVersions(a.version, b.version));
}
