import { open } from '../../connect/open.js';
import type { serializeError } from '../../connect/per-target.js';
import { forEachTarget } from '../../connect/per-target.js';
import { UsageError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { parseDuration } from '../../core/duration.js';
import type { Target } from '../../core/target.js';
import { severityRank, type DoctorReport, type Severity } from '../../doctor/finding.js';
import { doctor, selectRules } from '../../doctor/run-doctor.js';
import { resolveThresholds } from '../../doctor/thresholds.js';
import type { CliContext } from '../context.js';
import { renderDoctorReport } from '../render-doctor.js';

export interface DoctorFlags {
  all?: boolean;
  failOn?: string;
  only?: string[];
  skip?: string[];
  timeout?: string;
  sample?: string;
}

/**
 * `dbward doctor [target… | --all]`: every known health problem with evidence and the exact fix.
 * Targets are examined a few at a time; one that cannot be reached yields its diagnosis as a
 * critical finding while the others complete. Exit 1 when a finding reaches --fail-on.
 */
export async function doctorCommand(ctx: CliContext, names: string[], flags: DoctorFlags): Promise<number> {
  const failOn = failLevel(flags.failOn);
  const only = splitIds(flags.only);
  const skip = splitIds(flags.skip);
  selectRules({ only, skip }); // unknown check ids fail before anything connects
  const statementTimeoutMs = parseDuration(flags.timeout ?? '5s', '--timeout');
  const sampleKeys = flags.sample === undefined ? undefined : Number(flags.sample);
  if (sampleKeys !== undefined && !(Number.isInteger(sampleKeys) && sampleKeys > 0)) {
    throw new UsageError(`--sample must be a positive whole number, not "${flags.sample}".`);
  }
  const targets = await ctx.targets(names, { all: !!flags.all });
  // Config mistakes fail before anything connects, not as one target's finding.
  for (const t of targets) {
    resolveThresholds(t.doctor?.thresholds);
    selectRules({ skip: t.doctor?.skip ?? [] });
  }
  const results = await forEachTarget(
    targets,
    (target) =>
      examine(ctx, target, {
        only,
        skip,
        statementTimeoutMs,
        ...(sampleKeys !== undefined ? { sampleKeys } : {}),
      }),
    { onError: (t, err) => ctx.onTargetError(t, err) },
  );
  const reports = results.map((r, i) => (r.ok ? r.value : unreachable(targets[i]!, r.error)));
  if (ctx.out.json) ctx.out.printJson(reports);
  else ctx.out.line(renderDoctorReport(ctx.out, reports));
  const worst = Math.max(0, ...reports.flatMap((r) => r.findings.map((f) => severityRank[f.severity])));
  // A target that could not be examined at all keeps its own exit code (3: cannot connect).
  const failedCode = Math.max(0, ...results.map((r) => (r.ok ? 0 : r.error.exitCode)));
  if (failedCode > 0) return failedCode;
  return failOn !== null && worst >= severityRank[failOn] ? ExitCode.failed : ExitCode.ok;
}

async function examine(
  ctx: CliContext,
  target: Target,
  options: Parameters<typeof doctor>[2],
): Promise<DoctorReport> {
  const db = await open(target, { logger: ctx.logger });
  try {
    return await doctor(db, target, options);
  } finally {
    await db.close();
  }
}

/** A target doctor could not examine: its diagnosis, as one critical finding. */
function unreachable(target: Target, error: ReturnType<typeof serializeError>): DoctorReport {
  return {
    target: target.name,
    engine: '',
    url: target.displayUrl,
    serverVersion: null,
    findings: [
      {
        id: 'server.reachable',
        severity: 'critical',
        title: 'Cannot examine this database',
        evidence: [error.message],
        why: 'Doctor could not connect or read the server, so none of its checks ran.',
        fix: error.hint ?? null,
      },
    ],
    skipped: [],
    durationMs: 0,
    error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) },
  };
}

function failLevel(value: string | undefined): Exclude<Severity, 'ok'> | null {
  if (value === undefined) return 'critical';
  if (value === 'never') return null;
  if (value === 'warn' || value === 'warning') return 'warning';
  if (value === 'critical' || value === 'info') return value;
  throw new UsageError(`--fail-on must be info, warn, critical or never, not "${value}".`);
}

function splitIds(values: string[] | undefined): string[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}
