/**
 * The jobs `dbward daemon` schedules from each target's `backups.schedule`: a backup (verified
 * when `backups.verify` is on, then retention), a verification of the newest backup, and pruning.
 * A job that fails is retried with backoff by the scheduler; when it gives up, and after every
 * success for channels with `on: 'always'`, the target's `backups.notify` channels hear of it.
 */
import { backupTarget } from '../backup/backup-target.js';
import { resolveBackupSettings } from '../backup/backup-settings.js';
import { pruneBackups } from '../backup/prune-backups.js';
import { verifyBackup } from '../backup/verify-backup.js';
import { open } from '../connect/open.js';
import { parseDuration } from '../core/duration.js';
import { DbwardError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import { sendNotifications, type BackupEvent, type NotifyChannel } from '../notify/notifier.js';
import type { ScheduledJob } from './scheduler.js';

export interface BackupJob extends ScheduledJob {
  target: Target;
  kind: 'backup' | 'verify' | 'prune';
}

/** Default retries and first backoff of scheduled jobs (the scheduler doubles it each time). */
const defaultRetries = 2;
const defaultBackoffMs = 60_000;

/** Every scheduled job of `targets`; targets without a schedule contribute none. */
export function backupJobs(targets: readonly Target[], logger: Logger): BackupJob[] {
  const jobs: BackupJob[] = [];
  for (const target of targets) {
    const schedule = target.backups?.schedule ?? {};
    const retries = schedule.retries ?? defaultRetries;
    const backoffMs =
      schedule.retryDelay === undefined
        ? defaultBackoffMs
        : parseDuration(schedule.retryDelay, `targets.${target.name}.backups.schedule.retryDelay`);
    for (const kind of ['backup', 'verify', 'prune'] as const) {
      const cron = schedule[kind];
      if (cron === undefined) continue;
      jobs.push({
        name: `${kind} ${target.name}`,
        cron,
        retries,
        backoffMs,
        target,
        kind,
        run: () => runJob(kind, target, logger),
      });
    }
  }
  return jobs;
}

/** The target's notification channels (config `backups.notify`); SMTP port 587, or 465 with `secure`. */
export function channelsOf(target: Target): NotifyChannel[] {
  return (target.backups?.notify ?? []).map((c) => {
    const channel = c as unknown as NotifyChannel;
    if (channel.type !== 'email' || channel.smtp.port !== undefined) return channel;
    return { ...channel, smtp: { ...channel.smtp, port: channel.smtp.secure ? 465 : 587 } };
  });
}

/** Tell the target's channels about an event; failures to notify are logged, never thrown. */
export async function notify(
  target: Target,
  event: Omit<BackupEvent, 'at' | 'target'>,
  logger: Logger,
): Promise<void> {
  const channels = channelsOf(target);
  if (channels.length === 0) return;
  await sendNotifications({ ...event, target: target.name, at: new Date().toISOString() }, channels, {
    logger,
  });
}

async function runJob(kind: BackupJob['kind'], target: Target, logger: Logger): Promise<void> {
  const settings = resolveBackupSettings(target);
  if (kind === 'backup') {
    const result = await backupTarget(target, settings, { logger });
    const { manifest, verification } = result;
    if (verification && !verification.ok) {
      throw new DbwardError('E_BACKUP_VERIFY_FAILED', `Backup ${manifest.id} failed verification.`, {
        hint: verification.details.join('; '),
      });
    }
    await notify(
      target,
      {
        kind,
        ok: true,
        backupId: manifest.id,
        message: `Backup ${manifest.id} of ${target.name}: ${manifest.storedBytes} bytes stored${verification ? ', verified' : ''}.`,
        details: [
          ...(verification?.details ?? []),
          ...(result.prune?.removed.map((r) => `retention removed ${r.manifest.id}: ${r.reason}`) ?? []),
        ],
      },
      logger,
    );
    return;
  }
  if (kind === 'prune') {
    const pruned = await pruneBackups(settings.storage, target.name, settings.retention, { dryRun: false });
    await notify(
      target,
      {
        kind,
        ok: true,
        message: `Retention for ${target.name}: kept ${pruned.kept.length}, removed ${pruned.removed.length}.`,
        details: pruned.removed.map((r) => `${r.manifest.id}: ${r.reason}`),
      },
      logger,
    );
    return;
  }
  const { backups } = await settings.storage.list(target.name);
  const newest = backups[0];
  if (!newest) {
    throw new DbwardError(
      'E_BACKUP_NOT_FOUND',
      `No backups of ${target.name} to verify in ${settings.storage.location}.`,
    );
  }
  const db = await open(target, { logger });
  try {
    const verification = await verifyBackup(db.connection, target, newest, {
      storage: settings.storage,
      key: settings.readKey,
      logger,
      jobs: settings.jobs,
    });
    if (!verification.ok) {
      throw new DbwardError('E_BACKUP_VERIFY_FAILED', `Backup ${newest.id} failed verification.`, {
        hint: verification.details.join('; '),
      });
    }
    await notify(
      target,
      {
        kind,
        ok: true,
        backupId: newest.id,
        message: `Backup ${newest.id} verified.`,
        details: verification.details,
      },
      logger,
    );
  } finally {
    await db.close();
  }
}
