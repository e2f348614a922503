import type { DoctorFacts, ForeignKeyFact, IndexFact, SessionFact } from './facts.js';
import type { Finding, Severity } from './finding.js';
import type { Thresholds } from './thresholds.js';

/**
 * The SQL or commands a fix needs, in the engine's own dialect: engines provide these (with their
 * collector), so rules stay engine-neutral and still print the exact statement to run. Safe
 * variants where the engine has them (PostgreSQL CONCURRENTLY, MySQL ALGORITHM=INPLACE).
 */
export interface DoctorFixes {
  dropIndex(index: IndexFact): string;
  /** An index supporting a foreign key (its columns, in order). */
  createIndexFor(fk: ForeignKeyFact): string;
  /** End a session's current statement (keeping the session), e.g. pg_cancel_backend. */
  cancel(session: SessionFact): string;
  /** End the whole session (rolling back its transaction). */
  terminate(session: SessionFact): string;
}

export interface RuleContext {
  thresholds: Thresholds;
  fixes: DoctorFixes;
}

/**
 * One check: a pure function from facts to findings. It returns null when its facts were not
 * collected (the check does not apply to this engine, or the collector skipped it), an empty
 * list when everything is fine (doctor then reports the check as `ok`), or its findings.
 */
export interface Rule {
  /** Stable id, `<area>.<check>`: `indexes.duplicate`, `pg.wraparound`, `redis.maxmemory`. */
  id: string;
  /** What it checks, for `ok` lines and docs/doctor.md: "Duplicate and redundant indexes". */
  title: string;
  check(facts: DoctorFacts, context: RuleContext): Omit<Finding, 'id'>[] | null;
}

/** A finding without its id (the runner adds the rule's). */
export function finding(
  severity: Exclude<Severity, 'ok'>,
  title: string,
  evidence: string[],
  why: string,
  fix: string | null,
): Omit<Finding, 'id'> {
  return { severity, title, evidence, why, fix };
}

/** `1,234,567` — numbers in evidence read better grouped. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `12.3 MB`, in the binary units the rest of dbward's output uses (1 kB = 1024 B). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** `3 h 05 min`, `42 s`. */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800)
    return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, '0')} min`;
  return `${Math.round(s / 86400)} days`;
}

/** `45.2 %` */
export function formatPercent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)} %`;
}
