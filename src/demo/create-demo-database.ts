import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openSql } from '../connect/open.js';
import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { defaultTargetOptions } from '../core/target.js';
import { migrateUp, type MigrateRunResult } from '../migrate/run-migrations.js';
import { runSeeds, type SeedRunResult } from '../seed/run-seeds.js';
import { demoMigrations, demoProjectMarker, demoSeeds } from './demo-project.js';

/** The file `dbward demo` creates, relative to the current directory. */
export const defaultDemoFile = 'dbward-demo.db';

export interface DemoDatabase {
  url: string;
  /** The folder with the demo's migrations/, seeds/ and schema.sql. */
  projectDir: string;
  migrations: MigrateRunResult;
  seeds: SeedRunResult;
}

/**
 * Create (or re-create) the demo SQLite database at `file` the way a project would: write its
 * migrations and seeds into a folder beside it (`dbward-demo/` for `dbward-demo.db`), apply the
 * migrations, run the seeds. An existing database or folder is replaced only if dbward's demo
 * made it; anything else is left untouched.
 */
export async function createDemoDatabase(file: string): Promise<DemoDatabase> {
  const absolute = path.resolve(file);
  const url = `sqlite:${absolute}`;
  const projectDir = path.join(
    path.dirname(absolute),
    path.basename(absolute).replace(/\.[^.]*$/, '') || 'dbward-demo',
  );
  if (projectDir === absolute)
    throw new DbwardError(
      'E_DEMO_EXISTS',
      `Cannot use ${absolute}: give the demo database a file extension such as .db.`,
      { exitCode: ExitCode.usage },
    );
  if (existsSync(absolute) && !(await isDemoDatabase(url))) {
    throw new DbwardError('E_DEMO_EXISTS', `${absolute} exists and is not a dbward demo database.`, {
      exitCode: ExitCode.failed,
      hint: 'Choose another path with --file, or move that file away.',
    });
  }
  if (existsSync(projectDir) && !existsSync(path.join(projectDir, demoProjectMarker))) {
    throw new DbwardError('E_DEMO_EXISTS', `${projectDir} exists and was not made by dbward demo.`, {
      exitCode: ExitCode.failed,
      hint: 'Choose another path with --file (the folder is named after the file), or move that folder away.',
    });
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(absolute + suffix, { force: true });
  rmSync(projectDir, { recursive: true, force: true });
  writeProject(projectDir);

  const db = await openSql({ name: 'demo', url: `${url}?mode=rwc` });
  try {
    const migrations = await migrateUp({
      db,
      dir: path.join(projectDir, 'migrations'),
      schemaFile: path.join(projectDir, 'schema.sql'),
      target: { name: 'demo', url, displayUrl: url, options: defaultTargetOptions },
    });
    if (migrations.schemaDumpError) throw new Error(migrations.schemaDumpError.message);
    const seeds = await runSeeds({ db, dir: path.join(projectDir, 'seeds') });
    // Statistics give inspect real row estimates without counting rows.
    await db.query('ANALYZE');
    return { url, projectDir, migrations, seeds };
  } finally {
    await db.close();
  }
}

function writeProject(projectDir: string): void {
  mkdirSync(path.join(projectDir, 'migrations'), { recursive: true });
  mkdirSync(path.join(projectDir, 'seeds'), { recursive: true });
  writeFileSync(
    path.join(projectDir, demoProjectMarker),
    'Made by `dbward demo`; the next `dbward demo` replaces this folder.\n',
  );
  for (const [name, text] of Object.entries(demoMigrations)) {
    writeFileSync(path.join(projectDir, 'migrations', name), text);
  }
  for (const [name, text] of Object.entries(demoSeeds))
    writeFileSync(path.join(projectDir, 'seeds', name), text);
}

async function isDemoDatabase(url: string): Promise<boolean> {
  try {
    const db = await openSql(url);
    try {
      const { rows } = await db.query<{ value: string }>(
        "SELECT value FROM dbward_demo_info WHERE key = 'created_by'",
      );
      return rows[0]?.value === 'dbward demo';
    } finally {
      await db.close();
    }
  } catch {
    return false;
  }
}
