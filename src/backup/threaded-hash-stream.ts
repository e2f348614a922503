/**
 * A pass-through stream that computes the SHA-256 of what goes by on a worker thread, so hashing
 * runs beside the main thread's own work on the same bytes (AES-GCM, relaying to zstd) instead
 * of after it: a restore's check pass over a 400 MB artifact drops from the sum of both to about
 * the larger one. Same interface as HashStream.
 *
 * Memory stays flat: bytes travel in a fixed pool of 1 MiB buffers that are moved (not copied)
 * to the worker and back. A fresh buffer per chunk would leave the worker's heap to collect
 * hundreds of megabytes of moved buffers, which it does late (+70–90 MB peak RSS, measured).
 * When every buffer is with the worker, the stream takes no more input until one comes back.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { finishedHash, type HashResult } from './hash-stream.js';

const bufferBytes = 1024 * 1024;
/** Buffers in the pool (each 1 MiB): enough to keep the worker busy. */
export const hashPoolBuffers = 4;

// Plain CommonJS evaluated by the worker: no file to find, whether dbward runs from dist or src.
const workerSource = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (message) => {
  if (message === null) {
    parentPort.postMessage({ sha256: hash.digest('hex') });
    return;
  }
  hash.update(new Uint8Array(message.buffer, 0, message.length));
  parentPort.postMessage(message.buffer, [message.buffer]);
});
`;

export class ThreadedHashStream extends Transform {
  readonly #worker: Worker;
  /** Buffers back from the worker, ready to fill. */
  readonly #free: ArrayBuffer[] = [];
  #created = 0;
  #bytes = 0;
  #inFlight = 0;
  #sha256: string | undefined;
  /** The held-back rest of a chunk, waiting for a buffer to come back. */
  #waiting: (() => void) | undefined;
  /** _flush's callback, once the digest is asked for. */
  #finishing: (() => void) | undefined;
  #failed: Error | undefined;

  constructor() {
    super();
    this.#worker = new Worker(workerSource, {
      eval: true,
      // The worker only hashes: a small heap keeps its share of dbward’s memory small.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
    });
    this.#worker.unref();
    this.#worker.on('message', (message: ArrayBuffer | { sha256: string }) => {
      if (message instanceof ArrayBuffer) {
        this.#inFlight -= 1;
        this.#free.push(message);
        this.#wake();
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

  /** Buffers with the worker, not hashed yet (at most the pool's size). */
  get buffersAtWorker(): number {
    return this.#inFlight;
  }

  /** Buffers ever allocated (the pool never grows past its size). */
  get buffersAllocated(): number {
    return this.#created;
  }

  get sha256(): string | undefined {
    return this.#sha256;
  }

  /** `{ bytes, sha256 }`; throws if the stream has not finished. */
  result(): HashResult {
    return finishedHash(this.#bytes, this.#sha256);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    this.#send(chunk, 0, () => callback(this.#failed ?? null, chunk));
  }

  /** Hand `chunk` from `offset` on to the worker, a pool buffer at a time; then call `done`. */
  #send(chunk: Buffer, offset: number, done: () => void): void {
    while (offset < chunk.length) {
      if (this.#failed) return done();
      const buffer = this.#free.pop() ?? (this.#created < hashPoolBuffers ? this.#allocate() : undefined);
      if (!buffer) {
        this.#waiting = () => this.#send(chunk, offset, done);
        return;
      }
      const length = Math.min(bufferBytes, chunk.length - offset);
      new Uint8Array(buffer).set(chunk.subarray(offset, offset + length));
      offset += length;
      this.#inFlight += 1;
      this.#worker.postMessage({ buffer, length }, [buffer]);
    }
    done();
  }

  #allocate(): ArrayBuffer {
    this.#created += 1;
    return new ArrayBuffer(bufferBytes);
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
