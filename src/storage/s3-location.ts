/**
 * `s3://bucket/prefix` → bucket and key prefix, and the object keys dbward uses under it. The
 * layout mirrors the local directory (docs/backups.md, "Storage layout and manifest"):
 *
 *     <prefix>/<target>/<id>.<ext>             the artifact
 *     <prefix>/<target>/<id>.manifest.json     written last: the backup exists once this does
 *     <prefix>/<target>/<id>.verified.json     the last verification result (optional)
 *
 * Credentials never come from the spec (they would end up in configs, logs and `ps`): a spec
 * with `user:password@` is refused without echoing it.
 */
import { ConfigError } from '../core/errors.js';

export interface S3Location {
  bucket: string;
  /** The key prefix without leading or trailing slashes; '' for the bucket's root. */
  prefix: string;
}

// S3's rules for bucket names (lowercase letters, digits, dots and hyphens; 3–63 characters).
const bucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const specHint = 'Use s3://bucket or s3://bucket/prefix; credentials come from the AWS environment.';

export function parseS3Spec(spec: string): S3Location {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(spec.trim());
  if (!match) throw new ConfigError(`"${spec}" is not an s3:// storage URL.`, { hint: specHint });
  const authority = match[1] ?? '';
  if (authority.includes('@')) {
    throw new ConfigError('The S3 storage URL must not contain credentials.', {
      hint: 'Remove "user:password@" and set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE instead.',
    });
  }
  if (!bucketPattern.test(authority) || authority.includes('..')) {
    throw new ConfigError(`"${authority}" is not a valid S3 bucket name (in ${spec}).`, {
      hint: 'Bucket names are 3–63 lowercase letters, digits, dots and hyphens.',
    });
  }
  const rawPrefix = match[2] ?? '';
  if (/[?#\\]/.test(rawPrefix)) {
    throw new ConfigError(`The S3 prefix "${rawPrefix}" may not contain ?, # or \\.`, { hint: specHint });
  }
  const segments = rawPrefix.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '.' || s === '..')) {
    throw new ConfigError(`The S3 prefix "${rawPrefix}" may not contain . or .. segments.`, {
      hint: specHint,
    });
  }
  return { bucket: authority, prefix: segments.join('/') };
}

/** `s3://bucket/prefix` (or `s3://bucket`), for messages. */
export function formatS3Location({ bucket, prefix }: S3Location): string {
  return prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}`;
}

/** The key of `name` in `target`'s "directory". */
export function objectKey(location: S3Location, target: string, name: string): string {
  return `${targetKeyPrefix(location, target)}${name}`;
}

/** `<prefix>/<target>/`, the key prefix listing one target. */
export function targetKeyPrefix(location: S3Location, target: string): string {
  return `${rootKeyPrefix(location)}${target}/`;
}

/** `<prefix>/`, or '' for the bucket's root. */
export function rootKeyPrefix({ prefix }: S3Location): string {
  return prefix ? `${prefix}/` : '';
}

/**
 * Split a listed key into target and name, relative to the storage root; undefined for keys that
 * are not exactly `<prefix>/<target>/<name>` (deeper keys are not dbward's).
 */
export function splitKey(location: S3Location, key: string): { target: string; name: string } | undefined {
  const root = rootKeyPrefix(location);
  if (!key.startsWith(root)) return undefined;
  const parts = key.slice(root.length).split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { target: parts[0], name: parts[1] };
}
