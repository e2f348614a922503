/**
 * S3 storage whose SDK loads on first use. `@aws-sdk/client-s3` costs about 200 ms and 30 MB of
 * memory to load; every backup command opens its storage, and most use a local directory, so
 * `openStorage` returns this stand-in for `s3://…` and nothing of the SDK loads until a method is
 * called. The storage URL is still checked at once (s3-location.ts has no SDK), so a bad URL fails
 * where it is given.
 */
import type { Readable } from 'node:stream';
import type { BackupManifest, BackupVerification } from '../backup/manifest.js';
import { formatS3Location, parseS3Spec, type S3Location } from './s3-location.js';
import type { S3Storage, S3StorageOptions } from './s3-storage.js';
import type { BackupStorage, CleanupOptions, ListResult } from './storage.js';

export class DeferredS3Storage implements BackupStorage {
  readonly location: string;
  readonly #where: S3Location;
  readonly #options: S3StorageOptions;
  #real: Promise<S3Storage> | undefined;
  #loaded: S3Storage | undefined;

  constructor(spec: string, options: S3StorageOptions = {}) {
    this.#where = parseS3Spec(spec);
    this.location = formatS3Location(this.#where);
    this.#options = options;
  }

  /** The S3Storage behind this one, made on first use. */
  real(): Promise<S3Storage> {
    this.#real ??= import('./s3-storage.js').then(({ S3Storage }) => {
      this.#loaded = new S3Storage(this.#where, this.#options);
      return this.#loaded;
    });
    return this.#real;
  }

  async putArtifact(id: string, name: string, source: Readable): Promise<{ bytes: number }> {
    return (await this.real()).putArtifact(id, name, source);
  }

  async finalize(id: string, name: string, manifest: BackupManifest): Promise<void> {
    return (await this.real()).finalize(id, name, manifest);
  }

  async discard(id: string, name: string): Promise<void> {
    return (await this.real()).discard(id, name);
  }

  async list(target?: string): Promise<ListResult> {
    return (await this.real()).list(target);
  }

  async openArtifact(manifest: BackupManifest): Promise<Readable> {
    return (await this.real()).openArtifact(manifest);
  }

  async writeVerification(manifest: BackupManifest, verification: BackupVerification): Promise<void> {
    return (await this.real()).writeVerification(manifest, verification);
  }

  async delete(manifest: BackupManifest): Promise<void> {
    return (await this.real()).delete(manifest);
  }

  async cleanupIncomplete(options: CleanupOptions): Promise<string[]> {
    return (await this.real()).cleanupIncomplete(options);
  }

  /** Release the client's connections, if it was ever made. */
  close(): void {
    this.#loaded?.close();
  }
}
