/**
 * `dbward daemon [target…]`: run the backup, verification and pruning schedules from the config
 * (`backups.schedule`) until SIGINT or SIGTERM. Never two runs of the same job at once; failed
 * jobs are retried with backoff, then reported to the target's notification channels.
 */
import { backupJobs, notify } from '../../daemon/backup-jobs.js';
import { createScheduler, type SchedulerEvent } from '../../daemon/scheduler.js';
import { ConfigError } from '../../core/errors.js';
import { formatDuration } from '../../core/duration.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { CliContext } from '../context.js';

export interface DaemonFlags {
  all?: boolean;
}

export async function daemonCommand(ctx: CliContext, names: string[], flags: DaemonFlags): Promise<number> {
  const config = await ctx.config();
  const targets =
    names.length === 0 && !flags.all ? config.targets : await ctx.targets(names, { all: !!flags.all });
  const jobs = backupJobs(targets, ctx.logger);
  if (jobs.length === 0) {
    throw new ConfigError('No schedules: dbward daemon has nothing to run.', {
      hint: "Add backups.schedule to the config, e.g. backups: { schedule: { backup: '0 3 * * *', prune: '30 3 * * *' } }",
    });
  }
  const byName = new Map(jobs.map((j) => [j.name, j]));
  // Failure notifications in flight; a stop waits for them, so none is lost to a SIGTERM.
  const sending = new Set<Promise<void>>();
  const log = (text: string): void => ctx.out.note(`${new Date().toISOString()} ${text}`);
  const onEvent = (event: SchedulerEvent): void => {
    switch (event.type) {
      case 'started':
        log(`${event.job}: started${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`);
        break;
      case 'succeeded':
        log(`${event.job}: done in ${formatDuration(event.durationMs)}`);
        break;
      case 'retrying':
        log(`${event.job}: failed (${event.error}); retrying in ${formatDuration(event.delayMs)}`);
        break;
      case 'skipped':
        log(`${event.job}: skipped, the previous run is still going`);
        break;
      case 'aborted':
        log(`${event.job}: stopped`);
        break;
      case 'failed': {
        log(`${event.job}: FAILED after ${event.attempts} attempt(s): ${event.error}`);
        const job = byName.get(event.job);
        if (job) {
          sending.add(
            notify(
              job.target,
              {
                kind: job.kind,
                ok: false,
                message: `${event.job} failed after ${event.attempts} attempt(s): ${event.error}`,
              },
              ctx.logger,
            ),
          );
        }
        break;
      }
    }
  };
  const scheduler = createScheduler(jobs, { onEvent, paused: true });
  for (const s of scheduler.nextRuns(1)) {
    log(
      `scheduled ${s.job} (${s.cron}${s.timezone ? `, ${s.timezone}` : ''}): next ${s.next[0]?.toISOString() ?? 'never'}`,
    );
  }
  scheduler.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log(`${signal}: stopping (running jobs are asked to stop)…`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      void scheduler
        .stop()
        .then(() => Promise.allSettled([...sending]))
        .then(() => resolve());
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  return ExitCode.ok;
}
