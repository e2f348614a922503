/**
 * Retention planning. Expected outcomes are computed here by other means than the implementation
 * (day indexes, week numbers counted from a known Monday, month numbers) or written out by hand,
 * so a wrong period calculation in src/backup/retention.ts cannot agree with itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBackupTimestamp, type BackupManifest } from '../../src/backup/manifest.js';
import {
  describeRetentionPolicy,
  isoWeek,
  parseRetentionPolicy,
  planRetention,
  type RetentionPlan,
  type RetentionPolicy,
} from '../../src/backup/retention.js';
import { ConfigError, DbwardError } from '../../src/core/errors.js';

const DAY = 86_400_000;
let counter = 0;

function backup(startedAt: string, options: { target?: string; verified?: boolean } = {}): BackupManifest {
  const target = options.target ?? 'main';
  const start = new Date(startedAt);
  const id = `${target}-${formatBackupTimestamp(start)}-${(counter++ % 0xffff).toString(16).padStart(4, '0')}`;
  return {
    formatVersion: 1,
    id,
    target,
    engine: 'postgres',
    serverVersion: '16.4',
    tool: { name: 'pg_dump', version: '16.4' },
    dbwardVersion: '0.1.0',
    startedAt: start.toISOString(),
    finishedAt: new Date(start.getTime() + 5000).toISOString(),
    durationMs: 5000,
    rawBytes: 1000,
    storedBytes: 200,
    sha256: 'a'.repeat(64),
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    tables: [],
    artifact: `${id}.dump.zst`,
    verification:
      options.verified === undefined
        ? null
        : { verifiedAt: start.toISOString(), ok: options.verified, details: [] },
  };
}

const keptDays = (plan: RetentionPlan): string[] =>
  plan.keep.map((k) => k.manifest.startedAt.slice(0, 10)).sort();
const keptStarts = (plan: RetentionPlan): string[] => plan.keep.map((k) => k.manifest.startedAt).sort();
const reasonsOf = (plan: RetentionPlan, startedAt: string): string[] | undefined =>
  plan.keep.find((k) => k.manifest.startedAt === new Date(startedAt).toISOString())?.reasons;

/** One backup a day at 03:00 UTC through 2026, in a shuffled order (the plan must sort). */
const year = Array.from({ length: 365 }, (_, i) =>
  backup(new Date(Date.UTC(2026, 0, 1, 3) + i * DAY).toISOString()),
);
const shuffledYear = [...year].sort((a, b) => (a.sha256 + a.id < b.sha256 + b.id ? -1 : 1)).reverse();
const endOf2026 = new Date('2027-01-01T00:00:00Z');

/**
 * Expected GFS outcome computed without ISO week or date-string logic: each backup is day index
 * i (0 = 2026-01-01); weeks are counted from Monday 2025-12-29; months and years come from the
 * numeric UTC fields. For each rule, the newest backup of the N highest period numbers is kept.
 */
function expectedKeep(policy: RetentionPolicy): Set<number> {
  const mondayRef = Date.UTC(2025, 11, 29);
  assert.equal(new Date(mondayRef).getUTCDay(), 1, 'the reference day is a Monday');
  const keep = new Set<number>();
  const indexes = year.map((_, i) => i);
  for (let i = 364; i > 364 - (policy.keepLast ?? 0) && i >= 0; i--) keep.add(i);
  const rules: [number | undefined, (i: number) => number][] = [
    [policy.daily, (i) => i],
    [policy.weekly, (i) => Math.floor((Date.UTC(2026, 0, 1) + i * DAY - mondayRef) / (7 * DAY))],
    [
      policy.monthly,
      (i) => {
        const d = new Date(Date.UTC(2026, 0, 1) + i * DAY);
        return d.getUTCFullYear() * 12 + d.getUTCMonth();
      },
    ],
    [policy.yearly, (i) => new Date(Date.UTC(2026, 0, 1) + i * DAY).getUTCFullYear()],
  ];
  for (const [count, periodOf] of rules) {
    if (!count) continue;
    const newestOfPeriod = new Map<number, number>();
    for (const i of indexes)
      newestOfPeriod.set(periodOf(i), Math.max(i, newestOfPeriod.get(periodOf(i)) ?? -1));
    const periods = [...newestOfPeriod.keys()].sort((a, b) => b - a).slice(0, count);
    for (const p of periods) keep.add(newestOfPeriod.get(p)!);
  }
  return keep;
}

