/**
 * Sample a Redis database's keys without hurting it: SCAN (never KEYS, which blocks the server
 * for the whole keyspace) up to a limit, then TYPE, PTTL and MEMORY USAGE for the sampled keys
 * in pipelined batches — one round trip per batch.
 */
import type { KeyValueConnection } from '../contract.js';

export interface KeySample {
  key: string;
  /** string, hash, list, set, zset, stream, … */
  type: string;
  hasTtl: boolean;
  /** MEMORY USAGE in bytes; 0 when the server does not allow or know the command. */
  bytes: number;
}

export interface KeySampleSet {
  samples: KeySample[];
  /** True when SCAN went through the whole keyspace within the limit: the samples are every key. */
  complete: boolean;
}

const scanCount = 1_000;
const batchSize = 1_000;

/** SCAN up to `limit` distinct keys of the connection's database and describe each. */
export async function sampleKeys(conn: KeyValueConnection, limit: number): Promise<KeySampleSet> {
  const { keys, complete } = await scanKeys(conn, limit);
  const samples: KeySample[] = [];
  const memory = { allowed: true };
  for (let i = 0; i < keys.length; i += batchSize) {
    samples.push(...(await describeBatch(conn, keys.slice(i, i + batchSize), memory)));
  }
  return { samples, complete };
}

async function scanKeys(
  conn: KeyValueConnection,
  limit: number,
): Promise<{ keys: string[]; complete: boolean }> {
  // SCAN may return a key more than once (when the table is rehashed mid-scan): dedupe.
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = (await conn.command('SCAN', cursor, 'COUNT', scanCount)) as [string, string[]];
    cursor = next;
    for (const key of batch) {
      if (keys.size >= limit) return { keys: [...keys], complete: false };
      keys.add(key);
    }
  } while (cursor !== '0' && keys.size < limit);
  return { keys: [...keys], complete: cursor === '0' };
}

async function describeBatch(
  conn: KeyValueConnection,
  keys: string[],
  memory: { allowed: boolean },
): Promise<KeySample[]> {
  // Issued together, awaited together: the client pipelines them onto the socket.
  const described = await Promise.all(
    keys.map((key) =>
      Promise.all([
        conn.command('TYPE', key),
        conn.command('PTTL', key),
        // Default SAMPLES (5 nested values), not SAMPLES 0: SAMPLES 0 walks every element,
        // an O(n) stall of the server on a big hash or sorted set.
        memory.allowed ? conn.command('MEMORY', 'USAGE', key).catch(memoryRefused(memory)) : null,
      ]),
    ),
  );
  const samples: KeySample[] = [];
  described.forEach(([type, pttl, bytes], i) => {
    // TYPE none / PTTL -2: the key expired or was deleted since SCAN saw it.
    if (type === 'none' || pttl === -2) return;
    samples.push({
      key: keys[i] as string,
      type: String(type),
      hasTtl: Number(pttl) >= 0,
      bytes: Number(bytes ?? 0),
    });
  });
  return samples;
}

/** MEMORY USAGE refused (ACL NOPERM, renamed or missing command): stop asking, count 0 bytes. */
function memoryRefused(memory: { allowed: boolean }): (err: unknown) => null {
  return () => {
    memory.allowed = false;
    return null;
  };
}
