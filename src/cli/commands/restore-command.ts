/**
 * `dbward restore <id | latest> [--to target | --to-url URL] [--tables a,b] [--create] [--force]
 * [-j N]`: check the whole artifact, refuse a non-empty destination without --force (listing what
 * would be replaced), then load it with the engine's restore tool, showing progress.
 */
import { resolveBackupSettings } from '../../backup/backup-settings.js';
import { restoreBackup } from '../../backup/restore-backup.js';
import { backupRoleFor, withTempDir } from '../../backup/take-backup.js';
import { artifactFormat } from '../../backup/artifact-name.js';
import { keyFor } from '../../backup/read-artifact.js';
import { targetFromInput } from '../../config/load-config.js';
import { open } from '../../connect/open.js';
import { formatDuration } from '../../core/duration.js';
import { UsageError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { Target } from '../../core/target.js';
import { engineForUrl } from '../../engines/registry.js';
import type { CliContext } from '../context.js';
import { formatBytes, paint } from '../output.js';
import { progressLine } from '../progress-line.js';
import { backupFlags } from './backup-command.js';
import { findBackup } from './find-backup.js';

export interface RestoreFlags {
  to?: string;
  toUrl?: string;
  tables?: string[];
  create?: boolean;
  force?: boolean;
  jobs?: string;
  storage?: string;
  keyFile?: string;
}

export async function restoreCommand(ctx: CliContext, id: string, flags: RestoreFlags): Promise<number> {
  if (flags.to !== undefined && flags.toUrl !== undefined) {
    throw new UsageError('Pass --to or --to-url, not both.');
  }
  const found = await findBackup(ctx, id, flags, { connects: flags.toUrl === undefined });
  const { manifest } = found;
  const destination = withCreateMode(await destinationOf(ctx, found.target, flags), !!flags.create);
  keyFor(manifest, found.settings.readKey); // a missing or wrong key fails before anything connects
  const settings = resolveBackupSettings(destination, backupFlags(flags));
  const tables = flags.tables
    ?.flatMap((t) => t.split(','))
    .map((t) => t.trim())
    .filter(Boolean);

  if (flags.create) await createDatabase(ctx, destination, manifest);
  const progress = progressLine(ctx.out);
  let phase = '';
  const started = Date.now();
  const db = await open(destination, { logger: ctx.logger });
  try {
    const result = await restoreBackup(db.connection, destination, manifest, {
      storage: found.settings.storage,
      key: found.settings.readKey,
      logger: ctx.logger,
      force: !!flags.force,
      jobs: settings.jobs,
      ...(tables && tables.length > 0 ? { tables } : {}),
      onPhase: (p) => {
        progress.clear();
        phase = p;
        ctx.out.note(
          p === 'check'
            ? `Checking ${manifest.id} (size, SHA-256, encryption) before touching ${destination.name}…`
            : `Restoring ${manifest.id} into ${destination.displayUrl}…`,
        );
      },
      onProgress: (rawBytes) => {
        if (phase !== 'load') return;
        const pct =
          manifest.rawBytes > 0 ? Math.min(100, Math.floor((rawBytes / manifest.rawBytes) * 100)) : 0;
        progress.update(
          `${destination.name}: ${pct}%  ${formatBytes(rawBytes)} of ${formatBytes(manifest.rawBytes)}`,
        );
      },
    });
    progress.clear();
    const took = Date.now() - started;
    if (ctx.out.json) {
      ctx.out.printJson({
        id: manifest.id,
        to: destination.name,
        replaced: result.replaced,
        rawBytes: result.rawBytes,
        durationMs: took,
        ...(tables ? { tables } : {}),
      });
    } else {
      ctx.out.line(
        `${paint(ctx.out, 'green', '✔')} restored ${manifest.id} into ${destination.name} (${formatBytes(result.rawBytes)} in ${formatDuration(took)})`,
      );
      if (result.replaced.length > 0)
        ctx.out.line(`  replaced what was there: ${result.replaced.length} object(s)`);
    }
    return ExitCode.ok;
  } finally {
    progress.clear();
    await db.close();
  }
}

/** --to-url, --to, or the target the backup was taken of. */
async function destinationOf(ctx: CliContext, backedUp: Target, flags: RestoreFlags): Promise<Target> {
  if (flags.toUrl !== undefined) {
    const target = targetFromInput({ url: flags.toUrl, name: 'restore-target' });
    return { ...target, ...(backedUp.backups ? { backups: backedUp.backups } : {}) };
  }
  if (flags.to !== undefined) return (await ctx.targets([flags.to]))[0]!;
  return backedUp;
}

/** An embedded database (a file) is created by opening it with `mode=rwc` under --create. */
function withCreateMode(target: Target, create: boolean): Target {
  if (!create || !engineForUrl(target.url).capabilities.isEmbedded) return target;
  const url = `${target.url}${target.url.includes('?') ? '&' : '?'}mode=rwc`;
  return {
    ...target,
    url,
    displayUrl: `${target.displayUrl}${target.displayUrl.includes('?') ? '&' : '?'}mode=rwc`,
  };
}

/** --create: make the destination database first, through the server's maintenance database. */
async function createDatabase(
  ctx: CliContext,
  destination: Target,
  manifest: { id: string; artifact: string },
): Promise<void> {
  const engine = engineForUrl(destination.url);
  const role = await backupRoleFor(engine);
  if (!role.createDatabase) return; // embedded engines create the file on restore
  await withTempDir('create', (tempDir) =>
    role.createDatabase!({
      target: destination,
      spec: engine.parseUrl(destination.url),
      logger: ctx.logger,
      tempDir,
      extension: artifactFormat(manifest).extension,
      jobs: 1,
    }),
  );
}
