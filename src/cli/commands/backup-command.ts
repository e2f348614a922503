/**
 * `dbward backup [target…] [--verify]`: take a backup of each target in turn (dumps are heavy;
 * running them one after another keeps the load predictable), verify it when asked, then apply
 * retention. Exit 0 when every backup (and verification) succeeded, else the most severe failure.
 */
import { backupTarget, type BackupTargetResult } from '../../backup/backup-target.js';
import { resolveBackupSettings, type BackupFlags } from '../../backup/backup-settings.js';
import { serializeError, type TargetResult } from '../../connect/per-target.js';
import { formatDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { CliContext } from '../context.js';
import { worstExitCode } from '../exit-status.js';
import { formatBytes, paint } from '../output.js';
import { progressLine } from '../progress-line.js';

export interface BackupCommandFlags {
  all?: boolean;
  verify?: boolean;
  storage?: string;
  keyFile?: string;
  encrypt?: boolean;
  level?: string;
  jobs?: string;
  prune?: boolean;
}

export async function backupCommand(
  ctx: CliContext,
  names: string[],
  flags: BackupCommandFlags,
): Promise<number> {
  const settingsFlags = backupFlags(flags);
  const targets = await ctx.targets(names, { all: !!flags.all });
  // Settings (storage, key) are checked for every target before any backup starts.
  const settings = targets.map((t) => resolveBackupSettings(t, settingsFlags));
  const progress = progressLine(ctx.out);
  const results: TargetResult<BackupTargetResult>[] = [];
  for (const [i, target] of targets.entries()) {
    const started = Date.now();
    try {
      const value = await backupTarget(target, settings[i]!, {
        logger: ctx.logger,
        ...(flags.verify !== undefined ? { verify: flags.verify } : {}),
        ...(flags.prune === false ? { prune: false } : {}),
        onPhase: (phase) => {
          progress.clear();
          if (phase === 'verify') ctx.out.note(`${target.name}: verifying…`);
        },
        onProgress: ({ rawBytes, storedBytes }) => {
          const seconds = (Date.now() - started) / 1000;
          // A tool writing straight into zstd: only the stored bytes are known until the end.
          const rate = seconds > 0 ? `${formatBytes((rawBytes ?? storedBytes) / seconds)}/s` : '';
          const dumped = rawBytes === undefined ? '' : `${formatBytes(rawBytes)} dumped → `;
          progress.update(`${target.name}: ${dumped}${formatBytes(storedBytes)} stored  ${rate}`);
        },
      });
      results.push({ target: target.name, ok: true, value });
    } catch (err) {
      ctx.onTargetError(target, err);
      results.push({ target: target.name, ok: false, error: serializeError(err) });
    } finally {
      progress.clear();
    }
    const last = results.at(-1)!;
    if (!ctx.out.json) printResult(ctx, last);
  }
  if (ctx.out.json) ctx.out.printJson(results.map(jsonResult));
  const worst = worstExitCode(results);
  const unverified = results.some((r) => r.ok && r.value.verification && !r.value.verification.ok);
  return worst === ExitCode.ok && unverified ? ExitCode.failed : worst;
}

/** Parse the shared backup flags (--level, --jobs) into settings overrides. */
export function backupFlags(flags: {
  storage?: string;
  keyFile?: string;
  encrypt?: boolean;
  level?: string;
  jobs?: string;
}): BackupFlags {
  const out: BackupFlags = {};
  if (flags.storage !== undefined) out.storage = flags.storage;
  if (flags.keyFile !== undefined) out.keyFile = flags.keyFile;
  if (flags.encrypt === false) out.encrypt = false;
  if (flags.level !== undefined) out.level = wholeNumber(flags.level, '--level', 1, 19);
  if (flags.jobs !== undefined) out.jobs = wholeNumber(flags.jobs, '--jobs', 1, 64);
  return out;
}

function wholeNumber(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${text}".`);
  }
  return n;
}

function printResult(ctx: CliContext, r: TargetResult<BackupTargetResult>): void {
  const { out } = ctx;
  if (!r.ok) {
    out.line(`${paint(out, 'red', '✖')} ${r.target}: ${r.error.message}`);
    if (r.error.hint) out.line(`  hint: ${r.error.hint}`);
    return;
  }
  const { manifest: m, verification, cleaned, prune } = r.value;
  const verifiedBad = verification !== null && !verification.ok;
  const mark = verifiedBad ? paint(out, 'red', '✖') : paint(out, 'green', '✔');
  out.line(`${mark} ${r.target}: ${m.id}  (${m.tool.name} ${m.tool.version}, server ${m.serverVersion})`);
  const encryption = m.encryption ? `encrypted, key id ${m.encryption.keyId}` : 'not encrypted';
  out.line(
    `  ${m.tables.length} tables, ${formatBytes(m.rawBytes)} dumped → ${formatBytes(m.storedBytes)} stored (zstd ${m.compression.level}, ${encryption}) in ${formatDuration(m.durationMs)}`,
  );
  if (cleaned.length > 0) out.line(`  removed ${cleaned.length} leftover file(s) of interrupted backups`);
  if (verification) {
    const head = verification.ok ? paint(out, 'green', 'verified') : paint(out, 'red', 'verification FAILED');
    out.line(`  ${head}: ${verification.details.at(-1) ?? ''}`);
    if (!verification.ok) for (const d of verification.details) out.line(`    ${d}`);
  }
  if (prune && prune.removed.length > 0) {
    out.line(
      `  retention removed ${prune.removed.length}: ${prune.removed.map((x) => x.manifest.id).join(', ')}`,
    );
  }
}

function jsonResult(r: TargetResult<BackupTargetResult>): unknown {
  if (!r.ok) return r;
  const { manifest, verification, cleaned, prune } = r.value;
  return {
    target: r.target,
    ok: verification === null || verification.ok,
    manifest,
    cleaned,
    pruned: prune ? prune.removed.map((x) => ({ id: x.manifest.id, reason: x.reason })) : [],
  };
}
