/**
 * Apply a target's retention policy to its backups in storage: plan with {@link planRetention}
 * (grandfather-father-son; the newest verified backup is always kept), then delete — or, with
 * `dryRun`, only report. Deletion removes the manifest first, so a half-deleted backup is never
 * listed.
 */
import type { BackupStorage, StorageProblem } from '../storage/storage.js';
import type { BackupManifest } from './manifest.js';
import { planRetention, type RetentionPolicy } from './retention.js';

export interface PruneResult {
  dryRun: boolean;
  kept: { manifest: BackupManifest; reasons: string[] }[];
  removed: { manifest: BackupManifest; reason: string }[];
  /** What listing the storage found wrong (never acted on). */
  problems: StorageProblem[];
}

export async function pruneBackups(
  storage: BackupStorage,
  target: string,
  policy: RetentionPolicy,
  options: { dryRun: boolean; now?: Date },
): Promise<PruneResult> {
  const { backups, problems } = await storage.list(target);
  const plan = planRetention(backups, policy, options.now ?? new Date());
  if (!options.dryRun) {
    for (const { manifest } of plan.remove) await storage.delete(manifest);
  }
  return { dryRun: options.dryRun, kept: plan.keep, removed: plan.remove, problems };
}
