/**
 * One backup of a target into one storage at a time, per host. The lock is a small file in the
 * system's temporary directory holding the holder's pid and process start time. A holder that
 * was killed (even with kill -9) leaves the file behind, but its pid is gone — or belongs to a
 * process that started later — so the next run takes the lock over. Holding it also tells the
 * holder that no other backup of this target is writing to this storage from this host, so it
 * may remove what an interrupted run left behind at once, without waiting for a grace period.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { DbwardError } from '../core/errors.js';
import { processStartTimeMs } from '../core/process-start-time.js';

interface LockFileBody {
  pid: number;
  /** ms since the epoch, or null where start times cannot be read. */
  started: number | null;
  host: string;
  since: string;
}

export interface BackupRunLock {
  release(): Promise<void>;
}

/** The lock file for backups of `target` into the storage at `location`. */
export function runLockPath(location: string, target: string): string {
  const digest = createHash('sha256').update(`${location}\n${target}`).digest('hex').slice(0, 16);
  return path.join(tmpdir(), `dbward-backup-${digest}.lock`);
}

/** Take the lock, or throw E_BACKUP_RUNNING naming the live holder. */
export async function acquireRunLock(location: string, target: string): Promise<BackupRunLock> {
  const file = runLockPath(location, target);
  const body: LockFileBody = {
    pid: process.pid,
    started: processStartTimeMs(process.pid),
    host: hostname(),
    since: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fsp.writeFile(file, JSON.stringify(body), { flag: 'wx', mode: 0o600 });
      return {
        release: async () => {
          if (readHolder(file)?.pid === process.pid) await fsp.rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(file);
    if (holder && isAlive(holder)) {
      throw new DbwardError(
        'E_BACKUP_RUNNING',
        `Another backup of ${target} to ${location} is running (pid ${holder.pid}, since ${holder.since}).`,
        { hint: 'Wait for it to finish; if that process is stuck, stop it and run again.' },
      );
    }
    // The holder is gone: remove its file and try again (another run may race us to it).
    await fsp.rm(file, { force: true });
  }
  throw new DbwardError('E_BACKUP_RUNNING', `Could not take the backup lock ${file}.`, {
    hint: 'Another backup of this target keeps starting; try again.',
  });
}

function readHolder(file: string): LockFileBody | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockFileBody;
  } catch {
    return undefined; // unreadable or half-written: treated as gone
  }
}

function isAlive(holder: LockFileBody): boolean {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = processStartTimeMs(holder.pid);
  // A pid that started after the lock was written was reused by an unrelated process.
  return !(started !== null && holder.started !== null && Math.abs(started - holder.started) > 1_000);
}