describe('planRetention: a year of daily backups', () => {
  it('daily 7, weekly 4, monthly 12, yearly 2 keeps the hand-computed 20 backups', () => {
    const plan = planRetention(shuffledYear, { daily: 7, weekly: 4, monthly: 12, yearly: 2 }, endOf2026);
    // Worked out on a calendar: Dec 25–31 (daily); Sundays Dec 20 and Dec 13 close ISO weeks 51
    // and 50 (weeks 53 and 52 are already kept by daily); the last day of Jan–Nov (monthly);
    // 2026's newest is Dec 31 (yearly, there is only one year).
    const expected = [
      '2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31', '2026-06-30',
      '2026-07-31', '2026-08-31', '2026-09-30', '2026-10-31', '2026-11-30',
      '2026-12-13', '2026-12-20',
      '2026-12-25', '2026-12-26', '2026-12-27', '2026-12-28', '2026-12-29', '2026-12-30', '2026-12-31',
    ]; // prettier-ignore
    assert.deepEqual(keptDays(plan), expected);
    assert.equal(plan.remove.length, 365 - 20);
    assert.deepEqual(reasonsOf(plan, '2026-12-31T03:00:00Z'), [
      'daily 2026-12-31',
      'weekly 2026-W53',
      'monthly 2026-12',
      'yearly 2026',
    ]);
    assert.deepEqual(reasonsOf(plan, '2026-12-27T03:00:00Z'), ['daily 2026-12-27', 'weekly 2026-W52']);
    assert.deepEqual(reasonsOf(plan, '2026-12-13T03:00:00Z'), ['weekly 2026-W50']);
    assert.deepEqual(reasonsOf(plan, '2026-02-28T03:00:00Z'), ['monthly 2026-02']);
    const removed = plan.remove.find((r) => r.manifest.startedAt.startsWith('2026-12-24'));
    assert.equal(removed?.reason, 'not kept by daily 7, weekly 4, monthly 12, yearly 2');
  });

  for (const policy of [
    { keepLast: 5 },
    { daily: 30 },
    { weekly: 10 },
    { weekly: 60 },
    { monthly: 6 },
    { yearly: 3 },
    { keepLast: 2, daily: 3, weekly: 5, monthly: 7 },
    { daily: 400, weekly: 1 },
    { keepLast: 1, monthly: 1, yearly: 1 },
  ] satisfies RetentionPolicy[]) {
    it(`matches the independently computed outcome for ${describeRetentionPolicy(policy)}`, () => {
      const plan = planRetention(shuffledYear, policy, endOf2026);
      const expected = [...expectedKeep(policy)].sort((a, b) => a - b).map((i) => year[i]!.startedAt);
      assert.deepEqual(keptStarts(plan), expected);
      assert.equal(plan.keep.length + plan.remove.length, 365);
    });
  }

  it('lists keep and remove newest first', () => {
    const plan = planRetention(shuffledYear, { weekly: 3 }, endOf2026);
    const times = plan.keep.map((k) => Date.parse(k.manifest.startedAt));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
    const removedTimes = plan.remove.map((r) => Date.parse(r.manifest.startedAt));
    assert.deepEqual(
      removedTimes,
      [...removedTimes].sort((a, b) => b - a),
    );
  });
});

