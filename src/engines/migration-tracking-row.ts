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

/** A tracking row as the drivers return it (dates and bigints in each driver's own type). */
export interface TrackingRow {
  version: string;
  name: string;
  checksum: string;
  applied_at: Date | string;
  duration_ms: number | string;
  applied_by: string;
  dbward_version: string;
  statements_applied: number | string;
  statements_total: number | string;
  status: string;
}

/** A driver's row as an AppliedMigration; `appliedAt` is the engine's conversion to ISO text. */
export function fromTrackingRow(
  row: TrackingRow,
  appliedAt: (value: Date | string) => string,
): AppliedMigration {
  return {
    version: row.version,
    name: row.name,
    checksum: row.checksum,
    appliedAt: appliedAt(row.applied_at),
    durationMs: Number(row.duration_ms),
    appliedBy: row.applied_by,
    dbwardVersion: row.dbward_version,
    statementsApplied: Number(row.statements_applied),
    statementsTotal: Number(row.statements_total),
    status: row.status === 'partial' ? 'partial' : 'applied',
  };
}
