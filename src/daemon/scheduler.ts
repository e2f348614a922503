/**
 * The daemon's scheduler: runs jobs (backups, verifications, pruning) on cron schedules with
 * croner. What it promises on top of a timer:
 *
 * - every cron expression and time zone is checked when the scheduler is created, so a typo is a
 *   configuration error at start-up, not a silent job that never runs;
 * - a job never runs twice at once: a tick that comes while the previous run (including its
 *   retries) is still going is skipped and reported;
 * - a failed run is retried up to `retries` times after `backoffMs`, doubling, capped; when the
 *   retries are used up a `failed` event is reported (the daemon turns it into notifications);
 * - `stop()` cancels the timers, aborts the running jobs' signals (and any backoff wait) and
 *   resolves once every run has returned.
 *
 * Jobs report through `onEvent`; the scheduler itself never throws after creation.
 */
import { Cron } from 'croner';
import { ConfigError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { backoffDelay, waitUnlessAborted } from './backoff.js';

export interface ScheduledJob {
  /** Unique; used in events and messages. */
  name: string;
  /** Five fields (minute hour day-of-month month day-of-week), or six with seconds first; `@daily` etc. */
  cron: string;
  /** The work. Should stop promptly when `signal` aborts (the scheduler is stopping). */
  run: (signal: AbortSignal) => Promise<void>;
  /** Further attempts after a failure (default 0). */
  retries?: number;
  /** Wait before the first retry; doubles for each further one (default 60 s). */
  backoffMs?: number;
  /** IANA time zone the cron expression is read in (default: the scheduler's, else local time). */
  timezone?: string;
}

export type SchedulerEvent =
  | { type: 'started'; job: string; attempt: number; at: Date }
  | { type: 'succeeded'; job: string; attempts: number; durationMs: number }
  | { type: 'retrying'; job: string; attempt: number; error: string; delayMs: number }
  | { type: 'failed'; job: string; attempts: number; error: string; cause: unknown }
  | { type: 'skipped'; job: string; reason: 'still running'; at: Date }
  | { type: 'aborted'; job: string; attempts: number };

export interface SchedulerOptions {
  onEvent?: (event: SchedulerEvent) => void;
  /** The longest wait between retries (default 15 minutes). */
  maxBackoffMs?: number;
  /** Default time zone for jobs without one. */
  timezone?: string;
  /** Create without starting (to validate and show `nextRuns`); call `start()` to run. */
  paused?: boolean;
}

export interface JobSchedule {
  job: string;
  cron: string;
  timezone: string | undefined;
  next: Date[];
}

export interface Scheduler {
  start(): void;
  /** Cancel timers, abort running jobs and wait until they have returned. Idempotent. */
  stop(): Promise<void>;
  /** The next `count` run times of each job, after `from` (default now). */
  nextRuns(count?: number, from?: Date): JobSchedule[];
  /** True while the job is running or waiting to retry. */
  isRunning(name: string): boolean;
}

const defaultBackoffMs = 60_000;
const defaultMaxBackoffMs = 15 * 60_000;
const cronHint =
  'Cron expressions have 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first; ' +
  'e.g. "0 3 * * *" runs at 03:00 every day, "30 2 * * 0" at 02:30 on Sundays.';

interface JobState {
  job: ScheduledJob;
  timezone: string | undefined;
  cron: Cron;
  controller?: AbortController;
  running?: Promise<void>;
}

export function createScheduler(jobs: ScheduledJob[], options: SchedulerOptions = {}): Scheduler {
  const maxBackoffMs = options.maxBackoffMs ?? defaultMaxBackoffMs;
  const emit = (event: SchedulerEvent): void => {
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's bug must not stop the schedule.
    }
  };
  let stopped = false;

  validateJobs(jobs, options.timezone);
  const states: JobState[] = jobs.map((job) => {
    const timezone = job.timezone ?? options.timezone;
    const state = { job, timezone } as JobState;
    state.cron = new Cron(job.cron, { timezone, mode: '5-or-6-parts', paused: true }, () => {
      void tick(state);
    });
    return state;
  });

  async function tick(state: JobState): Promise<void> {
    if (stopped) return;
    if (state.running) {
      emit({ type: 'skipped', job: state.job.name, reason: 'still running', at: new Date() });
      return;
    }
    const controller = new AbortController();
    state.controller = controller;
    state.running = runWithRetries(state.job, controller.signal);
    try {
      await state.running;
    } finally {
      state.running = undefined;
      state.controller = undefined;
    }
  }

  async function runWithRetries(job: ScheduledJob, signal: AbortSignal): Promise<void> {
    const retries = job.retries ?? 0;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      emit({ type: 'started', job: job.name, attempt, at: new Date() });
      try {
        await job.run(signal);
        if (signal.aborted) emit({ type: 'aborted', job: job.name, attempts: attempt });
        else emit({ type: 'succeeded', job: job.name, attempts: attempt, durationMs: Date.now() - started });
        return;
      } catch (err) {
        if (signal.aborted) {
          emit({ type: 'aborted', job: job.name, attempts: attempt });
          return;
        }
        const error = describeError(err);
        if (attempt > retries) {
          emit({ type: 'failed', job: job.name, attempts: attempt, error, cause: err });
          return;
        }
        const delayMs = backoffDelay(attempt, job.backoffMs ?? defaultBackoffMs, maxBackoffMs);
        emit({ type: 'retrying', job: job.name, attempt, error, delayMs });
        if (!(await waitUnlessAborted(delayMs, signal))) {
          emit({ type: 'aborted', job: job.name, attempts: attempt });
          return;
        }
      }
    }
  }

  const scheduler: Scheduler = {
    start() {
      if (stopped) return;
      for (const state of states) state.cron.resume();
    },
    async stop() {
      stopped = true;
      for (const state of states) {
        state.cron.stop();
        state.controller?.abort(new Error('the scheduler is stopping'));
      }
      await Promise.all(states.map((state) => state.running));
    },
    nextRuns(count = 1, from = new Date()) {
      return states.map((state) => ({
        job: state.job.name,
        cron: state.job.cron,
        timezone: state.timezone,
        next: stopped ? [] : state.cron.nextRuns(count, from),
      }));
    },
    isRunning(name) {
      return states.some((state) => state.job.name === name && state.running !== undefined);
    },
  };
  if (!options.paused) scheduler.start();
  return scheduler;
}