describe('planRetention: rules and edge cases', () => {
  const now = new Date('2026-12-01T00:00:00Z');

  it('an empty list plans nothing', () => {
    assert.deepEqual(planRetention([], { daily: 7 }, now), { keep: [], remove: [] });
  });

  it('a policy with nothing set, or only zeros, keeps everything', () => {
    const backups = [backup('2026-11-01T00:00:00Z'), backup('2026-11-02T00:00:00Z')];
    for (const policy of [{}, { keepLast: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0 }]) {
      const plan = planRetention(backups, policy, now);
      assert.equal(plan.remove.length, 0);
      assert.deepEqual(
        plan.keep.map((k) => k.reasons),
        [['no retention policy set'], ['no retention policy set']],
      );
    }
  });

  it('several backups on the same day: the newest stands for the day, keepLast counts each', () => {
    const backups = [
      backup('2026-11-28T01:00:00Z'),
      backup('2026-11-28T12:00:00Z'),
      backup('2026-11-28T23:59:59Z'),
      backup('2026-11-27T23:00:00Z'),
    ];
    const daily = planRetention(backups, { daily: 2 }, now);
    assert.deepEqual(keptStarts(daily), ['2026-11-27T23:00:00.000Z', '2026-11-28T23:59:59.000Z']);
    assert.deepEqual(
      daily.remove.map((r) => r.manifest.startedAt),
      ['2026-11-28T12:00:00.000Z', '2026-11-28T01:00:00.000Z'],
    );
    assert.equal(daily.remove[0]?.reason, 'not kept by daily 2');

    const last = planRetention(backups, { keepLast: 2, daily: 1 }, now);
    assert.deepEqual(reasonsOf(last, '2026-11-28T23:59:59Z'), ['last 2', 'daily 2026-11-28']);
    assert.deepEqual(reasonsOf(last, '2026-11-28T12:00:00Z'), ['last 2']);
    assert.equal(last.remove.length, 2);
  });

  it('counts days that have backups, so missed days do not shorten what is kept', () => {
    const backups = ['01', '02', '03', '10', '11'].map((d) => backup(`2026-11-${d}T03:00:00Z`));
    const plan = planRetention(backups, { daily: 3 }, now);
    assert.deepEqual(keptDays(plan), ['2026-11-03', '2026-11-10', '2026-11-11']);
  });

  it('never removes the newest backup that verified ok', () => {
    const backups = [
      backup('2026-11-30T03:00:00Z'), // not verified yet
      backup('2026-11-29T03:00:00Z', { verified: false }),
      backup('2026-11-28T03:00:00Z', { verified: true }),
      backup('2026-11-27T03:00:00Z', { verified: true }),
    ];
    const plan = planRetention(backups, { keepLast: 1 }, now);
    assert.deepEqual(reasonsOf(plan, '2026-11-30T03:00:00Z'), ['last 1']);
    assert.deepEqual(reasonsOf(plan, '2026-11-28T03:00:00Z'), ['newest verified']);
    assert.deepEqual(
      plan.remove.map((r) => [r.manifest.startedAt.slice(0, 10), r.reason]),
      [
        ['2026-11-29', 'not kept by last 1; verification failed'],
        ['2026-11-27', 'not kept by last 1'],
      ],
    );
  });

  it('a kept backup that is also the newest verified says both', () => {
    const plan = planRetention([backup('2026-11-30T03:00:00Z', { verified: true })], { daily: 1 }, now);
    assert.deepEqual(plan.keep[0]?.reasons, ['daily 2026-11-30', 'newest verified']);
  });

  it('failed verifications count for periods like any backup, and say so', () => {
    const backups = [
      backup('2026-11-30T03:00:00Z', { verified: false }),
      backup('2026-11-30T01:00:00Z', { verified: true }),
      backup('2026-11-29T03:00:00Z', { verified: false }),
    ];
    const plan = planRetention(backups, { daily: 2 }, now);
    assert.deepEqual(reasonsOf(plan, '2026-11-30T03:00:00Z'), ['daily 2026-11-30', 'verification failed']);
    assert.deepEqual(reasonsOf(plan, '2026-11-29T03:00:00Z'), ['daily 2026-11-29', 'verification failed']);
    assert.deepEqual(reasonsOf(plan, '2026-11-30T01:00:00Z'), ['newest verified']);
    assert.equal(plan.remove.length, 0);
  });

  it('with nothing verified, the rules alone decide', () => {
    const backups = ['26', '27', '28', '29', '30'].map((d) => backup(`2026-11-${d}T03:00:00Z`));
    const plan = planRetention(backups, { keepLast: 2 }, now);
    assert.deepEqual(keptDays(plan), ['2026-11-29', '2026-11-30']);
    assert.ok(plan.keep.every((k) => !k.reasons.includes('newest verified')));
    assert.equal(plan.remove.length, 3);
  });

  it('plans each target on its own', () => {
    const backups = [
      backup('2026-11-30T03:00:00Z', { target: 'main' }),
      backup('2026-11-20T03:00:00Z', { target: 'cache' }),
      backup('2026-11-29T03:00:00Z', { target: 'main' }),
      backup('2026-11-19T03:00:00Z', { target: 'cache', verified: true }),
      backup('2026-11-18T03:00:00Z', { target: 'cache' }),
    ];
    const plan = planRetention(backups, { keepLast: 1 }, now);
    assert.deepEqual(
      plan.keep.map((k) => [k.manifest.target, k.manifest.startedAt.slice(0, 10), k.reasons.join(', ')]),
      [
        ['main', '2026-11-30', 'last 1'],
        ['cache', '2026-11-20', 'last 1'],
        ['cache', '2026-11-19', 'newest verified'],
      ],
    );
    assert.deepEqual(
      plan.remove.map((r) => [r.manifest.target, r.manifest.startedAt.slice(0, 10)]),
      [
        ['main', '2026-11-29'],
        ['cache', '2026-11-18'],
      ],
    );
  });

  it('keeps a backup dated after now without letting it use up a slot', () => {
    const backups = [
      backup('2027-05-01T00:00:00Z'),
      backup('2026-11-30T03:00:00Z'),
      backup('2026-11-29T03:00:00Z'),
    ];
    const plan = planRetention(backups, { keepLast: 1 }, now);
    assert.deepEqual(reasonsOf(plan, '2027-05-01T00:00:00Z'), ['dated in the future (clock skew?)']);
    assert.deepEqual(reasonsOf(plan, '2026-11-30T03:00:00Z'), ['last 1']);
    assert.deepEqual(
      plan.remove.map((r) => r.manifest.startedAt.slice(0, 10)),
      ['2026-11-29'],
    );
  });

  it('weeks run Monday to Sunday and cross the new year as ISO weeks do', () => {
    const sunMon = [backup('2026-11-29T23:00:00Z'), backup('2026-11-30T00:30:00Z')];
    assert.equal(planRetention(sunMon, { weekly: 2 }, now).remove.length, 0);
    const newYear = [backup('2026-12-31T03:00:00Z'), backup('2027-01-01T03:00:00Z')];
    const plan = planRetention(newYear, { weekly: 2 }, new Date('2027-02-01T00:00:00Z'));
    assert.deepEqual(keptDays(plan), ['2027-01-01']); // both in 2026-W53
    assert.deepEqual(plan.keep[0]?.reasons, ['weekly 2026-W53']);
  });

  it('days are UTC days whatever the local time zone and its DST change', () => {
    const saved = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      // In Berlin both are on 29 March 2026 (00:30 CET and 02:30 CEST, across the DST change);
      // in UTC they are on two days, so daily 2 keeps both.
      assert.equal(new Date('2026-03-28T23:30:00Z').getDate(), 29, 'the local time zone is in effect');
      const backups = [backup('2026-03-28T23:30:00Z'), backup('2026-03-29T00:30:00Z')];
      const plan = planRetention(backups, { daily: 2 }, new Date('2026-04-01T00:00:00Z'));
      assert.equal(plan.remove.length, 0);
      assert.deepEqual(reasonsOf(plan, '2026-03-28T23:30:00Z'), ['daily 2026-03-28']);
      const monthly = planRetention(
        [backup('2026-03-31T22:30:00Z'), backup('2026-03-31T23:30:00Z')],
        { monthly: 2 },
        new Date('2026-05-01T00:00:00Z'),
      );
      assert.deepEqual(
        monthly.keep.map((k) => k.reasons),
        [['monthly 2026-03']],
      ); // 01:30 on 1 April in Berlin
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });
});

