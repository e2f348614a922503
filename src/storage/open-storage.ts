/**
 * Turn a storage spec from the config or the command line into a {@link BackupStorage}:
 *
 * - a path (absolute, or relative to the working directory) or a `file://` URL → a local directory;
 * - `s3://bucket/prefix` → an S3-compatible bucket; endpoint, region and path style from
 *   `options.s3` or the AWS environment, credentials only from the AWS environment (never the URL).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors.js';
import { LocalStorage } from './local-storage.js';
import { DeferredS3Storage } from './deferred-s3-storage.js';
import { defaultStorageSpec, type BackupStorage } from './storage.js';

export interface OpenStorageOptions {
  /** What relative paths are relative to. Default `process.cwd()`. */
  cwd?: string;
  /** For `s3://` storages: where the S3-compatible service is (defaults: the AWS environment). */
  s3?: {
    /** e.g. `http://127.0.0.1:9000`; default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or AWS. */
    endpoint?: string;
    /** Default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
    region?: string;
    /** Path-style URLs; default on with a custom endpoint. */
    forcePathStyle?: boolean;
  };
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
  // The AWS SDK loads only when S3 storage is used (see deferred-s3-storage.ts).
  if (scheme === 's3') return new DeferredS3Storage(trimmed, { ...options.s3 });
  throw new ConfigError(`Unsupported backup storage "${trimmed}".`, {
    hint: `Use a directory (default ${defaultStorageSpec}) or s3://bucket/prefix.`,
  });
}
