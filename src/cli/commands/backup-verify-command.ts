/**
 * `dbward backup verify [id | latest]`: restore a backup into a throwaway place beside its
 * target's server, compare row counts with the manifest, run the engine's integrity checks, and
 * record the result next to the manifest. Exit 1 when the backup is bad.
 */
import { open } from '../../connect/open.js';
import { verifyBackup } from '../../backup/verify-backup.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { CliContext } from '../context.js';
import { paint } from '../output.js';
import { findBackup } from './find-backup.js';

export interface BackupVerifyFlags {
  storage?: string;
  keyFile?: string;
  jobs?: string;
}

export async function backupVerifyCommand(
  ctx: CliContext,
  id: string | undefined,
  flags: BackupVerifyFlags,
): Promise<number> {
  const { target, settings, manifest } = await findBackup(ctx, id ?? 'latest', flags);
  ctx.out.note(`Verifying ${manifest.id} in a scratch copy beside ${target.name}…`);
  const db = await open(target, { logger: ctx.logger });
  let verification;
  try {
    verification = await verifyBackup(db.connection, target, manifest, {
      storage: settings.storage,
      key: settings.readKey,
      logger: ctx.logger,
      jobs: settings.jobs,
    });
  } finally {
    await db.close();
  }
  if (ctx.out.json) {
    ctx.out.printJson({ id: manifest.id, target: manifest.target, ...verification });
  } else {
    const head = verification.ok ? paint(ctx.out, 'green', '✔ verified') : paint(ctx.out, 'red', '✖ FAILED');
    ctx.out.line(`${head} ${manifest.id}`);
    for (const line of verification.details) ctx.out.line(`  ${line}`);
  }
  return verification.ok ? ExitCode.ok : ExitCode.failed;
}
