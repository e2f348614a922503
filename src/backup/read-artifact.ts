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
import { createHashStream, type HashStream } from './hash-stream.js';
import { createThreadedHashStream, type ThreadedHashStream } from './threaded-hash-stream.js';
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
 * How a read proves the stored bytes are the manifest's artifact:
 * - `sha256`: their size and SHA-256 against the manifest;
 * - `fast`: the same for an unencrypted artifact; for an encrypted one whose manifest records its
 *   header, the size and that header alone, because the decryption already authenticates every
 *   chunk, their order and the final-chunk marker under the header (AES-GCM tags: a flipped,
 *   dropped or appended byte, a cut, another key are all caught) and the header's random salt
 *   names this one artifact. That is a SHA-256 pass less (~0.3 s per 400 MB, on the critical
 *   path of a restore);
 * - `none`: nothing beyond the decryption's own checks (a second read of a proven artifact).
 */
export type Proof = 'sha256' | 'fast' | 'none';

/** Counts what goes by (the `fast` proof of an encrypted artifact). */
class SizeStream extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

type ProofStream = HashStream | ThreadedHashStream | SizeStream;

/**
 * The stage that proves the stored bytes: a SHA-256, or for `fast` on an encrypted artifact whose
 * manifest records its header, a byte count (the decryption and the header check do the rest).
 */
function proofStream(proof: Proof, manifest: BackupManifest, onWorker: boolean): ProofStream | undefined {
  if (proof === 'none') return undefined;
  if (proof === 'fast' && manifest.encryption?.header !== undefined) return new SizeStream();
  return onWorker ? createThreadedHashStream() : createHashStream();
}

/**
 * Throws E_BACKUP_CORRUPT unless the bytes `proof` saw (and, for the byte count, the header the
 * decryption read, which every chunk's tag covers) are the ones `manifest` describes.
 */
function provenBy(proof: ProofStream, manifest: BackupManifest, header: Buffer | undefined): void {
  if (proof instanceof SizeStream) {
    if (proof.bytes !== manifest.storedBytes) {
      throw new BackupCorruptError(
        `Backup ${manifest.id}: the stored artifact (${proof.bytes} bytes) is not the one the manifest describes (${manifest.storedBytes} bytes).`,
      );
    }
    if (header?.toString('hex') !== manifest.encryption?.header) {
      throw new BackupCorruptError(
        `Backup ${manifest.id}: the stored artifact is another encrypted artifact than the one the manifest describes (its header differs).`,
      );
    }
    return;
  }
  const { bytes, sha256 } = proof.result();
  if (bytes !== manifest.storedBytes || sha256 !== manifest.sha256) {
    throw new BackupCorruptError(
      `Backup ${manifest.id}: the stored artifact (${bytes} bytes, SHA-256 ${sha256.slice(0, 12)}…) is not the one the manifest describes (${manifest.storedBytes} bytes, ${manifest.sha256.slice(0, 12)}…).`,
    );
  }
}

/**
 * Open `manifest`'s artifact as the raw dump stream — or, with `decompress: false`, as the
 * decrypted but still compressed stream (for checks that need no raw bytes). `prove` (default
 * `sha256`) says how `done` proves the artifact; `none` is for a second read of an artifact that
 * was proven already and may be read only in part.
 */
export async function openPlainArtifact(
  storage: BackupStorage,
  manifest: BackupManifest,
  key: BackupKey | null,
  options: { decompress?: boolean; prove?: Proof; hashOnWorker?: boolean } = {},
): Promise<PlainArtifact> {
  const readKey = keyFor(manifest, key);
  const source = await storage.openArtifact(manifest);
  const hash = proofStream(options.prove ?? 'sha256', manifest, options.hashOnWorker === true);
  const decrypt = readKey ? createDecryptStream(readKey) : undefined;
  const out = new PassThrough();
  const flowing = pipeline([
    source,
    ...(hash ? [hash] : []),
    ...(decrypt ? [decrypt] : []),
    ...(options.decompress === false ? [] : [createZstdDecompressStream()]),
    out,
  ]);
  const done = flowing.then(() => {
    if (hash) provenBy(hash, manifest, decrypt?.header);
  });
  // The consumer may finish (and settle) first; `done` is awaited by the caller.
  done.catch(() => {});
  return { stream: out, done };
}

/**
 * Read the whole artifact and prove it is the one the backup stored (the `fast` proof): an
 * encrypted artifact by every chunk's tag, their order and the final-chunk marker (which also
 * catches an artifact and manifest replaced together by someone without the key), its size and
 * its header against the manifest (older manifests: its SHA-256); an unencrypted one by its size and SHA-256 against the manifest (recorded after zstd had
 * succeeded, so a match proves every frame intact). With `spoolTo`, the raw dump is also
 * decompressed into that file, for a tool that needs one; without, nothing is decompressed.
 * Resolves with the bytes written (0 without a spool); rejects saying which check failed, and
 * removes a partial spool file.
 */
export async function checkArtifact(
  storage: BackupStorage,
  manifest: BackupManifest,
  key: BackupKey | null,
  spoolTo?: string,
): Promise<{ rawBytes: number }> {
  if (spoolTo === undefined) {
    await proveArtifact(storage, manifest, key);
    return { rawBytes: 0 };
  }
  // The check pass is the one read with nothing else to do: hashing beside the decryption, on
  // a worker, shortens it. (A load pass waits on the database; a worker would only add memory.)
  const artifact = await openPlainArtifact(storage, manifest, key, { prove: 'fast', hashOnWorker: true });
  let rawBytes = 0;
  const counter = countingStream((n) => {
    rawBytes += n;
  });
  const sink = createWriteStream(spoolTo, { mode: 0o600 });
  try {
    await settleAll({ read: pipeline(artifact.stream, counter, sink), artifact: artifact.done }, () =>
      artifact.stream.destroy(),
    );
  } catch (err) {
    await rm(spoolTo, { force: true });
    throw err;
  }
  return { rawBytes };
}

/**
 * The check without output: storage → the proof → authentication of every chunk, with nothing
 * decompressed or passed on. Each stage does only what the proof needs, since this pass runs
 * with the database waiting: the decryption keeps no plaintext and no stream follows it
 * (through openPlainArtifact, with a SHA-256 on a worker, the same pass took twice as long).
 */
async function proveArtifact(
  storage: BackupStorage,
  manifest: BackupManifest,
  key: BackupKey | null,
): Promise<void> {
  const readKey = keyFor(manifest, key);
  const source = await storage.openArtifact(manifest);
  const proof = proofStream('fast', manifest, false)!;
  const decrypt = readKey ? createDecryptStream(readKey, { discard: true }) : undefined;
  const sink = new Writable({
    write(_chunk: Buffer, _encoding, callback) {
      callback();
    },
  });
  await pipeline([source, proof, ...(decrypt ? [decrypt] : []), sink]);
  provenBy(proof, manifest, decrypt?.header);
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
