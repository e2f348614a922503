/**
 * Read a stored backup back as the raw dump: storage → SHA-256 → decryption (authenticated, chunk
 * by chunk) → zstd decompression (which checks its own frame checksums). Verification streams this
 * straight into a scratch copy; restore first reads the whole artifact once with
 * {@link checkArtifact}, so a flipped byte, a truncated file or a wrong key is found before a
 * single byte reaches the target database.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConfigError } from '../core/errors.js';
import type { BackupStorage } from '../storage/storage.js';
import type { BackupKey } from './backup-key.js';
import { BackupCorruptError, BackupWrongKeyError, createDecryptStream } from './encryption.js';
import { createHashStream } from './hash-stream.js';
import { createThreadedHashStream } from './threaded-hash-stream.js';
import type { BackupManifest } from './manifest.js';
import { settleAll } from './pipeline-errors.js';
import { createZstdDecompressStream } from './zstd-stream.js';

export interface PlainArtifact {
  /** The raw dump bytes; read to the end (or destroy) it. */
  stream: Readable;
  /**
   * Settles once the whole artifact went through: rejects with the decryption or decompression
   * error, or with E_BACKUP_CORRUPT when the stored bytes differ from the manifest's SHA-256.
   */
  done: Promise<void>;
}

/**
 * The key to read `manifest`'s artifact with: null for an unencrypted backup. Throws when the backup
 * is encrypted and no key is configured, or the configured key is not the one it was made with.
 */
export function keyFor(manifest: BackupManifest, key: BackupKey | null): BackupKey | null {
  if (!manifest.encryption) return null;
  if (!key) {
    throw new ConfigError(
      `Backup ${manifest.id} is encrypted (key id ${manifest.encryption.keyId}) and no backup key is configured.`,
      { hint: 'Pass --key-file, set DBWARD_BACKUP_KEY, or set backups.key/keyFile in the config.' },
    );
  }
  if (key.id !== manifest.encryption.keyId) throw new BackupWrongKeyError(manifest.encryption.keyId, key.id);
  return key;
}

/**
 * Open `manifest`'s artifact as the raw dump stream — or, with `decompress: false`, as the
 * decrypted but still compressed stream (for checks that need no raw bytes). With `prove: false`
 * the size and SHA-256 are not checked (decryption still authenticates every chunk it releases):
 * for a second read of an artifact that was proven already and may be read only in part.
 */
export async function openPlainArtifact(
  storage: BackupStorage,
  manifest: BackupManifest,
  key: BackupKey | null,
  options: { decompress?: boolean; prove?: boolean; hashOnWorker?: boolean } = {},
): Promise<PlainArtifact> {
  const readKey = keyFor(manifest, key);
  const source = await storage.openArtifact(manifest);
  const hash =
    options.prove === false
      ? undefined
      : options.hashOnWorker
        ? createThreadedHashStream()
        : createHashStream();
  const out = new PassThrough();
  const flowing = pipeline([
    source,
    ...(hash ? [hash] : []),
    ...(readKey ? [createDecryptStream(readKey)] : []),
    ...(options.decompress === false ? [] : [createZstdDecompressStream()]),
    out,
  ]);
  const done = flowing.then(() => {
    if (!hash) return;
    const { bytes, sha256 } = hash.result();
    if (bytes !== manifest.storedBytes || sha256 !== manifest.sha256) {
      throw new BackupCorruptError(
        `Backup ${manifest.id}: the stored artifact (${bytes} bytes, SHA-256 ${sha256.slice(0, 12)}…) is not the one the manifest describes (${manifest.storedBytes} bytes, ${manifest.sha256.slice(0, 12)}…).`,
      );
    }
  });
  // The consumer may finish (and settle) first; `done` is awaited by the caller.
  done.catch(() => {});
  return { stream: out, done };
}

/**
 * Read the whole artifact and prove it is the one the backup stored: its size and SHA-256 against
 * the manifest (recorded after zstd and the encryption had succeeded, so a match proves every
 * frame intact), and for an encrypted artifact every chunk's tag and the final-chunk marker (which
 * also catches an artifact and manifest replaced together by someone without the key). With
 * `spoolTo`, the raw dump is also decompressed into that file, for a tool that needs one; without,
 * nothing is decompressed. Resolves with the bytes written (0 without a spool); rejects saying
 * which check failed, and removes a partial spool file.
 */
export async function checkArtifact(
  storage: BackupStorage,
  manifest: BackupManifest,
  key: BackupKey | null,
  spoolTo?: string,
): Promise<{ rawBytes: number }> {
  // The check pass is the one read with nothing else to do: hashing beside the decryption, on
  // a worker, shortens it. (A load pass waits on the database; a worker would only add memory.)
  const artifact = await openPlainArtifact(storage, manifest, key, {
    decompress: spoolTo !== undefined,
    hashOnWorker: true,
  });
  let rawBytes = 0;
  const counter = countingStream((n) => {
    rawBytes += n;
  });
  const sink =
    spoolTo === undefined
      ? new Writable({
          write(_chunk: Buffer, _encoding, callback) {
            callback();
          },
        })
      : createWriteStream(spoolTo, { mode: 0o600 });
  try {
    await settleAll({ read: pipeline(artifact.stream, counter, sink), artifact: artifact.done }, () =>
      artifact.stream.destroy(),
    );
  } catch (err) {
    if (spoolTo !== undefined) await rm(spoolTo, { force: true });
    throw err;
  }
  return { rawBytes };
}

/** A pass-through that reports how many bytes went by. */
export function countingStream(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      onBytes(chunk.length);
      callback(null, chunk);
    },
  });
}