describe('isoWeek', () => {
  it('matches ISO 8601 week numbers checked against a calendar', () => {
    const known: [string, string][] = [
      ['2026-11-28', '2026-W48'],
      ['2026-11-30', '2026-W49'],
      ['2026-12-31', '2026-W53'],
      ['2027-01-01', '2026-W53'],
      ['2024-12-30', '2025-W01'],
      ['2021-01-03', '2020-W53'],
      ['2025-12-29', '2026-W01'],
    ];
    for (const [day, week] of known) assert.equal(isoWeek(new Date(`${day}T12:00:00Z`)), week, day);
  });
});

describe('parseRetentionPolicy', () => {
  const where = 'targets.main.backup.retention';

  it('accepts whole numbers and nothing at all', () => {
    assert.deepEqual(parseRetentionPolicy({ keepLast: 3, daily: 7, weekly: 0 }, where), {
      keepLast: 3,
      daily: 7,
      weekly: 0,
    });
    assert.deepEqual(parseRetentionPolicy(undefined, where), {});
    assert.deepEqual(parseRetentionPolicy({}, where), {});
  });

  const bad: [unknown, RegExp][] = [
    [
      { daily: -1 },
      /^targets\.main\.backup\.retention\.daily must be a whole number of 0 or more, not -1\.$/,
    ],
    [{ weekly: 1.5 }, /\.weekly must be a whole number of 0 or more, not 1\.5\./],
    [{ monthly: '12' }, /\.monthly must be a whole number of 0 or more, not "12"\./],
    [{ yearly: Number.NaN }, /\.yearly .* not NaN\./],
    [{ keepLast: null }, /\.keepLast .* not null\./],
    [{ dayly: 7 }, /\.dayly is not a retention rule \(known: keepLast, daily, weekly, monthly, yearly\)\./],
    [[7], /^targets\.main\.backup\.retention must be an object of retention counts, not a list\.$/],
    ['7d', /must be an object of retention counts, not "7d"\./],
  ];
  for (const [input, message] of bad) {
    it(`refuses ${JSON.stringify(input) ?? String(input)}`, () => {
      assert.throws(
        () => parseRetentionPolicy(input, where),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError && err instanceof DbwardError);
          assert.equal(err.code, 'E_CONFIG');
          assert.match(err.message, message);
          assert.match(err.hint ?? '', /whole numbers of 0 or more/);
          return true;
        },
      );
    });
  }
});