/** Check names, cron expressions, time zones and retry settings; throws a ConfigError naming the job. */
export function validateJobs(jobs: ScheduledJob[], defaultTimezone?: string): void {
  const names = new Set<string>();
  for (const job of jobs) {
    if (!job.name) throw new ConfigError('A scheduled job has no name.', { hint: 'Give every job a name.' });
    if (names.has(job.name)) {
      throw new ConfigError(`Two scheduled jobs are named "${job.name}".`, {
        hint: 'Job names must be unique.',
      });
    }
    names.add(job.name);

    const timezone = job.timezone ?? defaultTimezone;
    if (timezone !== undefined && !isTimeZone(timezone)) {
      throw new ConfigError(`Job "${job.name}" has an unknown time zone "${timezone}".`, {
        hint: 'Use an IANA time zone name such as "UTC", "Europe/Berlin" or "America/New_York".',
      });
    }
    try {
      new Cron(job.cron, { timezone, mode: '5-or-6-parts', paused: true }).stop();
    } catch (err) {
      const why = describeError(err).replace(/^Cron\w*:\s*/, '');
      throw new ConfigError(`Job "${job.name}" has an invalid cron expression "${job.cron}": ${why}.`, {
        hint: cronHint,
        cause: err,
      });
    }

    for (const [key, value] of [
      ['retries', job.retries],
      ['backoffMs', job.backoffMs],
    ] as const) {
      if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
        throw new ConfigError(
          `Job "${job.name}": ${key} must be a whole number of 0 or more, not ${value}.`,
          {
            hint: 'For example retries: 3 with backoffMs: 60000 retries after 1, 2 and 4 minutes.',
          },
        );
      }
    }
  }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function describeError(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err)).replace(/\.$/, '');
}
