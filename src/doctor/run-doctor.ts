/**
 * `doctor` as a library call: collect the facts with the engine's collector, judge them with
 * every rule, and return the findings worst first. Read-only from start to end.
 */
import { performance } from 'node:perf_hooks';
import type { Database } from '../connect/database-handle.js';
import { DbwardError, NotAvailableError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { Target } from '../core/target.js';
import type { EngineId } from '../engines/contract.js';
import { engineById } from '../engines/registry.js';
import type { DoctorFacts } from './facts.js';
import { severityRank, type DoctorReport, type Finding, type SkippedCheck } from './finding.js';
import type { DoctorFixes, Rule } from './rule.js';
import { commonRules } from './rules/common-rules.js';
import { mysqlRules } from './rules/mysql-rules.js';
import { postgresRules } from './rules/postgres-rules.js';
import { redisRules } from './rules/redis-rules.js';
import { sqliteRules } from './rules/sqlite-rules.js';
import { resolveThresholds } from './thresholds.js';

/** Every rule doctor knows, in report order for equal severities. */
export const allRules: Rule[] = [
  ...commonRules,
  ...postgresRules,
  ...mysqlRules,
  ...sqliteRules,
  ...redisRules,
];

/** Options of one doctor run; the target's config `doctor` block applies first, these over it. */
export interface DoctorOptions {
  /** Run only these checks (rule ids, or prefixes ending in `.` such as `indexes.`). */
  only?: string[];
  /** Leave these checks out (same forms as `only`). */
  skip?: string[];
  /** Threshold overrides (docs/doctor.md lists the keys). */
  thresholds?: Record<string, number>;
  /** Per-query timeout for the collectors. Default 5 s. */
  statementTimeoutMs?: number;
  /** Redis: keys to sample. Default 10,000. */
  sampleKeys?: number;
}

/** Examine one open database. Throws NotAvailableError for engines without a collector. */
export async function doctor(
  db: Database,
  target: Target,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const started = performance.now();
  // The target's config (doctor: { thresholds, skip }) first; the call's options over it.
  const rules = selectRules({
    ...(options.only ? { only: options.only } : {}),
    skip: [...(target.doctor?.skip ?? []), ...(options.skip ?? [])],
  });
  const engine = engineById(db.engine.id as EngineId);
  const load = engine.roles.doctorFacts;
  if (!load) {
    throw new NotAvailableError(`Doctor checks for ${engine.displayName} are not available yet.`, undefined, {
      engine: engine.id,
      target: target.name,
    });
  }
  const thresholds = resolveThresholds({ ...target.doctor?.thresholds, ...options.thresholds });
  const role = await load();
  const facts = await role.collect(db.connection, {
    target,
    spec: engine.parseUrl(target.url),
    statementTimeoutMs: options.statementTimeoutMs ?? 5_000,
    sampleKeys: options.sampleKeys ?? 10_000,
    thresholds,
  });
  const { findings, skipped } = judge(facts, rules, { thresholds, fixes: role.fixes });
  return {
    target: target.name,
    engine: engine.id,
    url: target.displayUrl,
    serverVersion: facts.server.version,
    findings,
    skipped,
    durationMs: Math.round(performance.now() - started),
  };
}

/**
 * Run `rules` over `facts` (pure): the rules' findings, worst first, and an `ok` entry for each
 * check that ran and found nothing. Checks the collector skipped are reported as skipped.
 */
export function judge(
  facts: DoctorFacts,
  rules: readonly Rule[],
  context: { thresholds: ReturnType<typeof resolveThresholds>; fixes: DoctorFixes },
): { findings: Finding[]; skipped: SkippedCheck[] } {
  const ids = new Set(rules.map((r) => r.id));
  const skipped = facts.skipped.filter((s) => ids.has(s.id));
  const skippedIds = new Set(skipped.map((s) => s.id));
  const findings: Finding[] = [];
  for (const rule of rules) {
    if (skippedIds.has(rule.id)) continue;
    const found = rule.check(facts, context);
    if (found === null) continue;
    if (found.length === 0) {
      findings.push({ id: rule.id, severity: 'ok', title: rule.title, evidence: [], why: '', fix: null });
    } else {
      for (const f of found) findings.push({ id: rule.id, ...f });
    }
  }
  // Stable: equal severities keep rule order.
  findings.sort((a, b) => severityRank[b.severity] - severityRank[a.severity]);
  return { findings, skipped };
}

function matches(id: string, patterns: string[]): boolean {
  return patterns.some((p) => (p.endsWith('.') ? id.startsWith(p) : id === p));
}

/** The rules `only` and `skip` leave; an id that names no check is an error listing them. */
export function selectRules(options: Pick<DoctorOptions, 'only' | 'skip'>): Rule[] {
  for (const pattern of [...(options.only ?? []), ...(options.skip ?? [])]) {
    if (!allRules.some((r) => matches(r.id, [pattern]))) {
      throw new DbwardError('E_DOCTOR_CHECK', `No doctor check is called "${pattern}".`, {
        exitCode: ExitCode.usage,
        hint: `Checks: ${allRules.map((r) => r.id).join(', ')} (a prefix such as "indexes." selects a group).`,
      });
    }
  }
  return allRules.filter(
    (r) =>
      (options.only === undefined || options.only.length === 0 || matches(r.id, options.only)) &&
      !matches(r.id, options.skip ?? []),
  );
}
