/**
 * The tracking table's columns, in one order every engine's migration store uses, and a row's
 * values in that order — so the stores differ only in their SQL dialect.
 */
import type { AppliedMigration } from './contract.js';

export const trackingColumns = [
  'version',
  'name',
  'checksum',
  'applied_at',
  'duration_ms',
  'applied_by',
  'dbward_version',
  'statements_applied',
  'statements_total',
  'status',
] as const;

/** A row's values in {@link trackingColumns} order; `appliedAt` as the engine wants it stored. */
export function trackingValues(row: AppliedMigration, appliedAt: unknown = row.appliedAt): unknown[] {
  return [
    row.version,
    row.name,
    row.checksum,
    appliedAt,
    row.durationMs,
    row.appliedBy,
    row.dbwardVersion,
    row.statementsApplied,
    row.statementsTotal,
    row.status,
  ];
}
