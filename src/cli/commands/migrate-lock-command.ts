/**
 * `dbward migrate lock` (who holds the migration lock) and `dbward migrate unlock [--force]`
 * (free it when its holder is gone). Thin over src/migrate/unlock-migrations.ts; works on any
 * engine with a migration store, key-value ones included.
 */
import { open } from '../../connect/open.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { LockHolder } from '../../engines/contract.js';
import { trackingStoreFor } from '../../migrate/tracking-store.js';
import { unlockMigrations, type UnlockResult } from '../../migrate/unlock-migrations.js';
import type { CliContext } from '../context.js';

/**
 * The flags of `migrate lock|unlock`. The lock is per database, so the shared migrate options
 * (`--migrations-dir`, `--migrations-table`, `--lock-timeout`) are accepted but change nothing.
 */
export interface MigrateLockFlags {
  migrationsDir?: string;
  migrationsTable?: string;
  lockTimeout?: string;
  /** unlock: break the lock even though its holder may be alive. */
  force?: boolean;
}

export async function migrateLockCommand(
  ctx: CliContext,
  action: 'lock' | 'unlock',
  flags: MigrateLockFlags,
): Promise<number> {
  const [target] = await ctx.targets([]);
  const db = await open(target!, { logger: ctx.logger });
  try {
    if (action === 'lock') {
      const holder = await (await trackingStoreFor(db)).lockHolder();
      if (ctx.out.json) ctx.out.printJson({ locked: holder !== null, holder });
      else ctx.out.line(holder ? `locked by ${describe(holder)}` : 'The migration lock is free.');
      return ExitCode.ok;
    }
    const result = await unlockMigrations(db, { force: !!flags.force });
    if (ctx.out.json) ctx.out.printJson(result);
    else ctx.out.line(unlockedText(result, db.engine.capabilities.hasAdvisoryLocks));
    return ExitCode.ok;
  } finally {
    await db.close();
  }
}

function describe(holder: LockHolder): string {
  return holder.stale ? `${holder.description} (stale: its heartbeat stopped)` : holder.description;
}

function unlockedText(result: UnlockResult, sessionLock: boolean): string {
  const { holder, released, reason } = result;
  if (!holder) return 'The migration lock is free: nothing to unlock.';
  if (!released)
    return `The migration lock held by ${holder.description} was released by its holder meanwhile.`;
  const why = {
    stale: 'its heartbeat had stopped',
    'holder-gone': 'that process no longer exists on this host',
    forced: sessionLock ? '--force: its database session was ended' : '--force: its lock record was deleted',
    free: '',
  }[reason];
  return `Released the migration lock held by ${holder.description} (${why}).`;
}
