/**
 * dbward-enc v1: authenticated streaming encryption of backup artifacts (docs/backups.md,
 * "Encryption format"). A STREAM construction, as in Tink's streaming AEAD and age's payload:
 *
 *   header   = "DBWENC1\n" | version (1) | chunk size (u32 BE) | salt (16) | nonce prefix (7) | key id (8)
 *   data key = HKDF-SHA256(master key, salt, "dbward backup v1 data key"), 32 bytes
 *   chunk i  = AES-256-GCM(data key, nonce = prefix | u32 BE i | final flag, aad = header) → ciphertext | tag (16)
 *
 * Every chunk holds exactly `chunk size` plaintext bytes except the last, which holds fewer (possibly
 * none: an empty input, or one that is a multiple of the chunk size, ends with an empty final chunk)
 * and alone carries the final flag. So a flipped byte fails that chunk's tag, reordered or dropped
 * chunks fail through the counter, a cut at a chunk boundary is caught because no chunk marked final
 * was seen, the header is bound to every chunk through the AAD, and a wrong key is recognised from
 * the key id in the header before anything is decrypted.
 */
import { createCipheriv, createDecipheriv, randomBytes, type Cipher, type Decipher } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { BackupKey } from './backup-key.js';

export const ENCRYPTION_MAGIC = Buffer.from('DBWENC1\n', 'latin1');
export const ENCRYPTION_VERSION = 1;
/** Header length: magic 8 + version 1 + chunk size 4 + salt 16 + nonce prefix 7 + key id 8. */
export const ENCRYPTION_HEADER_BYTES = 44;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** The largest chunk size accepted, in either direction (bounds memory for a hostile header). */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
export const TAG_BYTES = 16;
const SALT_BYTES = 16;
const NONCE_PREFIX_BYTES = 7;
const KEY_ID_BYTES = 8;
const MAX_CHUNK_INDEX = 0xffffffff;
const DATA_KEY_INFO = 'dbward backup v1 data key';

// Header field offsets.
const VERSION_AT = 8;
const CHUNK_SIZE_AT = 9;
const SALT_AT = 13;
const PREFIX_AT = SALT_AT + SALT_BYTES;
const KEY_ID_AT = PREFIX_AT + NONCE_PREFIX_BYTES;

/** What the manifest records about how an artifact is encrypted. Never includes key material. */
export interface EncryptionScheme {
  scheme: 'dbward-enc-v1';
  cipher: 'AES-256-GCM';
  chunkSize: number;
  kdf: 'HKDF-SHA256';
}

export function describeScheme(options: { chunkSize?: number } = {}): EncryptionScheme {
  return {
    scheme: 'dbward-enc-v1',
    cipher: 'AES-256-GCM',
    chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    kdf: 'HKDF-SHA256',
  };
}

// ---------------------------------------------------------------------------------------------
// Errors

const CORRUPT_HINT =
  'Do not restore from this copy. Fetch the artifact from storage again or use another backup; comparing its SHA-256 with the one in the manifest shows whether storage or the transfer damaged it.';

/** The artifact was encrypted with a different key than the one configured. */
export class BackupWrongKeyError extends DbwardError {
  readonly artifactKeyId: string;
  readonly configuredKeyId: string;

  constructor(artifactKeyId: string, configuredKeyId: string) {
    super(
      'E_BACKUP_WRONG_KEY',
      `this backup was encrypted with another key (key id ${artifactKeyId}); the configured key has id ${configuredKeyId}`,
      {
        exitCode: ExitCode.failed,
        hint: 'Configure the key this backup was made with (--key-file, DBWARD_BACKUP_KEY or the config); after a key rotation keep the old key to restore old backups. If you are sure the key is right, the artifact header is damaged: use another copy.',
      },
    );
    this.artifactKeyId = artifactKeyId;
    this.configuredKeyId = configuredKeyId;
  }
}

/** The artifact was modified or damaged: not a dbward artifact, a bad header, a failed chunk tag, extra data. */
export class BackupCorruptError extends DbwardError {
  /** The chunk that failed authentication, when one did. */
  readonly chunk: number | undefined;

