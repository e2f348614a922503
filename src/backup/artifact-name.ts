/**
 * Artifact file names say what is inside: `<id>.<format>.zst[.enc]`, where the format is the engine
 * role's raw format (`pgdump`, `pgdir.tar`, `sql`, `sqlite`, `rdb`). A person holding only the file
 * can tell how to open it (docs/backups.md, "Restoring without dbward").
 */
import { DbwardError } from '../core/errors.js';
import type { BackupManifest } from './manifest.js';

/** The artifact's file name: `<id>.<format>.zst`, plus `.enc` when encrypted. */
export function artifactName(id: string, extension: string, encrypted: boolean): string {
  return `${id}.${extension}.zst${encrypted ? '.enc' : ''}`;
}

/** The raw format of an artifact (`pgdump`, `sql`, …) from its name, and whether it is encrypted. */
export function artifactFormat(manifest: Pick<BackupManifest, 'id' | 'artifact'>): {
  extension: string;
  encrypted: boolean;
} {
  let rest = manifest.artifact.slice(manifest.id.length + 1);
  const encrypted = rest.endsWith('.enc');
  if (encrypted) rest = rest.slice(0, -'.enc'.length);
  if (!rest.endsWith('.zst')) {
    throw new DbwardError(
      'E_BACKUP_FORMAT',
      `Backup ${manifest.id}: cannot tell the format of artifact ${manifest.artifact}.`,
      { hint: 'Artifacts are named <id>.<format>.zst[.enc]; was the file renamed?' },
    );
  }
  return { extension: rest.slice(0, -'.zst'.length), encrypted };
}
