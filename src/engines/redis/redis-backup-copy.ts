/**
 * Restore's copy step: every key of a temporary redis-server (holding the backup) onto the
 * target, database by database, as DUMP + PTTL → RESTORE key ttl payload REPLACE. DUMP/RESTORE
 * carry any type (and its encoding) exactly; keys are read with SCAN (a static server, so every
 * key is seen; a repeat is harmless under REPLACE) and copied in pipelined batches, so memory
 * holds one batch of values, not the dataset.
 */
import type { Redis } from 'ioredis';
import type { TemporaryRedis } from './redis-backup-server.js';

// Keys per pipelined round trip: big enough to hide latency, small enough to bound memory.
const batchSize = 200;

/** Copy databases `dbs` of `source` onto the target; `target(db)` opens a client on that db. */
export async function copyDatabases(
  source: TemporaryRedis,
  target: (db: number) => Promise<Redis>,
  dbs: number[],
): Promise<number> {
  let copied = 0;
  for (const db of dbs) {
    const from = await source.client(db);
    const to = await target(db);
    try {
      let batch: Buffer[] = [];
      for await (const keys of from.scanBufferStream({ count: batchSize }) as AsyncIterable<Buffer[]>) {
        batch.push(...keys);
        if (batch.length >= batchSize) {
          copied += await copyBatch(from, to, batch);
          batch = [];
        }
      }
      if (batch.length > 0) copied += await copyBatch(from, to, batch);
    } finally {
      from.disconnect();
      to.disconnect();
    }
  }
  return copied;
}

async function copyBatch(from: Redis, to: Redis, keys: Buffer[]): Promise<number> {
  const read = from.pipeline();
  for (const key of keys) read.pttl(key).dumpBuffer(key);
  const replies = (await read.exec()) ?? [];
  const write = to.pipeline();
  let count = 0;
  keys.forEach((key, i) => {
    const [ttlError, ttl] = replies[2 * i] ?? [];
    const [dumpError, payload] = replies[2 * i + 1] ?? [];
    if (ttlError) throw ttlError;
    if (dumpError) throw dumpError;
    // -2 / null: the key expired between SCAN and DUMP; -1: no expiry, which RESTORE spells 0.
    if (ttl === -2 || payload === null) return;
    write.restore(key, Math.max(Number(ttl), 0), payload as Buffer, 'REPLACE');
    count++;
  });
  for (const [error] of (await write.exec()) ?? []) if (error) throw error;
  return count;
}
