import path from 'node:path';
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
  refuseInsideSquashedRange(status, files);
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

/**
 * A squashed baseline replaces migrations `from`..`to`. A database that ran `to` (the baseline
 * counts as applied there) or none of them (it runs the baseline) is fine; one that ran only some
 * is stuck in between: the baseline would recreate what it already has, and the migrations that
 * would finish the range are gone. Refused, naming where the database is.
 */
function refuseInsideSquashedRange(
  status: readonly MigrationStatusEntry[],
  files: readonly MigrationFile[],
): void {
  for (const baseline of files) {
    if (!baseline.squashed) continue;
    const { from, to } = baseline.squashed;
    const own = status.find((s) => compareVersions(s.version, baseline.version) === 0);
    // Applied (as the baseline, or as the last migration it replaced): past the range. A partial
    // row under the baseline's own name is the baseline itself, resumable like any migration;
    // under another name it is the replaced migration, which can no longer be finished.
    const notThrough =
      own?.state === 'pending' ||
      own?.state === 'out-of-order' ||
      (own?.state === 'partial' && own.appliedAs !== undefined);
    if (!own || !notThrough) continue;
    const reached = status.filter(
      (s) =>
        s.appliedAt !== null && compareVersions(from, s.version) <= 0 && compareVersions(s.version, to) <= 0,
    );
    const at = reached.at(-1);
    if (!at) continue;
    const where =
      at === own ? `partway through ${to}_${own.appliedAs ?? own.name}` : `at ${at.version}_${at.name}`;
    throw new MigrationPlanError(
      `This database is ${where}, inside the squashed range ${from}..${to} (${path.basename(baseline.path)}): the migrations that would bring it to ${to} were replaced by the baseline.`,
      `Check out the old migrations (from version control, before the squash) and apply up to ${to} first (\`dbward migrate up --to ${to}\`); then the baseline counts as applied here and later migrations run as usual.`,
    );
  }
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
    if (!file && s.state === 'squashed') {
      const baseline = files.find(
        (f) =>
          f.squashed &&
          compareVersions(f.squashed.from, s.version) <= 0 &&
          compareVersions(s.version, f.version) < 0,
      );
      throw new MigrationPlanError(
        `Cannot roll back ${s.version}_${s.name}: it was squashed into ${baseline ? path.basename(baseline.path) : 'a baseline'}, and its file is gone.`,
        'Roll back with the old migrations checked out from version control (before the squash), or write a new migration that undoes the change.',
      );
    }
    if (!file) {
      throw new MigrationPlanError(
        `Cannot roll back ${s.version}_${s.name}: its file is missing.`,
        'Restore the file from version control, then run again.',
      );
    }
    if (file.kind === 'sql' && !file.down && file.squashed) {
      throw new MigrationPlanError(
        `Cannot roll back ${s.version}_${s.name}: ${file.path} is a squashed baseline (it replaces ${file.squashed.from}..${file.squashed.to}) and has no "-- migrate:down" section.`,
        'A baseline is not rolled back. Write a new migration that undoes what you need, or restore a backup.',
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
