/**
 * Prove a backup restores: load it into a throwaway place (a scratch database beside the target,
 * a temporary SQLite file, a temporary redis-server), compare every table's row count with the
 * manifest, run the engine's integrity checks, and record the result next to the manifest.
 *
 * A verification that finds the backup bad is recorded (`ok: false`) and returned. Failures that
 * say nothing about the backup — the scratch database cannot be created, the restore tool is
 * missing, the key is wrong — are thrown and recorded nowhere.
 */
import { isDbwardError, UsageError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import type { LoadContext } from '../engines/backup-role.js';
import type { EngineConnection } from '../engines/contract.js';
import type { BackupStorage } from '../storage/storage.js';
import type { BackupKey } from './backup-key.js';
import type { BackupManifest, BackupVerification } from './manifest.js';
import { settleAll } from './pipeline-errors.js';
import { openPlainArtifact } from './read-artifact.js';
import { roleForBackup, withTempDir } from './take-backup.js';

/** Errors that mean the artifact itself is bad (as opposed to the environment). */
const artifactErrorCodes = new Set([
  'E_BACKUP_CORRUPT',
  'E_BACKUP_TRUNCATED',
  'E_BACKUP_UNSUPPORTED',
  'E_BACKUP_RESTORE',
  'E_ZSTD_FAILED',
]);

export interface VerifyBackupOptions {
  storage: BackupStorage;
  key: BackupKey | null;
  logger: Logger;
  /** Parallel restore workers where the engine supports them. */
  jobs?: number;
  now?: () => Date;
}

/**
 * Verify `manifest`'s backup using `conn` (a connection to the backed-up target's server, where
 * the scratch copy is made) and record the result in storage.
 */
export async function verifyBackup(
  conn: EngineConnection,
  target: Target,
  manifest: BackupManifest,
  options: VerifyBackupOptions,
): Promise<BackupVerification> {
  const { role, spec, extension } = await roleForBackup(
    target,
    manifest,
    (engineName) =>
      new UsageError(
        `Backup ${manifest.id} is a ${manifest.engine} backup; target ${target.name} is ${engineName}.`,
        'Verify it with a target of the same engine (--target).',
      ),
  );
  const now = options.now ?? (() => new Date());
  const details: string[] = [];
  let ok = true;
  const result = await withTempDir('verify', async (tempDir) => {
    const ctx: LoadContext = {
      target,
      spec,
      logger: options.logger,
      tempDir,
      extension,
      jobs: options.jobs ?? 1,
    };
    const artifact = await openPlainArtifact(options.storage, manifest, options.key);
    let copy;
    try {
      ({ copy } = await settleAll(
        { copy: role.loadCopy(artifact.stream, conn, ctx), artifact: artifact.done },
        () => artifact.stream.destroy(),
        ['copy'],
      ));
    } catch (err) {
      if (isDbwardError(err) && artifactErrorCodes.has(err.code)) {
        return { ok: false, details: [`${err.message}`] };
      }
      throw err;
    }
    details.push(
      `artifact: ${manifest.storedBytes} bytes, SHA-256 matches the manifest${manifest.encryption ? ', every encrypted chunk authenticated' : ''}`,
    );
    try {
      const checked = await copy.check();
      details.push(...checked.checks);
      for (const problem of checked.problems) {
        ok = false;
        details.push(`problem: ${problem}`);
      }
      const mismatches = compareCounts(manifest.tables, checked.tables);
      if (mismatches.length > 0) ok = false;
      details.push(
        ...mismatches,
        `${manifest.tables.length} tables: ${mismatches.length === 0 ? 'row counts match the manifest' : `${mismatches.length} differ from the manifest`}`,
      );
    } finally {
      await copy.dispose();
    }
    return { ok, details };
  });
  const verification: BackupVerification = { verifiedAt: now().toISOString(), ...result };
  await options.storage.writeVerification(manifest, verification);
  return verification;
}

/** Lines describing each table whose count differs (or that is missing or extra). */
export function compareCounts(
  expected: readonly { name: string; rows: number }[],
  actual: readonly { name: string; rows: number }[],
): string[] {
  const found = new Map(actual.map((t) => [t.name, t.rows]));
  const lines: string[] = [];
  for (const { name, rows } of expected) {
    const got = found.get(name);
    if (got === undefined) lines.push(`missing: ${name} (${rows} rows in the manifest)`);
    else if (got !== rows) lines.push(`row count differs: ${name} has ${got}, the manifest says ${rows}`);
    found.delete(name);
  }
  for (const [name, rows] of found) lines.push(`extra: ${name} (${rows} rows) is not in the manifest`);
  return lines;
}
