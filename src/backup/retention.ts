/**
 * Retention: which backups to keep and which to delete, as restic's and borg's `forget`/`prune`
 * decide it (grandfather-father-son). Pure functions, no I/O: the caller lists the storage, plans,
 * shows or applies the plan.
 *
 * For each rule, walking one target's backups newest first, a backup is kept when it is the newest
 * one of a period (a UTC day, an ISO week, a month, a year) and fewer than N periods have been
 * kept by that rule so far — so "daily 7" keeps the newest backup of each of the 7 most recent
 * days _that have a backup_, and missed days never cause older backups to be dropped. `keepLast`
 * keeps the N newest backups whatever their dates. A backup kept by several rules lists every
 * reason.
 *
 * Safety rules on top of that, because retention is the one place dbward deletes backups:
 * - a policy with nothing set (or only zeros) keeps everything, it never means "delete all";
 * - the newest backup whose verification succeeded is never removed;
 * - a backup dated after `now` (a clock that was or is wrong) is kept and not counted.
 */
import { ConfigError } from '../core/errors.js';
import { compareManifestsNewestFirst, type BackupManifest } from './manifest.js';

export interface RetentionPolicy {
  /** Keep the N newest backups. */
  keepLast?: number;
  /** Keep the newest backup of each of the N most recent UTC days that have one. */
  daily?: number;
  /** …of each of the N most recent ISO weeks (Monday to Sunday, UTC). */
  weekly?: number;
  /** …of each of the N most recent calendar months (UTC). */
  monthly?: number;
  /** …of each of the N most recent calendar years (UTC). */
  yearly?: number;
}

export interface RetentionKeep {
  manifest: BackupManifest;
  /** Why, e.g. `last 3`, `daily 2026-11-28`, `weekly 2026-W48`, `newest verified`. */
  reasons: string[];
}

export interface RetentionRemove {
  manifest: BackupManifest;
  reason: string;
}

export interface RetentionPlan {
  /** Per target, newest first. */
  keep: RetentionKeep[];
  /** Per target, newest first. */
  remove: RetentionRemove[];
}

type PeriodRule = 'daily' | 'weekly' | 'monthly' | 'yearly';

/** The rules in the order their reasons are listed. */
const periodRules: { rule: PeriodRule; period: (date: Date) => string }[] = [
  { rule: 'daily', period: utcDay },
  { rule: 'weekly', period: isoWeek },
  { rule: 'monthly', period: (d) => utcDay(d).slice(0, 7) },
  { rule: 'yearly', period: (d) => utcDay(d).slice(0, 4) },
];

const policyKeys = ['keepLast', 'daily', 'weekly', 'monthly', 'yearly'] as const;

/** `2026-11-28` */
function utcDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** `2026-W48`: the ISO 8601 week-numbering year and week of a UTC date. */
export function isoWeek(date: Date): string {
  const day = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  // The Thursday of the same Monday-to-Sunday week decides the week's year.
  const mondayBased = (new Date(day).getUTCDay() + 6) % 7;
  const thursday = new Date(day + (3 - mondayBased) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** True when the policy would keep anything at all; an empty policy keeps every backup. */
export function hasRetentionRules(policy: RetentionPolicy): boolean {
  return policyKeys.some((key) => (policy[key] ?? 0) > 0);
}

/** `last 3, daily 7, weekly 4`, or `no rules` — for messages. */
export function describeRetentionPolicy(policy: RetentionPolicy): string {
  const parts = policyKeys
    .filter((key) => (policy[key] ?? 0) > 0)
    .map((key) => `${key === 'keepLast' ? 'last' : key} ${policy[key]}`);
  return parts.length ? parts.join(', ') : 'no rules';
}

/**
 * Plan which backups to keep and which to remove. Backups of different targets are planned
 * separately (a target's backups are only ever compared with each other); the result lists each
 * target's backups newest first, targets in the order they first appear.
 */
export function planRetention(backups: BackupManifest[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const byTarget = new Map<string, BackupManifest[]>();
  for (const manifest of backups) {
    const list = byTarget.get(manifest.target) ?? [];
    list.push(manifest);
    byTarget.set(manifest.target, list);
  }
  const plan: RetentionPlan = { keep: [], remove: [] };
  for (const list of byTarget.values()) {
    const one = planTarget(list, policy, now);
    plan.keep.push(...one.keep);
    plan.remove.push(...one.remove);
  }
  return plan;
}

function planTarget(backups: BackupManifest[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const sorted = [...backups].sort(compareManifestsNewestFirst);
  const reasons = new Map<BackupManifest, string[]>(sorted.map((m) => [m, []]));
  const addReason = (m: BackupManifest, reason: string): void => {
    reasons.get(m)?.push(reason);
  };

  if (!hasRetentionRules(policy)) {
    for (const m of sorted) addReason(m, 'no retention policy set');
  } else {
    const counted: BackupManifest[] = [];
    for (const m of sorted) {
      if (Date.parse(m.startedAt) > now.getTime()) addReason(m, 'dated in the future (clock skew?)');
      else counted.push(m);
    }

    const keepLast = policy.keepLast ?? 0;
    counted.slice(0, keepLast).forEach((m) => addReason(m, `last ${keepLast}`));

    for (const { rule, period } of periodRules) {
      let left = policy[rule] ?? 0;
      let lastPeriod: string | undefined;
      for (const m of counted) {
        if (left <= 0) break;
        const p = period(new Date(m.startedAt));
        // Newest first, so the first backup met in a period is that period's newest.
        if (p === lastPeriod) continue;
        lastPeriod = p;
        left--;
        addReason(m, `${rule} ${p}`);
      }
    }
  }

  // Whatever the rules say, the newest backup known to restore is not deleted.
  const newestVerified = sorted.find((m) => m.verification?.ok === true);
  if (newestVerified) addReason(newestVerified, 'newest verified');

  const plan: RetentionPlan = { keep: [], remove: [] };
  const rules = describeRetentionPolicy(policy);
  for (const m of sorted) {
    const why = reasons.get(m) ?? [];
    const failed = m.verification?.ok === false ? ['verification failed'] : [];
    if (why.length) plan.keep.push({ manifest: m, reasons: [...why, ...failed] });
    else plan.remove.push({ manifest: m, reason: [`not kept by ${rules}`, ...failed].join('; ') });
  }
  return plan;
}

/**
 * Check a retention policy from configuration without zod (so the config schema, the CLI and the
 * library give the same messages). `where` names the place for messages, e.g.
 * `targets.main.backup.retention`. Undefined means no policy: keep everything.
 */
export function parseRetentionPolicy(input: unknown, where: string): RetentionPolicy {
  const hint =
    'Retention counts are whole numbers of 0 or more, e.g. { keepLast: 3, daily: 7, weekly: 4, monthly: 12, yearly: 2 }.';
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(`${where} must be an object of retention counts, not ${describe(input)}.`, {
      hint,
      key: where,
    });
  }
  const policy: RetentionPolicy = {};
  for (const [key, value] of Object.entries(input)) {
    if (!(policyKeys as readonly string[]).includes(key)) {
      throw new ConfigError(`${where}.${key} is not a retention rule (known: ${policyKeys.join(', ')}).`, {
        hint,
        key: `${where}.${key}`,
      });
    }
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new ConfigError(`${where}.${key} must be a whole number of 0 or more, not ${describe(value)}.`, {
        hint,
        key: `${where}.${key}`,
      });
    }
    policy[key as (typeof policyKeys)[number]] = value;
  }
  return policy;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}
