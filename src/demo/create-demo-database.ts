import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { openSql } from '../connect/open.js';
import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { demoRows, demoSchema } from './demo-schema.js';

/** The file `dbward demo` creates, relative to the current directory. */
export const defaultDemoFile = 'dbward-demo.db';

/**
 * Create (or re-create) the demo SQLite database at `file` and return its URL. An existing file
 * is replaced only if it is a demo database made by dbward; anything else is left untouched.
 */
export async function createDemoDatabase(file: string): Promise<string> {
  const absolute = path.resolve(file);
  const url = `sqlite:${absolute}`;
  if (existsSync(absolute)) {
    if (!(await isDemoDatabase(url))) {
      throw new DbwardError('E_DEMO_EXISTS', `${absolute} exists and is not a dbward demo database.`, {
        exitCode: ExitCode.failed,
        hint: 'Choose another path with --file, or move that file away.',
      });
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(absolute + suffix, { force: true });
  }
  const db = await openSql(`${url}?mode=rwc`);
  try {
    await db.transaction(async (tx) => {
      for (const statement of demoSchema
        .split(/;\s*$/m)
        .map((s) => s.trim())
        .filter(Boolean)) {
        await tx.query(statement);
      }
      await tx.query('INSERT INTO dbward_demo_info (key, value) VALUES (?, ?)', [
        'created_by',
        'dbward demo',
      ]);
      for (const [sql, params] of demoRows()) await tx.query(sql, params);
    });
    // Statistics give inspect real row estimates without counting rows.
    await db.query('ANALYZE');
  } finally {
    await db.close();
  }
  return url;
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
