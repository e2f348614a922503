/**
 * The scheduler with real croner timers on every-second schedules (`* * * * * *`). The timing
 * tests run concurrently so the file takes a few seconds; each stops its scheduler when done.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ConfigError, DbwardError } from '../../src/core/errors.js';
import { backoffDelay } from '../../src/daemon/backoff.js';
import { createScheduler, type SchedulerEvent, type ScheduledJob } from '../../src/daemon/scheduler.js';

const everySecond = '* * * * * *';

/** Collects events and lets a test wait for one. */
function recorder() {
  const events: SchedulerEvent[] = [];
  const waiters: { match: (e: SchedulerEvent) => boolean; resolve: (e: SchedulerEvent) => void }[] = [];
  return {
    events,
    onEvent(event: SchedulerEvent) {
      events.push({ ...event });
      for (const w of [...waiters]) {
        if (w.match(event)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(event);
        }
      }
    },
    /** Resolves with the first event (past or future) matching, or rejects after `ms`. */
    async waitFor(match: (e: SchedulerEvent) => boolean, ms = 5000): Promise<SchedulerEvent> {
      const seen = events.find(match);
      if (seen) return seen;
      return Promise.race([
        new Promise<SchedulerEvent>((resolve) => waiters.push({ match, resolve })),
        sleep(ms).then(() => {
          throw new Error(`no matching event within ${ms} ms; got ${JSON.stringify(events)}`);
        }),
      ]);
    },
  };
}

const types = (events: SchedulerEvent[], job?: string) =>
  events.filter((e) => !job || e.job === job).map((e) => e.type);

describe('scheduler timing (real croner, every second)', { concurrency: true }, () => {
  it('never runs a job twice at once: an overlapping tick is skipped and reported', async () => {
    const rec = recorder();
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    const scheduler = createScheduler(
      [
        {
          name: 'slow',
          cron: everySecond,
          run: async () => {
            runs++;
            maxConcurrent = Math.max(maxConcurrent, ++concurrent);
            await sleep(1600); // longer than the tick interval
            concurrent--;
          },
        },
      ],
      { onEvent: rec.onEvent },
    );
    try {
      const skipped = await rec.waitFor((e) => e.type === 'skipped', 4000);
      assert.deepEqual(
        { ...skipped, at: undefined },
        { type: 'skipped', job: 'slow', reason: 'still running', at: undefined },
      );
      assert.equal(scheduler.isRunning('slow'), true);
    } finally {
      await scheduler.stop();
    }
    assert.equal(maxConcurrent, 1);
    assert.ok(runs >= 1);
    assert.equal(scheduler.isRunning('slow'), false);
  });

  it('retries with doubling backoff, then succeeds', async () => {
    const rec = recorder();
    let attempts = 0;
    const attemptTimes: number[] = [];
    const scheduler = createScheduler(
      [
        {
          name: 'flaky',
          cron: everySecond,
          retries: 3,
          backoffMs: 100,
          run: () => {
            attemptTimes.push(Date.now());
            attempts++;
            return attempts <= 2
              ? Promise.reject(new Error(`attempt ${attempts} failed`))
              : Promise.resolve();
          },
        },
      ],
      { onEvent: rec.onEvent },
    );
    try {
      await rec.waitFor((e) => e.type === 'succeeded');
    } finally {
      await scheduler.stop();
    }
    const firstRun = rec.events.slice(0, 6).map((e) => {
      const { at: _at, durationMs: _d, ...rest } = e as SchedulerEvent & { at?: Date; durationMs?: number };
      return rest;
    });
    assert.deepEqual(firstRun, [
      { type: 'started', job: 'flaky', attempt: 1 },
      { type: 'retrying', job: 'flaky', attempt: 1, error: 'attempt 1 failed', delayMs: 100 },
      { type: 'started', job: 'flaky', attempt: 2 },
      { type: 'retrying', job: 'flaky', attempt: 2, error: 'attempt 2 failed', delayMs: 200 },
      { type: 'started', job: 'flaky', attempt: 3 },
      { type: 'succeeded', job: 'flaky', attempts: 3 },
    ]);
    assert.ok(attemptTimes[1]! - attemptTimes[0]! >= 95, 'waited about 100 ms before the first retry');
    assert.ok(attemptTimes[2]! - attemptTimes[1]! >= 195, 'waited about 200 ms before the second retry');
  });

  it('reports failure once the retries are used up, with the backoff capped', async () => {
    const rec = recorder();
    let attempts = 0;
    const scheduler = createScheduler(
      [
        {
          name: 'broken',
          cron: everySecond,
          retries: 3,
          backoffMs: 40,
          run: () => {
            attempts++;
            return Promise.reject(new DbwardError('E_BACKUP_DUMP', 'pg_dump exited with code 1.'));
          },
        },
      ],
      { onEvent: rec.onEvent, maxBackoffMs: 60 },
    );
    let failed: SchedulerEvent;
    try {
      failed = await rec.waitFor((e) => e.type === 'failed');
    } finally {
      await scheduler.stop();
    }
    assert.equal(failed.type, 'failed');
    if (failed.type !== 'failed') return;
    assert.equal(failed.job, 'broken');
    assert.equal(failed.attempts, 4);
    assert.equal(failed.error, 'pg_dump exited with code 1');
    assert.ok(failed.cause instanceof DbwardError);
    const delays = rec.events.flatMap((e) => (e.type === 'retrying' ? [e.delayMs] : []));
    assert.deepEqual(delays.slice(0, 3), [40, 60, 60]);
    assert.deepEqual(types(rec.events).slice(0, 8), [
      'started', 'retrying', 'started', 'retrying', 'started', 'retrying', 'started', 'failed',
    ]); // prettier-ignore
    assert.ok(attempts >= 4);
  });

  it('stop() aborts a running job, waits for it to return, and no tick runs afterwards', async () => {
    const rec = recorder();
    let cleanedUp = false;
    let seenSignal: AbortSignal | undefined;
    const scheduler = createScheduler(
      [
        {
          name: 'long',
          cron: everySecond,
          run: async (signal) => {
            seenSignal = signal;
            await new Promise<void>((resolve) =>
              signal.addEventListener('abort', () => resolve(), { once: true }),
            );
            await sleep(150); // cleanup after the abort, which stop() must wait for
            cleanedUp = true;
            throw new Error('interrupted');
          },
        },
      ],
      { onEvent: rec.onEvent },
    );
    await rec.waitFor((e) => e.type === 'started');
    const stopping = Date.now();
    await scheduler.stop();
    assert.ok(Date.now() - stopping >= 140, 'stop waited for the cleanup');
    assert.equal(cleanedUp, true);
    assert.equal(seenSignal?.aborted, true);
    assert.deepEqual(types(rec.events), ['started', 'aborted']);
    assert.deepEqual(scheduler.nextRuns(), [
      { job: 'long', cron: everySecond, timezone: undefined, next: [] },
    ]);
    await sleep(1200);
    assert.deepEqual(types(rec.events), ['started', 'aborted'], 'no run after stop');
  });

  it('stop() cuts a backoff wait short', async () => {
    const rec = recorder();
    const scheduler = createScheduler(
      [
        {
          name: 'waiting',
          cron: everySecond,
          retries: 5,
          backoffMs: 60_000,
          run: () => Promise.reject(new Error('no')),
        },
      ],
      { onEvent: rec.onEvent },
    );
    await rec.waitFor((e) => e.type === 'retrying');
    const stopping = Date.now();
    await scheduler.stop();
    assert.ok(Date.now() - stopping < 1000);
    assert.deepEqual(types(rec.events), ['started', 'retrying', 'aborted']);
  });

  it('a paused scheduler runs nothing until started', async () => {
    const rec = recorder();
    let runs = 0;
    const job: ScheduledJob = { name: 'p', cron: everySecond, run: () => Promise.resolve(void runs++) };
    const scheduler = createScheduler([job], { onEvent: rec.onEvent, paused: true });
    try {
      await sleep(1100);
      assert.equal(runs, 0);
      scheduler.start();
      await rec.waitFor((e) => e.type === 'succeeded', 2500);
    } finally {
      await scheduler.stop();
    }
    assert.ok(runs >= 1);
  });
});

