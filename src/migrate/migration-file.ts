/**
 * A migration as found on disk. SQL files hold `-- migrate:up` and `-- migrate:down` sections
 * (dbmate's syntax, so teams can switch without rewriting); script files (.ts/.js) export
 * `up(db)` / `down(db)`. The version is the leading number of the file name, normally a UTC
 * timestamp such as 20261122043000.
 */
export interface MigrationSection {
  /** The section's SQL, without its `-- migrate:` marker line. */
  sql: string;
  /** False when the marker says `transaction:false` (statements that cannot run in one). */
  transaction: boolean;
  /** 1-based line of the first SQL line in the file, to map server error positions back. */
  firstLine: number;
}

export interface MigrationFile {
  /** Digits only; compared numerically, so 9 sorts before 10. */
  version: string;
  /** The part of the file name after `<version>_`, without the extension. */
  name: string;
  /** Absolute path. */
  path: string;
  kind: 'sql' | 'script';
  /** SHA-256 (hex) of the normalized content: see migration-checksum.ts. */
  checksum: string;
  /** SQL migrations only; null for scripts. */
  up: MigrationSection | null;
  /** SQL migrations only; null for scripts and for SQL files without a down section. */
  down: MigrationSection | null;
  /**
   * Set on a squashed baseline (`-- dbward:squashed <from>..<to>` in its header, written by
   * `dbward migrate squash`): it replaces the migrations from `from` to `to`, and `to` is its
   * own version. Databases that ran those migrations count it as applied.
   */
  squashed?: { from: string; to: string };
}

/** Order migration versions numerically (they may have different lengths). */
export function compareVersions(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}
