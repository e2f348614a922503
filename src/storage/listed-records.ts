/**
 * How every storage's `list` reads what it finds next to an artifact — a manifest and an optional
 * verification record — turning anything unusable into a {@link StorageProblem} instead of
 * failing the whole list. The storages differ only in how they read a stored text.
 */
import {
  checkManifest,
  checkVerification,
  type BackupManifest,
  type BackupVerification,
} from '../backup/manifest.js';
import type { StorageProblem } from './storage.js';

/**
 * The manifest of backup `id` of `target`, read by `read` from `rel`, if it is well-formed,
 * describes that name, and its artifact is stored (`isStored`); otherwise a problem is pushed.
 * `nameWord` says what the manifest is stored under, for the message ("file name", "key").
 */
export async function readListedManifest(
  read: () => Promise<string>,
  where: { target: string; id: string; rel: string; nameWord: string },
  isStored: (name: string) => boolean,
  problems: StorageProblem[],
): Promise<BackupManifest | undefined> {
  const { target, id, rel } = where;
  let json: unknown;
  try {
    json = JSON.parse(await read());
  } catch (err) {
    problems.push({ path: rel, message: `unreadable manifest: ${errorMessage(err)}` });
    return undefined;
  }
  const check = checkManifest(json);
  if (!check.ok) {
    problems.push({ path: rel, message: `malformed manifest: ${check.problems.join('; ')}` });
    return undefined;
  }
  const m = check.manifest;
  if (m.id !== id || m.target !== target) {
    problems.push({
      path: rel,
      message: `the manifest describes ${m.target}/${m.id}, which does not match its ${where.nameWord}`,
    });
    return undefined;
  }
  if (!isStored(m.artifact)) {
    problems.push({ path: rel, message: `the artifact ${m.artifact} is missing` });
    return undefined;
  }
  return m;
}

/** The verification record of backup `id`, read by `read` from `rel`; null (and a problem) if unusable. */
export async function readListedVerification(
  read: () => Promise<string>,
  id: string,
  rel: string,
  problems: StorageProblem[],
): Promise<BackupVerification | null> {
  try {
    const record = JSON.parse(await read()) as {
      id?: unknown;
      verification?: unknown;
    };
    const check = checkVerification(record.verification);
    if (record.id !== id || !check.ok) {
      const why = check.ok ? `it names ${String(record.id)}, not ${id}` : check.problems.join('; ');
      problems.push({ path: rel, message: `malformed verification record: ${why}` });
      return null;
    }
    return check.verification;
  } catch (err) {
    problems.push({ path: rel, message: `unreadable verification record: ${errorMessage(err)}` });
    return null;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
