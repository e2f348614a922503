/**
 * The name rules every storage keeps (local directory and S3 alike): which ids, artifact and
 * target names are valid, and which stored names belong to an incomplete backup (see
 * `BackupStorage.cleanupIncomplete`).
 */
import {
  isValidArtifactName,
  isValidTargetName,
  parseBackupId,
  validateManifest,
  type BackupManifest,
} from '../backup/manifest.js';
import { DbwardError } from '../core/errors.js';
import { manifestFileName, parsePartialFileName, verificationFileName } from './storage.js';

export function targetOfId(id: string): string {
  const parsed = parseBackupId(id);
  if (!parsed) {
    throw new DbwardError('E_BACKUP_ID', `"${id}" is not a backup id (<target>-<YYYYMMDDTHHMMSSZ>-<4 hex>).`);
  }
  return parsed.target;
}

export function checkArtifactName(id: string, name: string): void {
  if (!isValidArtifactName(id, name)) {
    throw new DbwardError(
      'E_BACKUP_ARTIFACT_NAME',
      `"${name}" is not a valid artifact name for ${id} ("${id}.<ext>").`,
    );
  }
}

export function checkTargetName(target: string): void {
  if (!isValidTargetName(target)) {
    throw new DbwardError('E_BACKUP_TARGET_NAME', `"${target}" is not a valid target name.`);
  }
}

/** The manifest's target, id and artifact names are valid and agree with each other. */
export function checkManifestNames(manifest: BackupManifest): void {
  checkTargetName(manifest.target);
  if (
    parseBackupId(manifest.id)?.target !== manifest.target ||
    !isValidArtifactName(manifest.id, manifest.artifact)
  ) {
    throw new DbwardError(
      'E_MANIFEST_INVALID',
      `Backup ${manifest.id}: the manifest's target/artifact names are not valid (${manifest.artifact}).`,
    );
  }
}

/** The manifest `finalize` was given, validated, when it describes artifact `name` of backup `id`. */
export function manifestToFinalize(id: string, name: string, manifest: BackupManifest): BackupManifest {
  const target = targetOfId(id);
  checkArtifactName(id, name);
  const m = validateManifest(manifest);
  if (m.id !== id || m.artifact !== name || m.target !== target) {
    throw new DbwardError(
      'E_STORAGE_MANIFEST_MISMATCH',
      `The manifest (id ${m.id}, artifact ${m.artifact}) does not describe backup ${id} / ${name}.`,
    );
  }
  return m;
}

/** `cleanupIncomplete`'s grace period must be a finite 0 or more. */
export function checkGracePeriod(olderThanMs: number): void {
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new DbwardError('E_CLEANUP_GRACE', `olderThanMs must be 0 or more, not ${String(olderThanMs)}.`);
  }
}

/** The id of a backup of `target` that `name` belongs to (`<id>.…`), if it follows the scheme. */
export function idOfName(target: string, name: string): string | undefined {
  const escaped = target.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  return new RegExp(`^(${escaped}-\\d{8}T\\d{6}Z-[0-9a-f]{4})\\.`).exec(name)?.[1];
}

/**
 * Incomplete = a partial file of ours, or an artifact/verification record of `target` whose
 * manifest is not in `names`. Manifests (even broken ones) and foreign names never are.
 */
export function isIncompleteName(target: string, name: string, names: ReadonlySet<string>): boolean {
  const partialOf = parsePartialFileName(name);
  if (partialOf !== undefined) return idOfName(target, partialOf) !== undefined;
  if (name.startsWith('.') || name.endsWith('.manifest.json')) return false;
  const id = idOfName(target, name);
  if (id === undefined || names.has(manifestFileName(id))) return false;
  return name === verificationFileName(id) || isValidArtifactName(id, name);
}
