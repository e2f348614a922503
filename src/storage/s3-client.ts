/**
 * The S3 client behind {@link S3Storage}. Endpoint, region and path style come from the options
 * (the config), else from the AWS environment; credentials come from the SDK's default provider
 * chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, instance roles)
 * unless a caller passes them explicitly — never from the storage URL.
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { registerSecret } from '../core/redact.js';

export interface S3ConnectionOptions {
  /** e.g. `http://127.0.0.1:9000` for MinIO; default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or AWS. */
  endpoint?: string;
  /** Default AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
  region?: string;
  /** `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`. Default: on with a custom endpoint. */
  forcePathStyle?: boolean;
  /** Explicit credentials (programmatic use and tests); default: the SDK's provider chain. */
  credentials?: S3ClientConfig['credentials'];
}

export interface MadeS3Client {
  client: S3Client;
  /** The endpoint for messages, or "AWS S3 (<region>)". */
  endpointLabel: string;
}

export function makeS3Client(
  options: S3ConnectionOptions,
  env: NodeJS.ProcessEnv = process.env,
): MadeS3Client {
  const endpoint =
    nonEmpty(options.endpoint) ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  const region =
    nonEmpty(options.region) ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? 'us-east-1';
  // Redaction covers secrets we know of: the env's and explicit ones (a provider's we never see).
  registerSecret(env.AWS_SECRET_ACCESS_KEY);
  registerSecret(env.AWS_SESSION_TOKEN);
  if (options.credentials && typeof options.credentials === 'object') {
    registerSecret(options.credentials.secretAccessKey);
    registerSecret(options.credentials.sessionToken);
  }
  // The SDK warns on every run under Node < 22 that its support will end; dbward supports Node 20
  // and is tested on it, and the warning would land in every backup's output. Users can still
  // opt in by setting the variable to anything else.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const client = new S3Client({
    region,
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Other S3-compatible stores (older MinIO, Ceph RGW, B2, GCS) often reject the SDK's newer
    // default of CRC32 checksum trailers on every upload; dbward keeps its own SHA-256 in the
    // manifest, so with a custom endpoint it sends checksums only where S3 requires them.
    ...(endpoint
      ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }
      : {}),
  });
  return { client, endpointLabel: endpoint ?? `AWS S3 (${region})` };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}
