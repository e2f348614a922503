/**
 * The raw dump of a stored backup, for a restore's load pass, offered two ways; the engine role
 * picks one (see LoadContext):
 *
 * - as a stream (`stream`): storage → SHA-256 → decryption → zstd → node → the role. Decompression
 *   starts on the first read.
 * - straight into a tool (`pipeInto`): node decrypts and feeds zstd, and zstd writes into the
 *   tool's stdin itself. The raw dump — about three times the stored size — never passes through
 *   node, which saves a core-second or more per gigabyte on a restore that is already CPU-bound.
 *
 * Progress is counted on the compressed bytes and scaled to raw bytes, so it works both ways.
 */
import { Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackupStorage } from '../storage/storage.js';
import type { BackupKey } from './backup-key.js';
import type { BackupManifest } from './manifest.js';
import { countingStream, openPlainArtifact, type Proof } from './read-artifact.js';
import { createZstdDecompressStream, decompressInto, type ZstdStream } from './zstd-stream.js';

export interface RawSource {
  /** The raw dump as a stream (lazy: nothing is decompressed until it is read). */
  stream: Readable;
  /**
   * Send the raw dump into a spawned tool's stdin instead; call at most once, and before reading
   * `stream`. With `through`, it passes through node and that stage on the way.
   */
  pipeInto(stdin: Writable, through?: Transform): void;
  /**
   * Settles once the artifact was read to its end and proven (size, SHA-256, decryption) and the
   * decompressor finished; rejects saying what failed. Resolves at once if neither way was used.
   */
  done(): Promise<void>;
  /** Stop reading (something else failed). */
  destroy(): void;
  /**
   * Stop reading because the consumer has what it needs (a tool that exited successfully before
   * the end of its input, like pg_restore with a list of early entries): done() then resolves once
   * the decompressor is gone, whatever the cut-off pipe made it report.
   */
  stop(): void;
}

export interface RawSourceOptions {
  onProgress?: (rawBytes: number) => void;
  /** How done() proves the artifact (read-artifact.ts, Proof); default `sha256`. */
  prove?: Proof;
}

export async function openRawSource(
  storage: BackupStorage,
  manifest: BackupManifest,
  key: BackupKey | null,
  { onProgress, prove = 'sha256' }: RawSourceOptions = {},
): Promise<RawSource> {
  const artifact = await openPlainArtifact(storage, manifest, key, { decompress: false, prove });
  let compressed = 0;
  // The decrypted stream is the stored one less 16-byte tags and a small header: close enough to
  // scale progress by; the exact total is reported at the end.
  const scale = manifest.storedBytes > 0 ? manifest.rawBytes / manifest.storedBytes : 1;
  const counted = artifact.stream.pipe(
    countingStream((n) => {
      compressed += n;
      onProgress?.(Math.min(manifest.rawBytes, Math.round(compressed * scale)));
    }),
  );
  artifact.stream.once('error', (err) => counted.destroy(err));

  let used: Promise<void> | undefined;
  let stopped = false;
  let zstd: ZstdStream | undefined;
  let kill: (() => void) | undefined;
  const startStream = (): ZstdStream => {
    const decompressor = createZstdDecompressStream();
    used = pipeline(counted, decompressor).then(() => undefined);
    // done() reports it; until then (or if a failure elsewhere ends the restore first) it must
    // not surface as an unhandled rejection, which would end the process with a stack trace.
    used.catch(() => undefined);
    return decompressor;
  };
  const stream = new Readable({
    read() {
      if (zstd) {
        zstd.resume();
        return;
      }
      if (used) {
        this.destroy(new Error('The raw dump was already sent straight into a tool.'));
        return;
      }
      zstd = startStream();
      zstd.on('data', (chunk: Buffer) => {
        if (!stream.push(chunk)) zstd?.pause();
      });
      zstd.once('end', () => stream.push(null));
      zstd.once('error', (err) => stream.destroy(err));
    },
    destroy(err, callback) {
      zstd?.destroy();
      callback(err);
    },
  });

  function destroy(): void {
    artifact.stream.destroy();
    counted.destroy();
    stream.destroy();
    kill?.();
  }

  return {
    stream,
    pipeInto(stdin, through) {
      if (used) throw new Error('The raw dump is already being read.');
      if (through) {
        const decompressor = createZstdDecompressStream();
        kill = () => decompressor.destroy();
        used = pipeline(counted, decompressor, through, stdin).then(() => undefined);
        used.catch(() => undefined);
        return;
      }
      const pipe = decompressInto(stdin);
      kill = pipe.kill;
      const fed = pipeline(counted, pipe.stdin).catch((err: unknown) => {
        pipe.kill();
        throw err;
      });
      used = Promise.all([fed, pipe.exited]).then(() => undefined);
      used.catch(() => undefined);
    },
    async done() {
      if (stopped) {
        await Promise.allSettled([used, artifact.done]);
        return;
      }
      if (!used) {
        counted.destroy();
        artifact.stream.destroy();
        return;
      }
      await Promise.all([used, artifact.done]);
    },
    destroy,
    stop() {
      stopped = true;
      destroy();
    },
  };
}
