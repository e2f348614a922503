/**
 * Where backups live. Every storage (a local directory, later S3-compatible object stores) keeps the
 * same promise: **a backup exists exactly when its manifest does, and a manifest is only ever
 * written after its artifact is complete.** Storage is the source of truth and self-describing:
 * listing reads manifests, nothing else.
 *
 * Write order (see docs/backups.md, "Storage layout and manifest"):
 *
 * 1. `putArtifact` streams the artifact to a temporary name (`.<name>.partial-<random>`) — or, on
 *    S3, as a multipart upload to the final key, which is just as invisible until it completes
 *    (see s3-storage.ts);
 * 2. `finalize` writes the manifest to a temporary name, then moves the artifact to its final name,
 *    then moves the manifest to its final name — last;
 * 3. anything without a manifest is incomplete and `cleanupIncomplete` removes it once it is older
 *    than a grace period (so a backup that is still running is never touched).
 *
 * `delete` removes the manifest first, so a half-deleted backup is never listed.
 */
import type { Readable } from 'node:stream';
import type { BackupManifest, BackupVerification } from '../backup/manifest.js';

/** Something `list` found that is not a usable backup (reported, never thrown for the whole list). */
export interface StorageProblem {
  /** Where, relative to the storage root (e.g. `main/main-20260821T030405Z-9f2c.manifest.json`). */
  path: string;
  message: string;
}

export interface ListResult {
  /** Complete backups, newest first, with their last verification merged in. */
  backups: BackupManifest[];
  /** Malformed manifests, manifests whose artifact is missing, unreadable verification files. */
  problems: StorageProblem[];
}

export interface CleanupOptions {
  /** Only remove incomplete files last modified longer ago than this. */
  olderThanMs: number;
  /** Only this target (default: all). */
  target?: string;
  /** "Now", for tests. */
  now?: Date;
}

export interface BackupStorage {
  /** Where this storage is, for messages (a path or URL without credentials). */
  readonly location: string;

  /**
   * Stream `source` into the storage as artifact `name` of backup `id`, under a temporary name.
   * The artifact is not visible to `list` until {@link finalize}. On any failure (of the source or
   * of the write) the temporary file is removed and the error is thrown.
   */
  putArtifact(id: string, name: string, source: Readable): Promise<{ bytes: number }>;

  /**
   * Make the backup visible: write the manifest under a temporary name, move the artifact put by
   * {@link putArtifact} to its final name, then move the manifest to its final name, last.
   */
  finalize(id: string, name: string, manifest: BackupManifest): Promise<void>;

  /**
   * Throw away an artifact put by {@link putArtifact} that will not be finalized (the dump turned
   * out bad after every byte was stored). Safe to call when nothing is pending.
   */
  discard(id: string, name: string): Promise<void>;

  /** Complete backups (those with a manifest), newest first, and problems found on the way. */
  list(target?: string): Promise<ListResult>;

  /** Read a backup's stored artifact. */
  openArtifact(manifest: BackupManifest): Promise<Readable>;

  /** Record the result of verifying a backup next to its manifest (replacing any earlier one). */
  writeVerification(manifest: BackupManifest, verification: BackupVerification): Promise<void>;

  /** Remove a backup: the manifest first (so it is no longer listed), then the rest. */
  delete(manifest: BackupManifest): Promise<void>;

  /**
   * Remove what incomplete backups left behind — temporary files and artifacts without a manifest —
   * once older than `olderThanMs`. Returns the removed paths relative to the storage root. Files
   * that do not follow dbward's naming are never touched.
   */
  cleanupIncomplete(options: CleanupOptions): Promise<string[]>;
}

/** A sensible grace period for {@link BackupStorage.cleanupIncomplete}: 6 hours. */
export const defaultIncompleteGraceMs = 6 * 60 * 60 * 1000;

/** The default storage: a directory relative to the working directory. */
export const defaultStorageSpec = './dbward-backups';

/** `<id>.manifest.json` */
export function manifestFileName(id: string): string {
  return `${id}.manifest.json`;
}

/** `<id>.verified.json` */
export function verificationFileName(id: string): string {
  return `${id}.verified.json`;
}

/** The temporary name a file is written under before it is renamed: `.<name>.partial-<random>`. */
export function partialFileName(name: string, random: string): string {
  return `.${name}.partial-${random}`;
}

/** True for names made by {@link partialFileName}; returns the final name they were meant for. */
export function parsePartialFileName(fileName: string): string | undefined {
  const match = /^\.(.+)\.partial-[0-9a-f]+$/.exec(fileName);
  return match?.[1];
}
