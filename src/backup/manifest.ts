/**
 * The backup manifest: the JSON document written next to every artifact, last, once the backup is
 * known to be good. Storage is the source of truth — a backup exists exactly when its manifest
 * does — so the manifest carries everything needed to list, check and restore the backup without
 * dbward's own state: engine and versions, timings, sizes, the stored artifact's SHA-256, how it
 * was compressed and encrypted (never the key), and the tables with their row counts.
 *
 * Backup ids are `<target>-<UTC YYYYMMDDTHHMMSSZ>-<4 hex>`: for one target they sort by time.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DbwardError } from '../core/errors.js';

export const manifestFormatVersion = 1;

export interface BackupEncryption {
  /** The container format, e.g. `dbward-enc-v1`. */
  scheme: string;
  /** The AEAD, e.g. `AES-256-GCM`. */
  cipher: string;
  /** Plaintext bytes per authenticated chunk. */
  chunkSize: number;
  /** How the key was derived, e.g. `HKDF-SHA256`. */
  kdf: string;
  /** Identifies the key (its key id, a keyed fingerprint), never the key itself. */
  keyId: string;
  /**
   * The artifact's header, hex (no secret: format, chunk size, random salt and nonce prefix, key
   * id). Every chunk's tag covers it, so a restore that authenticates every chunk and finds this
   * header has proven the artifact without a SHA-256 pass. Absent in manifests before it existed.
   */
  header?: string;
}

export interface BackupVerification {
  /** ISO 8601 UTC. */
  verifiedAt: string;
  ok: boolean;
  /** Human-readable lines: what was checked and what was found. */
  details: string[];
}

export interface BackupManifest {
  formatVersion: 1;
  /** `<target>-<YYYYMMDDTHHMMSSZ>-<4 hex>`. */
  id: string;
  /** The target's name from the config. */
  target: string;
  /** Engine id (`postgres`, `mysql`, `sqlite`, `redis`, …). */
  engine: string;
  serverVersion: string;
  /** The dump tool, e.g. `{ name: 'pg_dump', version: '16.4' }`. */
  tool: { name: string; version: string };
  dbwardVersion: string;
  /** ISO 8601 UTC. */
  startedAt: string;
  /** ISO 8601 UTC. */
  finishedAt: string;
  durationMs: number;
  /** Bytes the dump tool produced (before compression). Never 0: an empty dump is not a backup. */
  rawBytes: number;
  /** Bytes stored (after compression and encryption). */
  storedBytes: number;
  /** SHA-256 of the stored artifact, lowercase hex. */
  sha256: string;
  compression: { algorithm: 'zstd'; level: number };
  encryption: BackupEncryption | null;
  tables: { name: string; rows: number }[];
  /** The artifact's file name in the target's directory: `<id>.<ext>`. */
  artifact: string;
  /** The last verification, if any (storages keep it in a separate file and merge it in on list). */
  verification: BackupVerification | null;
}

const targetNamePattern = /^[A-Za-z0-9_.-]+$/;
const timestampPattern = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const idPattern = /^(.+)-(\d{8}T\d{6}Z)-([0-9a-f]{4})$/;
const extensionPattern = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)*$/;
/** Names storages use for their own files, which an artifact must not collide with. */
const reservedSuffixes = ['.manifest.json', '.verified.json'];

/** True for target names that are safe as one path segment (the config's rule, minus `.`/`..`). */
export function isValidTargetName(target: string): boolean {
  return targetNamePattern.test(target) && target !== '.' && target !== '..';
}

/** `2026-08-21T03:04:05.678Z` → `20260821T030405Z`. */
export function formatBackupTimestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** A new backup id for `target`, e.g. `main-20260821T030405Z-9f2c`. */
export function newBackupId(target: string, now: Date = new Date()): string {
  if (!isValidTargetName(target)) {
    throw new DbwardError(
      'E_BACKUP_TARGET_NAME',
      `"${target}" cannot name a backup: target names use letters, digits, _ . - (and are not . or ..).`,
    );
  }
  return `${target}-${formatBackupTimestamp(now)}-${randomBytes(2).toString('hex')}`;
}

export interface ParsedBackupId {
  target: string;
  /** The UTC second the backup started. */
  timestamp: Date;
  suffix: string;
}

/** Split an id into target, start time and random suffix; undefined if it is not a backup id. */
export function parseBackupId(id: string): ParsedBackupId | undefined {
  const match = idPattern.exec(id);
  if (!match) return undefined;
  const [, target, stamp, suffix] = match as unknown as [string, string, string, string];
  if (!isValidTargetName(target)) return undefined;
  const t = timestampPattern.exec(stamp);
  if (!t) return undefined;
  const [, y, mo, d, h, mi, s] = t.map(Number) as [number, number, number, number, number, number, number];
  const timestamp = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (formatBackupTimestamp(timestamp) !== stamp) return undefined; // e.g. month 13
  return { target, timestamp, suffix };
}

