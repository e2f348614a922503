import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { compareVersions, type MigrationFile } from './migration-file.js';
import type { MigrationStatusEntry } from './migration-status.js';

/** The plan cannot be made as asked: an edited migration, an unknown version, a missing down. Exit 1. */
export class MigrationPlanError extends DbwardError {
  constructor(message: string, hint: string) {
    super('E_MIGRATION_PLAN', message, { hint, exitCode: ExitCode.failed });
  }
}

export interface UpOptions {
  /** Apply up to and including this version. */
  to?: string;
  /** Apply at most this many. */
  step?: number;
  /** Apply files older than the newest applied one (refused by default). */
  allowOutOfOrder?: boolean;
}

/**
 * What `migrate up` would apply, in order. Refuses — before anything runs — when an applied
 * migration was edited (its recorded checksum no longer matches), when a pending file is older
 * than the newest applied one (unless allowed), or when --to names no migration.
 */
export function planUp(
  status: readonly MigrationStatusEntry[],
  files: readonly MigrationFile[],
  options: UpOptions = {},
): MigrationFile[] {
  const edited = status.filter((s) => s.state === 'edited');
  if (edited.length > 0) {
    throw new MigrationPlanError(
      `${edited.map((s) => `${s.version}_${s.name}`).join(', ')} changed after ${edited.length === 1 ? 'it was' : 'they were'} applied.`,
      'Restore the applied version of the file and put the change in a new migration (`dbward migrate new`).',
    );
  }
  const outOfOrder = status.filter((s) => s.state === 'out-of-order');
  if (outOfOrder.length > 0 && !options.allowOutOfOrder) {
    throw new MigrationPlanError(
      `${outOfOrder.map((s) => `${s.version}_${s.name}`).join(', ')} ${outOfOrder.length === 1 ? 'is' : 'are'} older than the newest applied migration.`,
      'This usually comes from a merge. Apply anyway with --allow-out-of-order, or give the file a newer version.',
    );
  }
  if (options.to !== undefined && !files.some((f) => compareVersions(f.version, options.to!) === 0)) {
    throw new MigrationPlanError(
      `No migration has version ${options.to}.`,
      'Run `dbward migrate status` to see the versions.',
    );
  }
  const wanted = new Set(
    status
      .filter((s) => s.state === 'pending' || s.state === 'partial' || s.state === 'out-of-order')
      .map((s) => s.version),
  );
  let plan = files.filter((f) => wanted.has(f.version));
  if (options.to !== undefined) plan = plan.filter((f) => compareVersions(f.version, options.to!) <= 0);
  if (options.step !== undefined) plan = plan.slice(0, options.step);
  return plan;
}

export interface DownOptions {
  /** Roll back everything applied after this version (it stays applied). */
  to?: string;
  /** Roll back this many, newest first. Default 1 unless `to` is given. */
  step?: number;
}

/** What `migrate down` would roll back, newest first. Every one needs its file and a down section. */
export function planDown(
  status: readonly MigrationStatusEntry[],
  files: readonly MigrationFile[],
  options: DownOptions = {},
): MigrationFile[] {
  const applied = status.filter((s) => s.state !== 'pending' && s.state !== 'out-of-order').reverse();
  if (options.to !== undefined && !status.some((s) => compareVersions(s.version, options.to!) === 0)) {
    throw new MigrationPlanError(
      `No migration has version ${options.to}.`,
      'Run `dbward migrate status` to see the versions.',
    );
  }
  const chosen =
    options.to !== undefined
      ? applied.filter((s) => compareVersions(s.version, options.to!) > 0)
      : applied.slice(0, options.step ?? 1);
  return chosen.map((s) => {
    const file = files.find((f) => compareVersions(f.version, s.version) === 0);
    if (!file) {
      throw new MigrationPlanError(
        `Cannot roll back ${s.version}_${s.name}: its file is missing.`,
        'Restore the file from version control, then run again.',
      );
    }
    if (file.kind === 'sql' && !file.down) {
      throw new MigrationPlanError(
        `Cannot roll back ${s.version}_${s.name}: ${file.path} has no "-- migrate:down" section.`,
        'Add a "-- migrate:down" section that undoes the migration, or write a new migration that does.',
      );
    }
    return file;
  });
}
