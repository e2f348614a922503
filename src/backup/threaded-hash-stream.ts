/**
 * A pass-through stream that computes the SHA-256 of what goes by on a worker thread, so hashing
 * runs beside the main thread's own work on the same bytes (AES-GCM, relaying to zstd) instead
 * of after it: a restore's check pass over a 400 MB artifact drops from the sum of both to about
 * the larger one. Same interface as HashStream.
 *
 * Each chunk is copied once and its copy moved (not cloned) to the worker. At most
 * `maxInFlight` bytes are waiting there: past that the stream stops taking input until the worker
 * catches up, so memory stays bounded when the main thread is the faster side (an unencrypted
 * artifact read from the page cache).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { DbwardError } from '../core/errors.js';
import type { HashResult } from './hash-stream.js';

const maxInFlight = 16 * 1024 * 1024;

// Plain CommonJS evaluated by the worker: no file to find, whether dbward runs from dist or src.
const workerSource = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (chunk) => {
  if (chunk === null) {
    parentPort.postMessage({ sha256: hash.digest('hex') });
    return;
  }
  hash.update(chunk);
  parentPort.postMessage(chunk.byteLength);
});
`;

export class ThreadedHashStream extends Transform {
  readonly #worker: Worker;
  #bytes = 0;
  #inFlight = 0;
  #sha256: string | undefined;
  /** The held-back callback of a chunk that went past maxInFlight. */
  #waiting: (() => void) | undefined;
  /** _flush's callback, once the digest is asked for. */
  #finishing: (() => void) | undefined;
  #failed: Error | undefined;

  constructor() {
    super();
    this.#worker = new Worker(workerSource, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', (message: number | { sha256: string }) => {
      if (typeof message === 'number') {
        this.#inFlight -= message;
        if (this.#inFlight <= maxInFlight / 2) this.#wake();
        return;
      }
      this.#sha256 = message.sha256;
      this.#finish();
    });
    this.#worker.on('error', (err) => {
      this.#failed = err;
      this.#wake();
      this.#finish();
      this.destroy(err);
    });
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes handed to the worker and not hashed yet (at most maxInFlight plus one chunk). */
  get waitingBytes(): number {
    return this.#inFlight;
  }

  get sha256(): string | undefined {
    return this.#sha256;
  }

  result(): HashResult {
    if (this.#sha256 === undefined) {
      throw new DbwardError('E_HASH_UNFINISHED', 'The checksum is not available: the stream did not finish.');
    }
    return { bytes: this.#bytes, sha256: this.#sha256 };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const copy = new Uint8Array(chunk); // its own ArrayBuffer, exactly the chunk, to hand over
    this.#bytes += copy.byteLength;
    this.#inFlight += copy.byteLength;
    this.#worker.postMessage(copy, [copy.buffer]);
    if (this.#inFlight <= maxInFlight) {
      callback(null, chunk);
      return;
    }
    this.#waiting = () => callback(this.#failed ?? null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#finishing = () => {
      void this.#worker.terminate();
      callback(this.#failed ?? (this.#sha256 === undefined ? new Error('hash worker stopped') : null));
    };
    this.#worker.postMessage(null);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    void this.#worker.terminate();
    callback(error);
  }

  #finish(): void {
    const finishing = this.#finishing;
    this.#finishing = undefined;
    finishing?.();
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }
}

export function createThreadedHashStream(): ThreadedHashStream {
  return new ThreadedHashStream();
}
