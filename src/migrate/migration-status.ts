import type { AppliedMigration } from '../engines/contract.js';
import { compareVersions, type MigrationFile } from './migration-file.js';

/**
 * Where one migration stands:
 * - `applied`: recorded, and the file still has the checksum it had then;
 * - `pending`: a file not applied yet, newer than everything applied;
 * - `out-of-order`: a file not applied yet but older than the newest applied (typically a merge);
 * - `partial`: a run stopped part-way through a non-transactional migration (resumable);
 * - `edited`: applied, but the file changed since;
 * - `missing-file`: applied, but its file is gone;
 * - `squashed`: applied, and its file was replaced by a squashed baseline (`migrate squash`)
 *   covering its version. Not a problem.
 *
 * A squashed baseline counts as `applied` on a database that ran the last migration it replaces
 * (the tracking row has that migration's name and checksum, not the baseline's).
 */
export type MigrationState =
  'applied' | 'pending' | 'out-of-order' | 'partial' | 'edited' | 'missing-file' | 'squashed';

export interface MigrationStatusEntry {
  version: string;
  name: string;
  state: MigrationState;
  appliedAt: string | null;
  /** Absolute path, or null when the file is missing. */
  file: string | null;
  statementsApplied: number | null;
  statementsTotal: number | null;
  /**
   * The name the tracking row has when it differs from the file's: a squashed baseline on a
   * database that ran the last migration it replaced (under that migration's name).
   */
  appliedAs?: string;
}

/** Combine the files on disk with the tracking rows. Pure: no I/O, so every case is unit-tested. */
export function migrationStatus(
  files: readonly MigrationFile[],
  applied: readonly AppliedMigration[],
): MigrationStatusEntry[] {
  const rows = new Map(applied.map((r) => [normalize(r.version), r]));
  const fileByVersion = new Map(files.map((f) => [normalize(f.version), f]));
  const newestApplied = applied.reduce<string | null>(
    (max, r) => (max === null || compareVersions(r.version, max) > 0 ? r.version : max),
    null,
  );
  const baselines = files.filter((f) => f.squashed);
  const squashedAway = (version: string): boolean =>
    baselines.some(
      (f) => compareVersions(f.squashed!.from, version) <= 0 && compareVersions(version, f.version) < 0,
    );
  const versions = [...new Set([...fileByVersion.keys(), ...rows.keys()])].sort(compareVersions);
  return versions.map((version) => {
    const file = fileByVersion.get(version);
    const row = rows.get(version);
    // A row for a baseline's version under another name: the database ran the migration the
    // baseline replaced, so the baseline's own checksum does not apply to it.
    const ranReplaced = !!file?.squashed && !!row && row.name !== file.name;
    const state: MigrationState = row
      ? !file
        ? squashedAway(version)
          ? 'squashed'
          : 'missing-file'
        : row.status === 'partial'
          ? 'partial'
          : ranReplaced || row.checksum === file.checksum
            ? 'applied'
            : 'edited'
      : newestApplied !== null && compareVersions(version, newestApplied) < 0
        ? 'out-of-order'
        : 'pending';
    return {
      version: file?.version ?? row!.version,
      name: file?.name ?? row!.name,
      state,
      appliedAt: row?.appliedAt ?? null,
      file: file?.path ?? null,
      statementsApplied: row?.statementsApplied ?? null,
      statementsTotal: row?.statementsTotal ?? null,
      ...(ranReplaced ? { appliedAs: row.name } : {}),
    };
  });
}

const normalize = (version: string): string => version.replace(/^0+(?=\d)/, '');
