/**
 * The backup master key: where it comes from, how it is written, and how it stays secret.
 *
 * A key is 32 random bytes, written as 64 hexadecimal characters or 44 base64 characters. It comes
 * from a key file (`--key-file`), the `DBWARD_BACKUP_KEY` environment variable or the config —
 * never from the command line, where it would land in shell history and `ps` output. The bytes
 * live in a private field of {@link BackupKey}; what can be printed (JSON, `util.inspect`,
 * `String()`, error messages) shows only the key id, a fingerprint that recognises the key an
 * artifact was encrypted with without revealing anything about the key.
 */
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { ConfigError } from '../core/errors.js';
import { registerSecret } from '../core/redact.js';

/** The environment variable that holds the backup key. */
export const BACKUP_KEY_ENV = 'DBWARD_BACKUP_KEY';

/** A backup key is this many bytes. */
export const BACKUP_KEY_BYTES = 32;

/** The HMAC label whose output (first 8 bytes) is a key's id. Part of the dbward-enc v1 format. */
const KEY_ID_LABEL = 'dbward backup key id';
const KEY_ID_BYTES = 8;

/** A key file larger than this is not a key file; it is not read. */
const MAX_KEY_FILE_BYTES = 4096;

const KEY_FORMS = `32 bytes written as ${BACKUP_KEY_BYTES * 2} hexadecimal characters or 44 base64 characters`;
const GENERATE_HINT =
  'Generate a key with `openssl rand -base64 32` and keep a copy somewhere safe: backups cannot be restored without it.';

/**
 * A loaded backup master key. The bytes never leave this object: callers derive what they need
 * with {@link BackupKey.deriveKey}, and every printable form shows only {@link BackupKey.id}.
 */
export class BackupKey {
  readonly #bytes: Buffer;
  /** The key id: hex of the first 8 bytes of HMAC-SHA256(key, "dbward backup key id"). Not secret. */
  readonly id: string;
  /** Where the key came from, for messages: `DBWARD_BACKUP_KEY`, `key file /path`, `config`… */
  readonly source: string;

  private constructor(bytes: Buffer, source: string) {
    this.#bytes = bytes;
    this.source = source;
    this.id = createHmac('sha256', bytes)
      .update(KEY_ID_LABEL)
      .digest()
      .subarray(0, KEY_ID_BYTES)
      .toString('hex');
    // The text forms are secrets too: any message that happens to contain them is redacted.
    registerSecret(bytes.toString('hex'));
    registerSecret(bytes.toString('base64'));
  }

  /** A key from its 32 bytes (copied). */
  static fromBytes(bytes: Uint8Array, source = 'bytes'): BackupKey {
    if (bytes.length !== BACKUP_KEY_BYTES) {
      throw new ConfigError(
        `the backup key from ${source} is not valid: expected ${BACKUP_KEY_BYTES} bytes, found ${bytes.length}`,
        { hint: GENERATE_HINT },
      );
    }
    return new BackupKey(Buffer.from(bytes), source);
  }

  /** A key from its text form (hex or base64; surrounding whitespace is ignored). */
  static parse(text: string, source: string, options: { file?: string; configKey?: string } = {}): BackupKey {
    const trimmed = text.trim();
    const bytes = decodeKey(trimmed);
    if (bytes === undefined) {
      // Not printed anywhere, but a long malformed value is probably a damaged real key: make sure
      // it cannot leak through some other message either. Short values are left alone so that
      // ordinary words are not redacted everywhere.
      if (trimmed.length >= 12) registerSecret(trimmed);
      throw new ConfigError(
        trimmed.length === 0
          ? `the backup key from ${source} is empty`
          : `the backup key from ${source} is not valid: expected ${KEY_FORMS}, found ${describeShape(trimmed)}`,
        { hint: GENERATE_HINT, file: options.file, key: options.configKey },
      );
    }
    return new BackupKey(bytes, source);
  }

  /** The key id as its 8 bytes, as stored in an encrypted artifact's header. */
  get idBytes(): Buffer {
    return Buffer.from(this.id, 'hex');
  }

