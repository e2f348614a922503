/**
 * Which better-sqlite3 to load. Two majors are installed because neither works everywhere:
 * - 12.x is built from source against the running Node's headers; built against Node ≥ 24.19
 *   it aborts the process when the garbage collector finalizes a statement
 *   (`RemoveEnvironmentCleanupHook: (env) != nullptr`, nodejs/node#65446);
 * - 13.x (installed as `better-sqlite3-napi`) uses Node-API with prebuilt binaries and is
 *   immune, but requires Node ≥ 22 (it segfaults on Node 20).
 * So Node ≥ 22 gets 13.x and Node 20 gets 12.x. Their JavaScript APIs are the same.
 */
import type BetterSqlite3 from 'better-sqlite3';

export type SqliteDriver = typeof BetterSqlite3;

/** The driver's package name and version, for diagnostics and tests. */
export interface LoadedSqliteDriver {
  Database: SqliteDriver;
  packageName: 'better-sqlite3' | 'better-sqlite3-napi';
}

const nodeMajor = Number(process.versions.node.split('.')[0]);

/** Load the better-sqlite3 build that is safe on this Node version. */
export async function loadSqliteDriver(): Promise<LoadedSqliteDriver> {
  if (nodeMajor >= 22) {
    try {
      const napi = (await import('better-sqlite3-napi')) as { default: SqliteDriver };
      return { Database: napi.default, packageName: 'better-sqlite3-napi' };
    } catch {
      // Not installed (e.g. a package manager skipped it): fall back to the source build.
    }
  }
  const classic = await import('better-sqlite3');
  return { Database: classic.default, packageName: 'better-sqlite3' };
}
