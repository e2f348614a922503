/**
 * A pass-through stream that counts bytes and computes their SHA-256 on the way, so a backup
 * pipeline learns the size and checksum of what it stored without reading it twice.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { DbwardError } from '../core/errors.js';

export interface HashResult {
  /** How many bytes went through. */
  bytes: number;
  /** Their SHA-256, lowercase hex. */
  sha256: string;
}

/** The result of a hashing stream, or E_HASH_UNFINISHED when it never reached its end. */
export function finishedHash(bytes: number, sha256: string | undefined): HashResult {
  if (sha256 === undefined) {
    throw new DbwardError('E_HASH_UNFINISHED', 'The checksum is not available: the stream did not finish.');
  }
  return { bytes, sha256 };
}

export class HashStream extends Transform {
  #hash: Hash = createHash('sha256');
  #bytes = 0;
  #sha256: string | undefined;

  /** Bytes seen so far (final once the stream has finished). */
  get bytes(): number {
    return this.#bytes;
  }

  /** The SHA-256 (hex) once the stream has finished, undefined before. */
  get sha256(): string | undefined {
    return this.#sha256;
  }

  /** `{ bytes, sha256 }`; throws if the stream has not finished (the end was never reached). */
  result(): HashResult {
    return finishedHash(this.#bytes, this.#sha256);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#sha256 = this.#hash.digest('hex');
    callback();
  }
}

export function createHashStream(): HashStream {
  return new HashStream();
}

/** Read `source` to its end and return its size and SHA-256 (e.g. to check a stored artifact). */
export async function hashReadable(source: Readable | AsyncIterable<Buffer>): Promise<HashResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(source, async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  });
  return { bytes, sha256: hash.digest('hex') };
}
