import { readFileSync } from 'node:fs';

/**
 * When process `pid` started (ms since the epoch), or null where that cannot be read (not
 * Linux, no /proc, the process is gone). Lets a lock tell its live holder from an unrelated
 * process that was later given the same pid: a holder cannot have started after it took the lock.
 *
 * Linux: field 22 of /proc/<pid>/stat is the start time in clock ticks since boot, and `btime`
 * in /proc/stat is the boot time in seconds. USER_HZ is 100 on every Linux architecture Node
 * supports (it is fixed in the kernel ABI, whatever the kernel's internal HZ).
 */
export function processStartTimeMs(pid: number): number | null {
  if (process.platform !== 'linux' || !Number.isInteger(pid) || pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 overall; fields[0] is field 3
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return null;
    return btime * 1000 + ticks * 10;
  } catch {
    return null;
  }
}
