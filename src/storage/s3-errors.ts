/**
 * SDK and network failures of the S3 storage → one {@link DbwardError} each, with a hint that
 * says what to do. The SDK's error (with its stack and request metadata) is not attached: the
 * message already carries its name and text, and nothing of the credentials can leak that way.
 */
import { DbwardError, isDbwardError } from '../core/errors.js';

interface SdkErrorLike {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  errors?: unknown[];
}

const deniedNames = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AllAccessDisabled',
  'InvalidClientTokenId',
]);
const networkCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);

/** What kind of failure an SDK error is. */
export type S3FailureKind = 'no-bucket' | 'not-found' | 'denied' | 'no-credentials' | 'unreachable' | 'other';

export function s3FailureKind(err: unknown): S3FailureKind {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorLike;
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket') return 'no-bucket';
  if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchUpload') return 'not-found';
  if (deniedNames.has(name) || status === 403) return 'denied';
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(e.message ?? '')) {
    return 'no-credentials';
  }
  if (networkCodes.has(e.code ?? '') || networkCodes.has(name)) return 'unreachable';
  // Node's fetch-less http errors: an AggregateError of per-address failures, or "socket hang up".
  if (Array.isArray(e.errors) && e.errors.some((x) => s3FailureKind(x) === 'unreachable')) {
    return 'unreachable';
  }
  if (/socket hang up|connect ECONNREFUSED|other side closed/i.test(e.message ?? '')) return 'unreachable';
  return 'other';
}

export interface S3ErrorContext {
  /** `s3://bucket/prefix` */
  location: string;
  bucket: string;
  /** The endpoint, or "AWS S3". */
  endpoint: string;
}

/**
 * A {@link DbwardError} for `err`. `code` is used for failures that are not one of the well-known
 * kinds (those get E_STORAGE_NO_BUCKET, E_STORAGE_ACCESS_DENIED, E_STORAGE_NO_CREDENTIALS,
 * E_STORAGE_UNREACHABLE). DbwardErrors pass through unchanged.
 */
export function s3Error(code: string, what: string, err: unknown, ctx: S3ErrorContext): DbwardError {
  if (isDbwardError(err)) return err;
  const detail = describe(err);
  switch (s3FailureKind(err)) {
    case 'no-bucket':
      return new DbwardError('E_STORAGE_NO_BUCKET', `${what}: the bucket "${ctx.bucket}" does not exist.`, {
        hint: `Create the bucket at ${ctx.endpoint}, or correct the storage URL (${ctx.location}).`,
      });
    case 'denied':
      return new DbwardError('E_STORAGE_ACCESS_DENIED', `${what}: access denied (${detail}).`, {
        hint:
          'Check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and that they may ' +
          `list, read, write and delete objects and abort multipart uploads in ${ctx.location}.`,
      });
    case 'no-credentials':
      return new DbwardError('E_STORAGE_NO_CREDENTIALS', `${what}: no AWS credentials found.`, {
        hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance role applies.',
      });
    case 'unreachable':
      return new DbwardError('E_STORAGE_UNREACHABLE', `${what}: cannot reach ${ctx.endpoint} (${detail}).`, {
        hint: 'Check the S3 endpoint (AWS_ENDPOINT_URL_S3 or the storage options) and the network; then retry.',
      });
    default:
      return new DbwardError(code, `${what}: ${detail}`);
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as SdkErrorLike & Error;
  const code = e.code && e.code !== e.name && !e.message?.includes(e.code) ? ` ${e.code}` : '';
  const status = e.$metadata?.httpStatusCode;
  // HEAD answers have no body, so the SDK knows only the status: "Unknown: UnknownError".
  if ((e.name === 'Unknown' || e.message === 'UnknownError' || !e.message) && status) return `HTTP ${status}`;
  const text = e.message;
  return e.name && e.name !== 'Error' ? `${e.name}${code}: ${text}` : `${text}${code}`;
}
