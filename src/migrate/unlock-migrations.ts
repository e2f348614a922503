/**
 * `dbward migrate unlock`: free a migration lock whose holder is gone, and refuse (without
 * `--force`) while it may still be alive. The engines only know how to break a lock
 * (`breakLock`); whether that is safe is decided here, the same way for every engine.
 *
 * Why a listed holder can be dead at all: PostgreSQL and MySQL locks die with their server
 * session, so a holder listed there means a session still exists — a hung process, or a
 * half-open connection the server has not noticed yet (the client machine died, a firewall
 * dropped the connection silently). Its owner pid (written by dbward when it took the lock)
 * then tells us whether the process is still there, when it ran on this host. SQLite has no
 * session: its lock row says itself when the heartbeat stopped (`stale`).
 */
import os from 'node:os';
import type { Database } from '../connect/database-handle.js';
import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { LockHolder } from '../engines/contract.js';
import { trackingStoreFor } from './tracking-store.js';

export interface UnlockOptions {
  /** Break the lock even though its holder may be alive (ends its database session). */
  force?: boolean;
}

export interface UnlockResult {
  /** Whether anybody held the lock when we looked. */
  wasLocked: boolean;
  /** Who held it, or null. */
  holder: LockHolder | null;
  /** Whether this call freed it (false: it was free, or its holder let go by itself meanwhile). */
  released: boolean;
  /**
   * `free`: nobody held it. `stale`: the engine itself says the holder is gone (SQLite heartbeat).
   * `holder-gone`: the owner process no longer exists on this host. `forced`: `--force`.
   */
  reason: 'free' | 'stale' | 'holder-gone' | 'forced';
}

/** Release the migration lock on `db` if its holder is known to be gone, or with `force`. */
export async function unlockMigrations(db: Database, options: UnlockOptions = {}): Promise<UnlockResult> {
  const store = await trackingStoreFor(db);
  const holder = await store.lockHolder();
  if (!holder) return { wasLocked: false, holder: null, released: false, reason: 'free' };
  const reason = holderGone(holder) ?? (options.force ? 'forced' : undefined);
  if (!reason) throw heldError(db, holder);
  const released = await store.breakLock();
  return { wasLocked: true, holder, released, reason };
}

/** Why the holder is certainly gone, or undefined when it may be alive. */
function holderGone(holder: LockHolder): 'holder-gone' | 'stale' | undefined {
  if (holder.host !== null && holder.host === os.hostname() && processGone(holder.pid)) return 'holder-gone';
  if (holder.stale === true) return 'stale';
  return undefined;
}

/**
 * True only when signal 0 says the process does not exist (ESRCH). A pid that exists is
 * alive, also as another user (EPERM); an unknown or invalid pid proves nothing (0 and negative
 * pids would address process groups).
 */
function processGone(pid: number | null): boolean {
  if (pid === null || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function heldError(db: Database, holder: LockHolder): DbwardError {
  const { capabilities, displayName } = db.engine;
  const effect = !capabilities.hasAdvisoryLocks
    ? 'which deletes its lock record (a process still running is not stopped, so make sure it is gone)'
    : capabilities.supportsTransactionalDdl
      ? 'which ends its database session (its running migration is rolled back)'
      : `which ends its database session (statements it already ran stay applied: ${displayName} commits DDL at once, and \`migrate up\` resumes after them)`;
  return new DbwardError(
    'E_MIGRATION_LOCK_HELD',
    `The migration lock on ${db.target.displayUrl} is held by ${holder.description}, which looks alive; not unlocking.`,
    {
      hint:
        'Wait for it to finish, or stop it. If you are sure it is gone (e.g. it ran on another machine ' +
        `that died), run \`dbward migrate unlock --force\`, ${effect}.`,
      exitCode: ExitCode.failed,
      context: { engine: db.engine.id, target: db.target.name, operation: 'migrate unlock' },
    },
  );
}
