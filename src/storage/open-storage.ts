/**
 * Turn a storage spec from the config or the command line into a {@link BackupStorage}:
 *
 * - a path (absolute, or relative to the working directory) or a `file://` URL → a local directory;
 * - `s3://bucket/prefix` → S3-compatible object storage (not available yet).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, NotAvailableError } from '../core/errors.js';
import { LocalStorage } from './local-storage.js';
import { defaultStorageSpec, type BackupStorage } from './storage.js';

export interface OpenStorageOptions {
  /** What relative paths are relative to. Default `process.cwd()`. */
  cwd?: string;
}

export function openStorage(
  spec: string = defaultStorageSpec,
  options: OpenStorageOptions = {},
): BackupStorage {
  const trimmed = spec.trim();
  if (trimmed === '') {
    throw new ConfigError('The backup storage is empty.', {
      hint: `Use a directory (default ${defaultStorageSpec}) or s3://bucket/prefix.`,
    });
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    return new LocalStorage(path.resolve(options.cwd ?? process.cwd(), trimmed));
  }
  if (scheme === 'file') return new LocalStorage(fileURLToPath(trimmed));
  if (scheme === 's3') {
    throw new NotAvailableError(
      `S3 storage (${trimmed}) is not available yet.`,
      `Use a local directory for now (default ${defaultStorageSpec}).`,
    );
  }
  throw new ConfigError(`Unsupported backup storage "${trimmed}".`, {
    hint: `Use a directory (default ${defaultStorageSpec}) or s3://bucket/prefix.`,
  });
}
