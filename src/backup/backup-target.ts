/**
 * What `dbward backup` (and the daemon's backup job) does for one target: take the run lock,
 * remove what interrupted runs left behind, take the backup, verify it when asked, and only then
 * apply retention — so a failed or unverified backup never causes an older good one to be deleted.
 */
import { open } from '../connect/open.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import { LocalStorage } from '../storage/local-storage.js';
import { defaultIncompleteGraceMs } from '../storage/storage.js';
import { acquireRunLock } from './backup-run-lock.js';
import type { ResolvedBackupSettings } from './backup-settings.js';
import type { BackupManifest, BackupVerification } from './manifest.js';
import { pruneBackups, type PruneResult } from './prune-backups.js';
import { takeBackup, type BackupProgress } from './take-backup.js';
import { verifyBackup } from './verify-backup.js';

export interface BackupTargetOptions {
  logger: Logger;
  /** Verify right after the backup (default: the settings' `verify`). */
  verify?: boolean;
  /** Apply retention after a good backup (default true; retention with nothing set keeps all). */
  prune?: boolean;
  onProgress?: (progress: BackupProgress) => void;
  onPhase?: (phase: 'cleanup' | 'backup' | 'verify' | 'prune') => void;
}

export interface BackupTargetResult {
  manifest: BackupManifest;
  verification: BackupVerification | null;
  /** Leftovers of interrupted runs that were removed (paths relative to the storage). */
  cleaned: string[];
  prune: PruneResult | null;
}

export async function backupTarget(
  target: Target,
  settings: ResolvedBackupSettings,
  options: BackupTargetOptions,
): Promise<BackupTargetResult> {
  const { storage } = settings;
  const lock = await acquireRunLock(storage.location, target.name);
  try {
    options.onPhase?.('cleanup');
    // Holding the lock, we know no other run on this host writes this target's backups to a local
    // directory; a shared object store may have writers elsewhere, so there the grace period holds.
    const cleaned = await storage.cleanupIncomplete({
      target: target.name,
      olderThanMs: storage instanceof LocalStorage ? 0 : defaultIncompleteGraceMs,
    });
    const db = await open(target, { logger: options.logger });
    try {
      options.onPhase?.('backup');
      const manifest = await takeBackup(db.connection, target, {
        storage,
        key: settings.key,
        compressionLevel: settings.compressionLevel,
        jobs: settings.jobs,
        logger: options.logger,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      let verification: BackupVerification | null = null;
      if (options.verify ?? settings.verify) {
        options.onPhase?.('verify');
        verification = await verifyBackup(db.connection, target, manifest, {
          storage,
          key: settings.readKey,
          logger: options.logger,
          jobs: settings.jobs,
        });
      }
      let prune: PruneResult | null = null;
      if ((options.prune ?? true) && (verification === null || verification.ok)) {
        options.onPhase?.('prune');
        prune = await pruneBackups(storage, target.name, settings.retention, { dryRun: false });
      }
      return {
        manifest: verification ? { ...manifest, verification } : manifest,
        verification,
        cleaned,
        prune,
      };
    } finally {
      await db.close();
    }
  } finally {
    await lock.release();
  }
}
