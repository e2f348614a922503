/**
 * The worker-thread SHA-256 pass-through: same digest and byte count as node:crypto over the same
 * bytes, whatever the chunking; passes every byte through unchanged and in order; moves them in a
 * fixed pool of buffers (bounded memory); and tells an unfinished stream from a finished one.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createThreadedHashStream, hashPoolBuffers } from '../../src/backup/threaded-hash-stream.js';

function chunked(data: Buffer, sizes: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length;) {
    const n = Math.min(data.length - at, sizes());
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function run(chunks: Buffer[]): Promise<{ passed: Buffer; bytes: number; sha256: string }> {
  const hash = createThreadedHashStream();
  const received: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    hash,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk);
        callback();
      },
    }),
  );
  return { passed: Buffer.concat(received), ...hash.result() };
}

describe('ThreadedHashStream', () => {
  it('matches node:crypto for random chunk sizes, and passes the bytes through unchanged', async () => {
    for (const size of [0, 1, 1000, 3 * 1024 * 1024 + 7]) {
      const data = randomBytes(size);
      const result = await run(chunked(data, () => 1 + Math.floor(Math.random() * 200_000)));
      assert.equal(result.bytes, size);
      assert.equal(result.sha256, createHash('sha256').update(data).digest('hex'));
      assert.ok(result.passed.equals(data), `bytes of a ${size}-byte input came through unchanged`);
    }
  });

  it('hashes views into a larger buffer by their own bytes only (no neighbours leak in)', async () => {
    const big = randomBytes(1 << 20);
    const views = [big.subarray(10, 5000), big.subarray(70_000, 70_001), big.subarray(500_000)];
    const result = await run(views);
    assert.equal(result.sha256, createHash('sha256').update(Buffer.concat(views)).digest('hex'));
  });

  it('moves bytes in a fixed pool of buffers (memory stays flat) and still hashes 64 MiB right', async () => {
    const block = randomBytes(4 * 1024 * 1024);
    const expected = createHash('sha256');
    for (let i = 0; i < 16; i++) expected.update(block);
    const hash = createThreadedHashStream();
    let sent = 0;
    let maxWaiting = 0;
    const source = new Readable({
      read() {
        if (sent === 16) return this.push(null);
        sent++;
        this.push(block);
        maxWaiting = Math.max(maxWaiting, hash.buffersAtWorker);
      },
    });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        maxWaiting = Math.max(maxWaiting, hash.buffersAtWorker);
        callback();
      },
    });
    await pipeline(source, hash, sink);
    assert.equal(hash.result().sha256, expected.digest('hex'));
    assert.equal(hash.bytes, 64 * 1024 * 1024);
    assert.ok(maxWaiting > 0, 'the worker was handed bytes');
    assert.ok(
      maxWaiting <= hashPoolBuffers,
      `at most the pool's buffers were at the worker (saw ${maxWaiting})`,
    );
    assert.equal(hash.buffersAllocated, hashPoolBuffers, 'the pool never grew for 64 MiB');
    assert.equal(hash.buffersAtWorker, 0);
  });

  it('result() before the end is an error, not a wrong digest', () => {
    const hash = createThreadedHashStream();
    hash.write(Buffer.from('abc'));
    assert.throws(() => hash.result(), /did not finish/);
    hash.destroy();
  });
});
