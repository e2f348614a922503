/**
 * Finding the backup a command names: an id (`main-20261129T030405Z-9f2c`) or `latest`, in the
 * storage of the target it belongs to (the id says which), or in `--storage`.
 */
import { resolveBackupSettings, type ResolvedBackupSettings } from '../../backup/backup-settings.js';
import { parseBackupId, type BackupManifest } from '../../backup/manifest.js';
import { targetFromInput } from '../../config/load-config.js';
import { ConfigError, DbwardError, UsageError } from '../../core/errors.js';
import type { Target } from '../../core/target.js';
import type { CliContext } from '../context.js';
import { backupFlags } from './backup-command.js';

export interface FoundBackup {
  /** The target the backup was taken of, as configured here (its settings and connection). */
  target: Target;
  settings: ResolvedBackupSettings;
  manifest: BackupManifest;
}

export async function findBackup(
  ctx: CliContext,
  idOrLatest: string,
  flags: Parameters<typeof backupFlags>[0],
  options: { connects: boolean } = { connects: true },
): Promise<FoundBackup> {
  const parsed = idOrLatest === 'latest' ? undefined : parseBackupId(idOrLatest);
  if (idOrLatest !== 'latest' && !parsed) {
    throw new UsageError(
      `"${idOrLatest}" is not a backup id.`,
      'Ids look like main-20261129T030405Z-9f2c; `dbward backups list` shows them (or say latest).',
    );
  }
  const target = await backupTargetFor(ctx, parsed?.target, options);
  const settings = resolveBackupSettings(target, backupFlags(flags));
  const wanted = parsed?.target ?? target.name;
  const { backups } = await settings.storage.list(wanted);
  const manifest = idOrLatest === 'latest' ? backups[0] : backups.find((b) => b.id === idOrLatest);
  if (!manifest) {
    throw new DbwardError(
      'E_BACKUP_NOT_FOUND',
      idOrLatest === 'latest'
        ? `No backups of ${wanted} in ${settings.storage.location}.`
        : `No backup ${idOrLatest} in ${settings.storage.location}.`,
      { hint: `\`dbward backups list ${wanted}\` shows what is there; --storage reads another place.` },
    );
  }
  return { target, settings, manifest };
}

/**
 * The configured target for backups of `name`: --target when given, else the target of that name,
 * else the default target (a backup restored or verified by a target that was renamed).
 */
async function backupTargetFor(
  ctx: CliContext,
  name: string | undefined,
  options: { connects: boolean },
): Promise<Target> {
  if (ctx.flags.target) return (await ctx.targets([ctx.flags.target]))[0]!;
  const config = await ctx.config();
  if (name !== undefined && config.targets.some((t) => t.name === name))
    return (await ctx.targets([name]))[0]!;
  try {
    return (await ctx.targets([]))[0]!;
  } catch (err) {
    // Restoring to --to-url from --storage needs no configured database at all.
    if (options.connects || name === undefined || !(err instanceof ConfigError)) throw err;
    return targetFromInput({ name, url: 'sqlite::memory:' });
  }
}
