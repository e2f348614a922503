import { UsageError } from './errors.js';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parse a duration as users write it on command lines and in config: `500ms`, `10s`, `2m`,
 * `1h`, or a bare number of milliseconds. Returns milliseconds.
 */
export function parseDuration(input: string | number, what = 'duration'): number {
  if (typeof input === 'number' && Number.isFinite(input) && input >= 0) return input;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(String(input));
  if (!match) {
    throw new UsageError(
      `Invalid ${what} "${String(input)}".`,
      'Write a number with a unit: 500ms, 10s, 2m or 1h.',
    );
  }
  return Math.round(Number(match[1]) * (units[(match[2] ?? 'ms').toLowerCase()] ?? 1));
}

/** Human form of a duration in ms: `850 ms`, `12.3 s`, `4m 05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes}m ${String(seconds).padStart(2, '0')}s`;
}
