/**
 * What `dbward doctor` reports. A finding is one problem (or one passed check) on one target,
 * worded for a person: the evidence (numbers, object names), why it matters, and the exact fix.
 * `--json` prints these objects as they are, so their shape is a stable interface.
 */

export type Severity = 'ok' | 'info' | 'warning' | 'critical';

/** Worst last: `severityRank[a] > severityRank[b]` means a is worse. */
export const severityRank: Record<Severity, number> = { ok: 0, info: 1, warning: 2, critical: 3 };

export interface Finding {
  /** Stable id, e.g. `pg.sequence-overflow`; `--only` / `--skip` and config use it. */
  id: string;
  severity: Severity;
  /** One line: what is wrong (or, for `ok`, what was checked). */
  title: string;
  /** The numbers and object names that show it, one fact per line. Empty for `ok`. */
  evidence: string[];
  /** Why it matters, in a sentence or two. */
  why: string;
  /** The exact SQL or command that fixes it (safe variants first), or null when none applies. */
  fix: string | null;
}

/** A check that could not run, and what would let it run (e.g. the grant it needs). */
export interface SkippedCheck {
  id: string;
  reason: string;
  /** e.g. `GRANT pg_monitor TO app;` */
  enableWith?: string;
}

export interface DoctorReport {
  target: string;
  engine: string;
  /** Redacted URL. */
  url: string;
  serverVersion: string | null;
  /** Every finding, worst first; passed checks appear as `ok`. */
  findings: Finding[];
  skipped: SkippedCheck[];
  durationMs: number;
  /** Set when the target could not be examined at all (unreachable, wrong password). */
  error?: { code: string; message: string; hint?: string };
}
