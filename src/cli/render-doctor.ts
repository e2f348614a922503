import type { DoctorReport, Finding, Severity } from '../doctor/finding.js';
import { paint, type Output, type Style } from './output.js';

const label: Record<Severity, [string, Style]> = {
  critical: ['CRITICAL', 'red'],
  warning: ['WARNING ', 'yellow'],
  info: ['info    ', 'cyan'],
  ok: ['ok      ', 'green'],
};

/**
 * The terminal report: per target, problems worst first, each with its evidence, why and fix;
 * passed checks collapse into one line (all listed with --verbose is left to --json).
 */
export function renderDoctorReport(out: Output, reports: DoctorReport[]): string {
  const lines: string[] = [];
  for (const report of reports) {
    const problems = report.findings.filter((f) => f.severity !== 'ok');
    const passed = report.findings.filter((f) => f.severity === 'ok');
    const version = report.serverVersion ? ` ${report.serverVersion}` : '';
    lines.push(
      paint(out, 'bold', `${report.target}`) +
        paint(out, 'dim', `  ${report.engine}${version}  ${report.url}  (${report.durationMs} ms)`),
    );
    for (const f of problems) lines.push(...renderFinding(out, f));
    if (report.skipped.length > 0) {
      lines.push(paint(out, 'dim', `  skipped ${report.skipped.length} check(s):`));
      for (const s of report.skipped) {
        lines.push(
          paint(out, 'dim', `    ${s.id}: ${s.reason}${s.enableWith ? ` (enable: ${s.enableWith})` : ''}`),
        );
      }
    }
    const counts = (['critical', 'warning', 'info'] as const)
      .map((s) => [s, problems.filter((f) => f.severity === s).length] as const)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${s}`);
    const summary = [...counts, `${passed.length} check(s) passed`].join(', ');
    lines.push(
      problems.some((f) => f.severity === 'critical' || f.severity === 'warning')
        ? `  ${summary}`
        : paint(out, 'green', `  ${summary}`),
    );
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

function renderFinding(out: Output, f: Finding): string[] {
  const [text, style] = label[f.severity];
  const lines = [`  ${paint(out, style, text)} ${f.title}  ${paint(out, 'dim', f.id)}`];
  for (const e of f.evidence) lines.push(`           ${e}`);
  if (f.why) lines.push(paint(out, 'dim', `           why: ${f.why}`));
  if (f.fix) {
    const [first, ...rest] = f.fix.split('\n');
    lines.push(`           fix: ${first}`);
    for (const r of rest) lines.push(`                ${r}`);
  }
  return lines;
}