  constructor(message: string, options: { chunk?: number; hint?: string } = {}) {
    super('E_BACKUP_CORRUPT', message, { exitCode: ExitCode.failed, hint: options.hint ?? CORRUPT_HINT });
    this.chunk = options.chunk;
  }
}

/** The artifact ends early: it was cut short in transfer or storage. */
export class BackupTruncatedError extends DbwardError {
  /** How many chunks authenticated before the end. */
  readonly chunks: number;

  constructor(message: string, chunks: number) {
    super('E_BACKUP_TRUNCATED', message, {
      exitCode: ExitCode.failed,
      hint: 'The upload or download was interrupted. Fetch the artifact from storage again, or use another backup.',
    });
    this.chunks = chunks;
  }
}

/** The artifact is in a format version this dbward does not know (it was written by a newer one). */
export class BackupUnsupportedError extends DbwardError {
  constructor(message: string) {
    super('E_BACKUP_UNSUPPORTED', message, {
      exitCode: ExitCode.failed,
      hint: 'Upgrade dbward to restore or verify this backup.',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Format pieces

/**
 * How much one cipher update() takes at a time. Node returns every update()'s output in a freshly
 * allocated buffer; at 128 KiB and above glibc maps and unmaps each one, so a 1 MiB chunk in one
 * update() ran AES-256-GCM at a third of its speed (400 MiB: 0.89 s against 0.28 s in 64 KiB
 * pieces, Node 20 on this project's CI machine).
 */
const UPDATE_PIECE_BYTES = 64 * 1024;

/** `data` through cipher.update() in pieces of UPDATE_PIECE_BYTES; the outputs, in order. */
function updateInPieces(cipher: Cipher | Decipher, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += UPDATE_PIECE_BYTES) {
    const piece = cipher.update(data.subarray(at, at + UPDATE_PIECE_BYTES));
    if (piece.length > 0) out.push(piece);
  }
  return out;
}

/** The 12-byte nonce of chunk `index`: prefix (7) | index as u32 BE | final flag (1). */
export function chunkNonce(prefix: Buffer, index: number, final: boolean): Buffer {
  if (!Number.isInteger(index) || index < 0 || index > MAX_CHUNK_INDEX) {
    throw new DbwardError(
      'E_BACKUP_TOO_LARGE',
      `chunk counter overflow: dbward-enc v1 allows at most ${MAX_CHUNK_INDEX + 1} chunks per artifact`,
      { hint: 'Use a larger chunk size for backups this large.' },
    );
  }
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0, 0, NONCE_PREFIX_BYTES);
  nonce.writeUInt32BE(index, NONCE_PREFIX_BYTES);
  nonce[11] = final ? 0x01 : 0x00;
  return nonce;
}

function checkChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new DbwardError(
      'E_BACKUP_CHUNK_SIZE',
      `invalid encryption chunk size ${chunkSize}: expected a whole number of bytes from 1 to ${MAX_CHUNK_SIZE}`,
      { exitCode: ExitCode.usage },
    );
  }
}

/** The fields of a dbward-enc header. */
export interface EncryptionHeader {
  version: number;
  chunkSize: number;
  /** Hex of the 8-byte key id of the key the artifact was encrypted with. */
  keyId: string;
  salt: Buffer;
  noncePrefix: Buffer;
}

function notAnArtifact(): BackupCorruptError {
  return new BackupCorruptError(
    'not a dbward encrypted artifact: it does not start with the dbward-enc signature (DBWENC1)',
    {
      hint: 'Check that this is the encrypted artifact of a dbward backup (not a plain dump or another file). If it is, its first bytes are damaged: use another copy.',
    },
  );
}

/**
 * Parse and check the fixed part of a header (magic, version, chunk size). The key id is compared
 * by the caller. Throws the error a reader should report.
 */