  /** HKDF-SHA256 of the master key: a subkey for `salt` and `info`. The master key itself never leaves. */
  deriveKey(salt: Uint8Array, info: string, length = 32): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#bytes, salt, info, length));
  }

  /** True when both keys are the same bytes (compared through their ids). */
  equals(other: BackupKey): boolean {
    return other.id === this.id;
  }

  toJSON(): { keyId: string; source: string } {
    return { keyId: this.id, source: this.source };
  }

  toString(): string {
    return `BackupKey(id ${this.id})`;
  }

  [inspect.custom](): string {
    return `BackupKey { id: '${this.id}', source: '${this.source}' }`;
  }
}

/** 32 bytes from 64 hex characters or 44 base64 characters; undefined for anything else. */
function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) {
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length === BACKUP_KEY_BYTES) return bytes;
  }
  return undefined;
}

/** What a malformed key looks like, without revealing any of it. */
function describeShape(text: string): string {
  const kind = /^[0-9a-fA-F]+$/.test(text)
    ? 'hexadecimal'
    : /^[A-Za-z0-9+/]+={0,2}$/.test(text)
      ? 'base64-like'
      : 'other';
  return `${text.length} ${kind === 'other' ? '' : `${kind} `}characters`;
}

export interface LoadBackupKeyOptions {
  /** The environment to read `DBWARD_BACKUP_KEY` from; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** A file holding the key (`--key-file`). Must not be accessible by group or others. */
  keyFile?: string;
  /** The key from the config file. */
  configKey?: string;
  /** The config setting the key came from, for messages (e.g. `backup.key`). */
  configKeyName?: string;
}

/**
 * The configured backup key, or null when none is configured. Sources, first match wins:
 * `keyFile` (the explicit `--key-file`), then `DBWARD_BACKUP_KEY` (an empty value counts as
 * unset), then `configKey`. A malformed key, an unreadable key file or one that group or others
 * can access is a {@link ConfigError} (exit 2) whose message never contains the key.
 */
export function loadBackupKey(options: LoadBackupKeyOptions = {}): BackupKey | null {
  if (options.keyFile !== undefined) {
    return BackupKey.parse(readKeyFile(options.keyFile), `key file ${options.keyFile}`, {
      file: options.keyFile,
    });
  }
  const fromEnv = (options.env ?? process.env)[BACKUP_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return BackupKey.parse(fromEnv, BACKUP_KEY_ENV);
  if (options.configKey !== undefined) {
    const name = options.configKeyName ?? 'backup.key';
    return BackupKey.parse(options.configKey, `config (${name})`, { configKey: name });
  }
  return null;
}

/** A new random key in base64, the form `loadBackupKey` reads (for `dbward backup keygen`). */
export function generateBackupKey(): string {
  return randomBytes(BACKUP_KEY_BYTES).toString('base64');
}

/**
 * The text of a key file. Like ssh with a private key, dbward refuses a file that group or others
 * may access at all (`mode & 0o077`): a backup key is worth as much as every backup made with it.
 * The file is opened once and checked through its descriptor, so it cannot be swapped in between.
 */
function readKeyFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'it does not exist'
        : code === 'EACCES'
          ? 'permission denied'
          : (err as Error).message;
    throw new ConfigError(`cannot read the backup key file ${file}: ${why}`, {
      file,
      cause: err,
      hint: 'Check the --key-file path, or set DBWARD_BACKUP_KEY instead.',
    });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new ConfigError(`the backup key file ${file} is not a regular file`, { file });
    }
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new ConfigError(
        `the backup key file ${file} is accessible by group or others (mode ${mode}); dbward refuses to use it`,
        { file, hint: `Make it private to its owner: chmod 600 ${file}` },
      );
    }
    if (stat.size > MAX_KEY_FILE_BYTES) {
      throw new ConfigError(
        `the backup key file ${file} is ${stat.size} bytes; a key file holds one key (${KEY_FORMS})`,
        { file, hint: GENERATE_HINT },
      );
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
