/**
 * The compressed dump on its way to storage, counted, with its first bytes decompressed again
 * into a side process: for a dump tool that writes straight into the compressor
 * (BackupContext.directOutput), this is where an end-marker check that reads the head of the raw
 * dump (`pg_restore --list` reading the table of contents) gets it.
 *
 * The side consumer never slows the backup: it is fed without waiting for it, up to a cap, and no
 * longer once it stops reading (pg_restore --list exits as soon as it has the TOC, and the side
 * zstd then exits with a broken pipe, which is expected). Its own outcome is not checked: the
 * consumer's exit status is what the dump checks.
 */
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { decompressInto, type ZstdPipe } from './zstd-stream.js';

/** Compressed bytes fed to the side decompressor at most (≈ 25 MB of raw dump; a TOC is smaller). */
export const headFeedLimit = 8 * 1024 * 1024;

export class HeadTee extends Transform {
  /** Compressed bytes that went by. */
  bytes = 0;
  #side: ZstdPipe | undefined;
  #feeding = false;

  /** Decompress the head into `sink` (another process's stdin; node's handle on it is closed). */
  pipeHeadInto(sink: Writable): void {
    if (this.#side) throw new Error('pipeHeadInto may be called once');
    const side = decompressInto(sink);
    this.#side = side;
    this.#feeding = this.bytes === 0;
    if (!this.#feeding) side.stdin.end(); // too late: the head went by already
    void side.exited.catch(() => undefined).finally(() => this.#stop());
  }

  /** Kill the side decompressor (the backup failed). */
  kill(): void {
    this.#stop();
    this.#side?.kill();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#feeding) {
      this.#side!.stdin.write(chunk);
      if (this.bytes >= headFeedLimit) this.#stop();
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#stop();
    callback();
  }

  #stop(): void {
    if (!this.#feeding) return;
    this.#feeding = false;
    this.#side!.stdin.end();
  }
}