export function readEncryptionHeader(bytes: Buffer): EncryptionHeader {
  if (bytes.length < ENCRYPTION_HEADER_BYTES) {
    const seen = Math.min(bytes.length, ENCRYPTION_MAGIC.length);
    if (!bytes.subarray(0, seen).equals(ENCRYPTION_MAGIC.subarray(0, seen))) throw notAnArtifact();
    throw new BackupTruncatedError(
      bytes.length === 0
        ? 'the artifact is empty: it was cut short before its header'
        : `the artifact ends inside its header (after ${bytes.length} of ${ENCRYPTION_HEADER_BYTES} bytes): it was cut short`,
      0,
    );
  }
  if (!bytes.subarray(0, ENCRYPTION_MAGIC.length).equals(ENCRYPTION_MAGIC)) throw notAnArtifact();
  const version = bytes[VERSION_AT]!;
  if (version > ENCRYPTION_VERSION) {
    throw new BackupUnsupportedError(
      `this artifact was written by a newer dbward (dbward-enc version ${version}; this dbward reads version ${ENCRYPTION_VERSION})`,
    );
  }
  if (version !== ENCRYPTION_VERSION) {
    throw new BackupCorruptError(`the artifact header is damaged: unknown dbward-enc version ${version}`);
  }
  const chunkSize = bytes.readUInt32BE(CHUNK_SIZE_AT);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new BackupCorruptError(
      `the artifact header is damaged: chunk size ${chunkSize} is outside 1–${MAX_CHUNK_SIZE}`,
    );
  }
  return {
    version,
    chunkSize,
    keyId: bytes.subarray(KEY_ID_AT, KEY_ID_AT + KEY_ID_BYTES).toString('hex'),
    salt: Buffer.from(bytes.subarray(SALT_AT, SALT_AT + SALT_BYTES)),
    noncePrefix: Buffer.from(bytes.subarray(PREFIX_AT, PREFIX_AT + NONCE_PREFIX_BYTES)),
  };
}

function byteRange(start: number, length: number): string {
  return length === 0 ? `empty, at byte ${start}` : `bytes ${start}–${start + length - 1}`;
}

// ---------------------------------------------------------------------------------------------
// Encryption

class EncryptStream extends Transform {
  readonly #header: Buffer;
  readonly #dataKey: Buffer;
  readonly #prefix: Buffer;
  readonly #chunkSize: number;
  /** Plaintext of the chunk being filled; sealed (non-final) as soon as it is full. */
  /** Plaintext of the chunk being filled, as slices of the input (sealed piece by piece, not copied). */
  #pending: Buffer[] = [];
  #pendingLength = 0;
  #index = 0;
  #headerSent = false;