describe('scheduler configuration', () => {
  const noop = () => Promise.resolve();

  it('refuses an invalid cron expression, naming the job and the expression', () => {
    for (const [cron, why] of [
      ['61 * * * *', /Invalid value for minute: 61/],
      ['0 3 * *', /exactly five, six, or seven|5 or 6 parts/],
      ['* * * * * * *', /5 or 6 parts/],
      ['every day', /invalid configuration format/],
    ] as const) {
      assert.throws(
        () => createScheduler([{ name: 'nightly-main', cron, run: noop }], { paused: true }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.code, 'E_CONFIG');
          assert.ok(
            err.message.startsWith(`Job "nightly-main" has an invalid cron expression "${cron}": `),
            err.message,
          );
          assert.match(err.message, why);
          assert.match(err.hint ?? '', /"0 3 \* \* \*" runs at 03:00 every day/);
          return true;
        },
      );
    }
  });

  it('refuses unknown time zones, duplicate names and bad retry settings', () => {
    const cases: [ScheduledJob[], RegExp][] = [
      [[{ name: 'a', cron: '0 3 * * *', timezone: 'Mars/Olympus', run: noop }], /^Job "a" has an unknown time zone "Mars\/Olympus"\.$/],
      [[{ name: 'a', cron: '0 3 * * *', run: noop }, { name: 'a', cron: '0 4 * * *', run: noop }], /^Two scheduled jobs are named "a"\.$/],
      [[{ name: 'a', cron: '0 3 * * *', retries: -1, run: noop }], /^Job "a": retries must be a whole number of 0 or more, not -1\.$/],
      [[{ name: 'a', cron: '0 3 * * *', backoffMs: 1.5, run: noop }], /^Job "a": backoffMs must be a whole number/],
    ]; // prettier-ignore
    for (const [jobs, message] of cases) {
      assert.throws(
        () => createScheduler(jobs, { paused: true }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });

  it('lists the next runs of each job in its time zone', async () => {
    const scheduler = createScheduler(
      [
        { name: 'nightly', cron: '0 3 * * *', timezone: 'UTC', run: noop },
        { name: 'berlin', cron: '30 2 * * 0', run: noop },
      ],
      { paused: true, timezone: 'Europe/Berlin' },
    );
    try {
      const from = new Date('2026-11-28T12:00:00Z'); // a Saturday
      assert.deepEqual(
        scheduler.nextRuns(2, from).map((s) => [s.job, s.timezone, s.next.map((d) => d.toISOString())]),
        [
          ['nightly', 'UTC', ['2026-11-29T03:00:00.000Z', '2026-11-30T03:00:00.000Z']],
          // 02:30 on Sundays in Berlin (CET, UTC+1)
          ['berlin', 'Europe/Berlin', ['2026-11-29T01:30:00.000Z', '2026-12-06T01:30:00.000Z']],
        ],
      );
    } finally {
      await scheduler.stop();
    }
  });

  it('computes backoff as base × 2^(n-1), capped', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffDelay(n, 1000, 5000)),
      [1000, 2000, 4000, 5000, 5000],
    );
  });
});
