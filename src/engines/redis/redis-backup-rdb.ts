/**
 * Proving an RDB file whole, and counting its keys per database.
 *
 * Whole: `redis-check-rdb` (Redis's own checker, built from the same loader as redis-server)
 * reads every record and verifies the CRC64 trailer; anything but success rejects the dump.
 *
 * Counts — the cheapest exact source: Redis writes, right after each database's SELECTDB, a
 * RESIZEDB record holding that database's key count at the moment of the snapshot (the forked
 * child's view, so exact). redis-check-rdb prints the offset of every database it selects, so
 * reading the counts takes two length-encoded integers at known offsets — no parsing of the
 * records themselves — and their sum is checked against the total redis-check-rdb read. (The
 * alternative, loading the file into a temporary redis-server and asking INFO keyspace, costs
 * the whole dataset's memory again.) When the RESIZEDB records are missing or disagree, the
 * caller falls back to that temporary server.
 */
import { open, stat } from 'node:fs/promises';
import { DbwardError } from '../../core/errors.js';
import type { BackupTableCount } from '../backup-role.js';
import { quoteOutput, runTool } from './redis-backup-tools.js';

const rdbMagic = Buffer.from('REDIS', 'latin1');
const opcodeResizeDb = 0xfb;

/** Why `file` is not an RDB file by its first bytes, or undefined when it looks like one. */
export async function rdbHeaderProblem(file: string): Promise<string | undefined> {
  const { size } = await stat(file);
  if (size === 0) return 'it is empty';
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(9), 0, 9, 0);
    const head = buffer.subarray(0, bytesRead);
    if (!head.subarray(0, 5).equals(rdbMagic) || !/^\d{4}$/.test(head.subarray(5).toString('latin1'))) {
      return 'it does not start with the REDIS magic and an RDB version';
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

export interface RdbCheck {
  /** Exact key counts per database (`db0`, `db3`, …, non-empty ones); undefined without usable RESIZEDB records. */
  counts: BackupTableCount[] | undefined;
  /** The database indexes the file holds. */
  dbs: number[];
}

/** Check `file` with redis-check-rdb and count its keys. Rejects with E_BACKUP_DUMP saying what is wrong. */
export async function checkRdb(
  file: string,
  checker: string,
  password: string | undefined,
): Promise<RdbCheck> {
  const header = await rdbHeaderProblem(file);
  if (header) throw dumpError(`The RDB from redis-cli is unusable: ${header}.`);
  const { code, output } = await runTool(checker, [file], process.env);
  if (code !== 0 || !/RDB looks OK/.test(output)) {
    const reasons = output
      .split(/\r?\n/)
      .filter(
        (line) => /error|wrong|unexpected|invalid|unknown|corrupt/i.test(line) && !/^-+ RDB ERROR/.test(line),
      );
    throw dumpError(
      `redis-check-rdb rejected the RDB (exit ${code}): ${quoteOutput(reasons.join('\n') || output, password, 3)}`,
    );
  }
  const selected = [...output.matchAll(/\[offset (\d+)\] Selecting DB ID (\d+)/g)].map((m) => ({
    offset: Number(m[1]),
    db: Number(m[2]),
  }));
  const keysRead = Number(/(\d+) keys read/.exec(output)?.[1] ?? Number.NaN);
  const dbs = selected.map((s) => s.db);
  const counts = await readResizeDb(file, selected);
  const total = counts?.reduce((sum, c) => sum + c.rows, 0);
  return { counts: total === keysRead ? counts : undefined, dbs };
}

async function readResizeDb(
  file: string,
  selected: { offset: number; db: number }[],
): Promise<BackupTableCount[] | undefined> {
  const handle = await open(file, 'r');
  try {
    const counts: BackupTableCount[] = [];
    for (const { offset, db } of selected) {
      // Opcode + two lengths of at most 9 bytes each.
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(19), 0, 19, offset);
      if (bytesRead < 3 || buffer[0] !== opcodeResizeDb) return undefined;
      const keys = readLength(buffer, 1);
      if (keys === undefined) return undefined;
      if (keys.value > 0) counts.push({ name: `db${db}`, rows: keys.value });
    }
    return counts;
  } finally {
    await handle.close();
  }
}

/**
 * One RDB length encoding at `at` (rdbLoadLen): the first byte's top two bits say 6-bit,
 * 14-bit, or (0x80 / 0x81) a 32- or 64-bit big-endian integer follows; 0b11 is not a length.
 */
function readLength(buf: Buffer, at: number): { value: number; next: number } | undefined {
  const first = buf[at];
  if (first === undefined) return undefined;
  switch (first >> 6) {
    case 0:
      return { value: first & 0x3f, next: at + 1 };
    case 1:
      return at + 1 < buf.length ? { value: ((first & 0x3f) << 8) | buf[at + 1]!, next: at + 2 } : undefined;
    default:
      if (first === 0x80 && at + 5 <= buf.length) return { value: buf.readUInt32BE(at + 1), next: at + 5 };
      if (first === 0x81 && at + 9 <= buf.length) {
        return { value: Number(buf.readBigUInt64BE(at + 1)), next: at + 9 };
      }
      return undefined;
  }
}

export function dumpError(message: string, hint?: string): DbwardError {
  return new DbwardError('E_BACKUP_DUMP', message, {
    hint:
      hint ??
      'The server sent an incomplete or damaged snapshot; retry the backup, and check the server log and its free disk/memory (the snapshot is made by a forked child).',
    context: { engine: 'redis', operation: 'backup' },
  });
}
