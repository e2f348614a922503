/**
 * `dbward backups list [target]` and `dbward backups prune [target] [--dry-run]`. Listing reads
 * the manifests in storage and nothing else: storage is the source of truth.
 */
import { resolveBackupSettings, type ResolvedBackupSettings } from '../../backup/backup-settings.js';
import { generateBackupKey } from '../../backup/backup-key.js';
import type { BackupManifest } from '../../backup/manifest.js';
import { pruneBackups } from '../../backup/prune-backups.js';
import { formatDuration } from '../../core/duration.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { Target } from '../../core/target.js';
import { openStorage } from '../../storage/open-storage.js';
import type { BackupStorage, StorageProblem } from '../../storage/storage.js';
import type { CliContext } from '../context.js';
import { formatBytes, paint, table } from '../output.js';
import { backupFlags } from './backup-command.js';

export interface BackupsFlags {
  all?: boolean;
  storage?: string;
  dryRun?: boolean;
}

interface Place {
  storage: BackupStorage;
  /** Only this target's backups; undefined = all in the storage. */
  target: string | undefined;
  settings?: ResolvedBackupSettings;
}

/**
 * Where to look: `--storage` alone needs no config at all (every backup in it, or the named
 * target's); otherwise each selected target's configured storage.
 */
async function places(ctx: CliContext, names: string[], flags: BackupsFlags): Promise<Place[]> {
  if (flags.storage !== undefined && names.length <= 1 && !flags.all) {
    return [{ storage: openStorage(flags.storage), target: names[0] }];
  }
  const config = await ctx.config();
  const targets: Target[] =
    names.length === 0 && !ctx.flags.target ? config.targets : await ctx.targets(names, { all: !!flags.all });
  return targets.map((t) => {
    const settings = resolveBackupSettings(t, backupFlags(flags));
    return { storage: settings.storage, target: t.name, settings };
  });
}

export async function backupsListCommand(
  ctx: CliContext,
  names: string[],
  flags: BackupsFlags,
): Promise<number> {
  const found: BackupManifest[] = [];
  const problems: StorageProblem[] = [];
  for (const place of await places(ctx, names, flags)) {
    const listed = await place.storage.list(place.target);
    found.push(...listed.backups);
    problems.push(...listed.problems.map((p) => ({ ...p, path: `${place.storage.location}: ${p.path}` })));
  }
  if (ctx.out.json) {
    ctx.out.printJson({ backups: found, problems });
    return ExitCode.ok;
  }
  if (found.length === 0) ctx.out.line('No backups.');
  else {
    ctx.out.line(
      table(
        ['ID', 'ENGINE', 'STORED', 'RAW', 'TABLES', 'ENCRYPTED', 'TOOK', 'VERIFIED'],
        found.map((m) => [
          m.id,
          m.engine,
          formatBytes(m.storedBytes),
          formatBytes(m.rawBytes),
          m.tables.length,
          m.encryption ? `key ${m.encryption.keyId.slice(0, 8)}` : 'no',
          formatDuration(m.durationMs),
          verifiedText(ctx, m),
        ]),
      ),
    );
  }
  for (const p of problems) ctx.out.note(`${paint(ctx.out, 'yellow', 'warning')}: ${p.path}: ${p.message}`);
  return ExitCode.ok;
}

function verifiedText(ctx: CliContext, m: BackupManifest): string {
  const v = m.verification;
  if (!v) return '-';
  const when = v.verifiedAt.slice(0, 16).replace('T', ' ');
  return v.ok ? paint(ctx.out, 'green', `ok ${when}`) : paint(ctx.out, 'red', `FAILED ${when}`);
}

export async function backupsPruneCommand(
  ctx: CliContext,
  names: string[],
  flags: BackupsFlags,
): Promise<number> {
  const targets: Target[] = await ctx.targets(names, { all: !!flags.all });
  const results = [];
  for (const target of targets) {
    const settings = resolveBackupSettings(target, backupFlags(flags));
    const result = await pruneBackups(settings.storage, target.name, settings.retention, {
      dryRun: !!flags.dryRun,
    });
    results.push({ target: target.name, result });
  }
  if (ctx.out.json) {
    ctx.out.printJson(
      results.map(({ target, result }) => ({
        target,
        dryRun: result.dryRun,
        kept: result.kept.map((k) => ({ id: k.manifest.id, reasons: k.reasons })),
        removed: result.removed.map((r) => ({ id: r.manifest.id, reason: r.reason })),
      })),
    );
    return ExitCode.ok;
  }
  for (const { target, result } of results) {
    const verb = result.dryRun ? 'would remove' : 'removed';
    ctx.out.line(`${target}: keep ${result.kept.length}, ${verb} ${result.removed.length}`);
    for (const k of result.kept)
      ctx.out.line(`  ${'keep'.padEnd(8)}${k.manifest.id}  ${k.reasons.join(', ')}`);
    for (const r of result.removed) {
      ctx.out.line(`  ${(result.dryRun ? 'prune' : 'removed').padEnd(8)}${r.manifest.id}  ${r.reason}`);
    }
  }
  return ExitCode.ok;
}

/** `dbward backup keygen`: a new random key, to be stored as DBWARD_BACKUP_KEY or in a 0600 file. */
export function backupKeygenCommand(ctx: CliContext): number {
  ctx.out.line(generateBackupKey());
  ctx.out.note(
    'Keep this key safe and somewhere other than the backups: without it they cannot be restored. Store it as DBWARD_BACKUP_KEY, or in a file with mode 0600 (backups.keyFile / --key-file).',
  );
  return ExitCode.ok;
}