  constructor(key: BackupKey, chunkSize: number) {
    super();
    checkChunkSize(chunkSize);
    this.#chunkSize = chunkSize;
    const salt = randomBytes(SALT_BYTES);
    this.#prefix = randomBytes(NONCE_PREFIX_BYTES);
    this.#header = Buffer.alloc(ENCRYPTION_HEADER_BYTES);
    ENCRYPTION_MAGIC.copy(this.#header, 0);
    this.#header[VERSION_AT] = ENCRYPTION_VERSION;
    this.#header.writeUInt32BE(chunkSize, CHUNK_SIZE_AT);
    salt.copy(this.#header, SALT_AT);
    this.#prefix.copy(this.#header, PREFIX_AT);
    key.idBytes.copy(this.#header, KEY_ID_AT);
    this.#dataKey = key.deriveKey(salt, DATA_KEY_INFO, 32);
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#sendHeader();
      const size = this.#chunkSize;
      let at = 0;
      while (at < data.length) {
        const n = Math.min(size - this.#pendingLength, data.length - at);
        this.#pending.push(data.subarray(at, at + n));
        this.#pendingLength += n;
        at += n;
        if (this.#pendingLength === size) this.#seal(false);
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#sendHeader();
      this.#seal(true);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** The artifact's header (known from the start; see BackupEncryption.header). */
  get header(): Buffer {
    return this.#header;
  }

  #sendHeader(): void {
    if (this.#headerSent) return;
    this.#headerSent = true;
    this.push(this.#header);
  }

  /** Encrypt the pending chunk and push it with its tag. */
  #seal(final: boolean): void {
    const plaintext = this.#pending;
    this.#pending = [];
    this.#pendingLength = 0;
    const cipher = createCipheriv(
      'aes-256-gcm',
      this.#dataKey,
      chunkNonce(this.#prefix, this.#index, final),
      {
        authTagLength: TAG_BYTES,
      },
    );
    cipher.setAAD(this.#header);
    for (const part of plaintext) for (const piece of updateInPieces(cipher, part)) this.push(piece);
    const rest = cipher.final();
    if (rest.length > 0) this.push(rest);
    this.push(cipher.getAuthTag());
    this.#index += 1;
  }
}

/**
 * A Transform that encrypts a byte stream into a dbward-enc v1 artifact. Buffers at most one chunk
 * of plaintext; works with `stream.pipeline` and respects backpressure.
 */
export function createEncryptStream(
  key: BackupKey,
  options: { chunkSize?: number } = {},
): Transform & { readonly header: Buffer } {
  return new EncryptStream(key, options.chunkSize ?? DEFAULT_CHUNK_SIZE);
}

// ---------------------------------------------------------------------------------------------
// Decryption

class DecryptStream extends Transform {
  readonly #key: BackupKey;
  readonly #discard: boolean;
  readonly #headerBytes = Buffer.alloc(ENCRYPTION_HEADER_BYTES);
  #headerLength = 0;
  #header: EncryptionHeader | undefined;
  #dataKey: Buffer | undefined;
  /** Size of a whole encrypted chunk (chunk size + tag), once the header is read. */
  #recordSize = 0;
  /**
   * The encrypted chunk being collected, as slices of the input (not copied: a chunk rarely lines
   * up with the reads, and copying every byte once more cost ~90 ms per 400 MB).
   */
  #parts: Buffer[] = [];
  #recordLength = 0;
  #index = 0;
  #plaintextBytes = 0;
  #failed = false;

  constructor(key: BackupKey, discard: boolean) {
    super();
    this.#key = key;
    this.#discard = discard;
  }

  /** The artifact's header once it was read (checked against the manifest by restore). */
  get header(): Buffer | undefined {
    return this.#header === undefined ? undefined : this.#headerBytes;
  }

  /** Chunks authenticated so far. */
  get chunks(): number {
    return this.#index;
  }

  /** Plaintext bytes authenticated so far. */
  get plaintextBytes(): number {
    return this.#plaintextBytes;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#failed) return callback();
    try {
      let at = 0;
      if (this.#header === undefined) {
        const n = Math.min(ENCRYPTION_HEADER_BYTES - this.#headerLength, data.length);
        data.copy(this.#headerBytes, this.#headerLength, 0, n);
        this.#headerLength += n;
        at = n;
        // Reject a file that is not an artifact from its first bytes, without waiting for more.
        const seen = Math.min(this.#headerLength, ENCRYPTION_MAGIC.length);
        if (!this.#headerBytes.subarray(0, seen).equals(ENCRYPTION_MAGIC.subarray(0, seen))) {
          throw notAnArtifact();
        }
        if (this.#headerLength < ENCRYPTION_HEADER_BYTES) return callback();
        this.#openHeader();
      }
      const size = this.#recordSize;
      while (at < data.length) {
        const n = Math.min(size - this.#recordLength, data.length - at);
        this.#parts.push(data.subarray(at, at + n));
        this.#recordLength += n;
        at += n;
        // A full-size encrypted chunk is never the final one (the final chunk is always shorter).
        if (this.#recordLength === size) this.#openCollected(false);
      }
      callback();
    } catch (err) {
      this.#failed = true;
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#failed) return callback();
    try {
      if (this.#header === undefined) {
        readEncryptionHeader(this.#headerBytes.subarray(0, this.#headerLength)); // throws the right error
        throw new BackupTruncatedError('the artifact ends inside its header: it was cut short', 0);
      }
      const left = this.#recordLength;
      if (left === 0) {
        throw new BackupTruncatedError(
          this.#index === 0
            ? 'the artifact ends after its header, before its first chunk: it was cut short'
            : `the artifact ends after chunk ${this.#index - 1} without its final chunk: it was cut short`,
          this.#index,
        );
      }
      if (left < TAG_BYTES) {
        throw new BackupTruncatedError(
          `the artifact ends in the middle of chunk ${this.#index} (${left} of at least ${TAG_BYTES} bytes): it was cut short`,
          this.#index,
        );
      }
      this.#openCollected(true);
      callback();
    } catch (err) {
      this.#failed = true;
      callback(err as Error);
    }
  }

  #openHeader(): void {
    const header = readEncryptionHeader(this.#headerBytes);
    // A wrong key is recognised here, from the header alone, before anything is decrypted.
    if (header.keyId !== this.#key.id) throw new BackupWrongKeyError(header.keyId, this.#key.id);
    this.#header = header;
    this.#dataKey = this.#key.deriveKey(header.salt, DATA_KEY_INFO, 32);
    this.#recordSize = header.chunkSize + TAG_BYTES;
  }

  /** Authenticate (and decrypt) the collected encrypted chunk, then start collecting the next. */
  #openCollected(final: boolean): void {
    const parts = this.#parts;
    const length = this.#recordLength;
    this.#parts = [];
    this.#recordLength = 0;
    const header = this.#header!;
    const index = this.#index;
    if (index > MAX_CHUNK_INDEX) {
      throw new BackupCorruptError(`the artifact has more chunks than dbward-enc v1 allows (${index + 1})`, {
        chunk: index,
      });
    }
    const plainLength = length - TAG_BYTES;
    const start = index * header.chunkSize;
    const decipher = createDecipheriv(
      'aes-256-gcm',
      this.#dataKey!,
      chunkNonce(header.noncePrefix, index, final),
      {
        authTagLength: TAG_BYTES,
      },
    );
    decipher.setAAD(this.#headerBytes);
    // The ciphertext is the parts up to plainLength; the tag, the rest (it may span two parts).
    const ciphertext: Buffer[] = [];
    const tag: Buffer[] = [];
    let at = 0;
    for (const part of parts) {
      const cut = Math.max(0, Math.min(part.length, plainLength - at));
      if (cut > 0) ciphertext.push(part.subarray(0, cut));
      if (cut < part.length) tag.push(part.subarray(cut));
      at += part.length;
    }
    decipher.setAuthTag(tag.length === 1 ? tag[0]! : Buffer.concat(tag));
    const plaintext = ciphertext.flatMap((part) => updateInPieces(decipher, part));
    try {
      decipher.final();
    } catch {
      throw new BackupCorruptError(
        final
          ? `authentication failed at chunk ${index}, the last one (${byteRange(start, plainLength)}): the artifact was modified or damaged, cut short inside this chunk, or has data appended after its end`
          : `authentication failed at chunk ${index} (${byteRange(start, plainLength)}): the artifact was modified or damaged`,
        { chunk: index },
      );
    }
    // GCM's decipher.update() returns plaintext before the tag is checked; this stream holds it
    // back until final() above has verified the chunk's tag. So no unauthenticated byte is ever
    // emitted: a consumer sees whole authenticated chunks or an error. (A consumer that must not
    // act on any byte before the WHOLE artifact is verified, like restore, runs verifyEncrypted first.)
    this.#index = index + 1;
    this.#plaintextBytes += plainLength;
    if (!this.#discard) for (const piece of plaintext) this.push(piece);
  }
}

/**
 * A Transform that decrypts a dbward-enc v1 artifact. Fails with {@link BackupWrongKeyError}
 * from the header alone, {@link BackupCorruptError} naming the chunk whose tag fails, and
 * {@link BackupTruncatedError} when the input ends without a final chunk. Emits only
 * authenticated plaintext, chunk by chunk; buffers at most one encrypted chunk.
 * With `discard`, it only authenticates: nothing is emitted.
 */
export function createDecryptStream(
  key: BackupKey,
  options: { discard?: boolean } = {},
): Transform & { readonly header: Buffer | undefined } {
  return new DecryptStream(key, options.discard === true);
}

/**
 * Read a whole artifact and check every chunk, its order and its end, without producing output.
 * Restore runs this before it touches the target database.
 */
export async function verifyEncrypted(
  source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  key: BackupKey,
): Promise<{ chunks: number; plaintextBytes: number }> {
  const decrypt = new DecryptStream(key, true);
  const sink = new Writable({
    write(_chunk: unknown, _encoding: BufferEncoding, callback: () => void) {
      callback();
    },
  });
  await pipeline(source, decrypt, sink);
  return { chunks: decrypt.chunks, plaintextBytes: decrypt.plaintextBytes };
}
