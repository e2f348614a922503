import type { AppliedMigration } from '../engines/contract.js';
import { compareVersions, type MigrationFile } from './migration-file.js';

/**
 * Where one migration stands:
 * - `applied`: recorded, and the file still has the checksum it had then;
 * - `pending`: a file not applied yet, newer than everything applied;
 * - `out-of-order`: a file not applied yet but older than the newest applied (typically a merge);
 * - `partial`: a run stopped part-way through a non-transactional migration (resumable);
 * - `edited`: applied, but the file changed since;
 * - `missing-file`: applied, but its file is gone.
 */
export type MigrationState = 'applied' | 'pending' | 'out-of-order' | 'partial' | 'edited' | 'missing-file';

export interface MigrationStatusEntry {
  version: string;
  name: string;
  state: MigrationState;
  appliedAt: string | null;
  /** Absolute path, or null when the file is missing. */
  file: string | null;
  statementsApplied: number | null;
  statementsTotal: number | null;
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
  const versions = [...new Set([...fileByVersion.keys(), ...rows.keys()])].sort(compareVersions);
  return versions.map((version) => {
    const file = fileByVersion.get(version);
    const row = rows.get(version);
    const state: MigrationState = row
      ? !file
        ? 'missing-file'
        : row.status === 'partial'
          ? 'partial'
          : row.checksum === file.checksum
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
    };
  });
}

const normalize = (version: string): string => version.replace(/^0+(?=\d)/, '');
