/**
 * Every threshold doctor judges by, with its default. Each rule file declares its own; this file
 * merges them so config can override any of them per target (`doctor: { thresholds: { … } }`)
 * and docs/doctor.md can list them. Keys are `<area>.<name>`; values are plain numbers (seconds,
 * percents 0–100, bytes or counts, as the name says).
 */
import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { commonThresholds } from './rules/common-rules.js';
import { mysqlThresholds } from './rules/mysql-rules.js';
import { postgresThresholds } from './rules/postgres-rules.js';
import { redisThresholds } from './rules/redis-rules.js';
import { sqliteThresholds } from './rules/sqlite-rules.js';

export const defaultThresholds = {
  ...commonThresholds,
  ...postgresThresholds,
  ...mysqlThresholds,
  ...sqliteThresholds,
  ...redisThresholds,
};

export type Thresholds = typeof defaultThresholds;

/** Defaults with `overrides` applied; an unknown key is an error naming the known ones. */
export function resolveThresholds(overrides: Record<string, number> = {}): Thresholds {
  const known = Object.keys(defaultThresholds);
  for (const [key, value] of Object.entries(overrides)) {
    if (!known.includes(key)) {
      throw new DbwardError('E_DOCTOR_THRESHOLD', `Unknown doctor threshold "${key}".`, {
        exitCode: ExitCode.usage,
        hint: `Known thresholds (docs/doctor.md): ${known.join(', ')}.`,
      });
    }
    if (!Number.isFinite(value)) {
      throw new DbwardError('E_DOCTOR_THRESHOLD', `Doctor threshold "${key}" must be a number.`, {
        exitCode: ExitCode.usage,
      });
    }
  }
  return { ...defaultThresholds, ...overrides } as Thresholds;
}
