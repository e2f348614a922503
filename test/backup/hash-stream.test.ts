/** The pass-through byte counter + SHA-256 used to checksum stored artifacts on the way. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { createHashStream, hashReadable } from '../../src/backup/hash-stream.js';

const emptySha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const abcSha256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

function collector(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      into.push(chunk);
      callback();
    },
  });
}

describe('hash stream', () => {
  it('knows the SHA-256 of nothing and of "abc"', async () => {
    for (const [input, expected] of [
      [[], emptySha256],
      [[Buffer.from('a'), Buffer.from('bc')], abcSha256],
    ] as const) {
      const h = createHashStream();
      await pipeline(Readable.from(input), h, collector([]));
      assert.deepEqual(h.result(), { bytes: input.reduce((n, b) => n + b.length, 0), sha256: expected });
    }
  });

  it('passes data through unchanged while counting and hashing it', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const chunks: Buffer[] = [];
    const h = createHashStream();
    const pieces = [];
    for (let i = 0; i < data.length; i += 65_537) pieces.push(data.subarray(i, i + 65_537));
    await pipeline(Readable.from(pieces), h, collector(chunks));
    assert.deepEqual(Buffer.concat(chunks), data);
    assert.equal(h.bytes, data.length);
    assert.equal(h.sha256, createHash('sha256').update(data).digest('hex'));
  });

  it('has no checksum until the stream has finished (a cut-off stream has none)', async () => {
    const h = createHashStream();
    assert.equal(h.sha256, undefined);
    assert.throws(() => h.result(), { code: 'E_HASH_UNFINISHED' });
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('source failed'));
      },
    });
    await assert.rejects(pipeline(failing, h, collector([])), /source failed/);
    assert.equal(h.sha256, undefined);
    assert.throws(() => h.result(), { code: 'E_HASH_UNFINISHED' });
  });

  it('hashReadable checks a whole stream', async () => {
    assert.deepEqual(await hashReadable(Readable.from([Buffer.from('ab'), Buffer.from('c')])), {
      bytes: 3,
      sha256: abcSha256,
    });
    assert.deepEqual(await hashReadable(Readable.from([])), { bytes: 0, sha256: emptySha256 });
  });
});