/** True when `name` is a valid artifact file name for backup `id`: `<id>.<ext>`. */
export function isValidArtifactName(id: string, name: string): boolean {
  if (!name.startsWith(`${id}.`)) return false;
  if (reservedSuffixes.some((suffix) => name.endsWith(suffix))) return false;
  return extensionPattern.test(name.slice(id.length + 1));
}

const isoTimestamp = z.iso.datetime();
const nonEmpty = z.string().min(1);
const byteCount = z.number().int().nonnegative();

const verificationSchema = z.object({
  verifiedAt: isoTimestamp,
  ok: z.boolean(),
  details: z.array(z.string()),
});

const manifestSchema = z
  .object({
    formatVersion: z.literal(manifestFormatVersion),
    id: nonEmpty,
    target: nonEmpty.refine(isValidTargetName, 'not a valid target name'),
    engine: nonEmpty,
    serverVersion: nonEmpty,
    tool: z.object({ name: nonEmpty, version: nonEmpty }),
    dbwardVersion: nonEmpty,
    startedAt: isoTimestamp,
    finishedAt: isoTimestamp,
    durationMs: z.number().nonnegative(),
    rawBytes: byteCount.min(1, 'an empty dump is not a backup'),
    storedBytes: byteCount.min(1, 'an empty artifact is not a backup'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
    compression: z.object({ algorithm: z.literal('zstd'), level: z.number().int().min(1).max(22) }),
    encryption: z
      .object({
        scheme: nonEmpty,
        cipher: nonEmpty,
        chunkSize: z.number().int().positive(),
        kdf: nonEmpty,
        keyId: nonEmpty,
        header: z
          .string()
          .regex(/^[0-9a-f]+$/, 'expected lowercase hex')
          .optional(),
      })
      .nullable(),
    tables: z.array(z.object({ name: nonEmpty, rows: z.number().int().nonnegative() })),
    artifact: nonEmpty,
    verification: verificationSchema.nullable(),
  })
  .superRefine((m, ctx) => {
    const parsed = parseBackupId(m.id);
    if (!parsed) {
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'expected <target>-<YYYYMMDDTHHMMSSZ>-<4 hex>' });
    } else if (parsed.target !== m.target) {
      ctx.addIssue({
        code: 'custom',
        path: ['id'],
        message: `the id names target "${parsed.target}", not "${m.target}"`,
      });
    }
    if (!isValidArtifactName(m.id, m.artifact)) {
      ctx.addIssue({
        code: 'custom',
        path: ['artifact'],
        message: `expected "${m.id}.<ext>" (a plain file name)`,
      });
    }
    if (Date.parse(m.finishedAt) < Date.parse(m.startedAt)) {
      ctx.addIssue({ code: 'custom', path: ['finishedAt'], message: 'finishes before it starts' });
    }
  });

export type ManifestCheck = { ok: true; manifest: BackupManifest } | { ok: false; problems: string[] };

/** Check a parsed JSON value against the manifest format; never throws. */
export function checkManifest(json: unknown): ManifestCheck {
  if (typeof json === 'object' && json !== null && 'formatVersion' in json) {
    const version = (json as { formatVersion: unknown }).formatVersion;
    if (typeof version === 'number' && version > manifestFormatVersion) {
      return {
        ok: false,
        problems: [`manifest format ${version} was written by a newer dbward (this one reads format 1)`],
      };
    }
  }
  const result = manifestSchema.safeParse(json);
  if (result.success) return { ok: true, manifest: result.data as BackupManifest };
  return {
    ok: false,
    problems: result.error.issues.map((issue) =>
      issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
    ),
  };
}

/** The manifest, typed; throws a {@link DbwardError} listing what is wrong with it. */
export function validateManifest(json: unknown): BackupManifest {
  const check = checkManifest(json);
  if (check.ok) return check.manifest;
  throw new DbwardError('E_MANIFEST_INVALID', `Invalid backup manifest: ${check.problems.join('; ')}`);
}

/** Check a verification record (as stored next to a manifest). */
export function checkVerification(
  json: unknown,
): { ok: true; verification: BackupVerification } | { ok: false; problems: string[] } {
  const result = verificationSchema.safeParse(json);
  if (result.success) return { ok: true, verification: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) =>
      issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message,
    ),
  };
}

/** Newest first: by start time, then by id (stable for backups started in the same millisecond). */
export function compareManifestsNewestFirst(a: BackupManifest, b: BackupManifest): number {
  const byStart = Date.parse(b.startedAt) - Date.parse(a.startedAt);
  if (byStart !== 0) return byStart;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
