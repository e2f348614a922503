/**
 * What script migrations and script seeds share: loading a .ts/.js file (jiti compiles
 * TypeScript on the fly, so scripts run from the built CLI on Node 20 too), the handle bound to
 * the script's own session, and who ran it.
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import type { SqlDatabase } from '../connect/database-handle.js';
import type { SqlSession } from '../engines/contract.js';

/**
 * Import a script file's exports. No module cache: a program that runs migrations or seeds twice
 * in one process sees an edited file the second time.
 */
export async function importScript(file: string): Promise<Record<string, unknown>> {
  const { createJiti } = await import('jiti');
  return (await createJiti(import.meta.url, { moduleCache: false }).import(
    pathToFileURL(file).href,
  )) as Record<string, unknown>;
}

/**
 * The handle a script receives on a SQL engine: its queries run on the script's own session, so
 * they are inside its transaction (and roll back with it) where there is one.
 */
export function boundToSession(db: SqlDatabase, session: SqlSession): SqlDatabase {
  return {
    ...db,
    query: (sql, params) => session.query(sql, params),
    transaction: (fn) => fn(session),
    session: (fn) => fn(session),
  };
}

let appliedByCache: string | undefined;

/** `user@host` for tracking rows, computed once per process (os.userInfo() is a system call per use). */
export function appliedBy(): string {
  if (appliedByCache) return appliedByCache;
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  appliedByCache = `${user}@${os.hostname()}`;
  return appliedByCache;
}
