/**
 * Backups in an S3-compatible bucket, `s3://bucket/prefix` (layout in `s3-location.ts`: the same
 * names as the local directory, under `<prefix>/<target>/`).
 *
 * The write order keeps the {@link BackupStorage} promise — a manifest exists only next to a
 * complete artifact — without the local storage's temporary names, because S3 has no rename:
 *
 * - `putArtifact` streams straight to the artifact's final key with a multipart upload (bounded:
 *   at most `queueSize` parts of `partSize` bytes in memory). An S3 object becomes visible only
 *   when CompleteMultipartUpload (or a single PUT) succeeds, whole; until then there is nothing
 *   under the key, and on any failure the upload is aborted. So the final key always holds either
 *   nothing or the complete artifact — what the local storage gets from renaming a partial file.
 *   A copy to a final name instead would double the traffic, and CopyObject stops at 5 GB.
 * - `finalize` checks the stored size against the manifest and then writes the manifest, last.
 *   A crash between the two leaves an artifact without a manifest: not listed, and removed by
 *   `cleanupIncomplete` after the grace period, like a renamed-but-unmanifested local artifact.
 * - `cleanupIncomplete` also aborts multipart uploads older than the grace period, which a killed
 *   dbward leaves behind (they are invisible to listings but are stored, and billed).
 */
import { isEcho } from '../backup/pipeline-errors.js';
import type { Readable } from 'node:stream';
import { pipeline, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  checkVerification,
  compareManifestsNewestFirst,
  isValidArtifactName,
  isValidTargetName,
  type BackupManifest,
  type BackupVerification,
} from '../backup/manifest.js';
import { DbwardError, isDbwardError } from '../core/errors.js';
import { makeS3Client, type S3ConnectionOptions } from './s3-client.js';
import { s3Error, s3FailureKind, type S3ErrorContext } from './s3-errors.js';
import {
  formatS3Location,
  objectKey,
  parseS3Spec,
  rootKeyPrefix,
  splitKey,
  targetKeyPrefix,
  type S3Location,
} from './s3-location.js';
import {
  checkArtifactName,
  checkGracePeriod,
  checkManifestNames,
  checkTargetName,
  idOfName,
  isIncompleteName,
  manifestToFinalize,
  targetOfId,
} from './storage-names.js';
import { readListedManifest, readListedVerification } from './listed-records.js';
import {
  manifestFileName,
  parsePartialFileName,
  verificationFileName,
  type BackupStorage,
  type CleanupOptions,
  type ListResult,
  type StorageProblem,
} from './storage.js';

export interface S3StorageOptions extends S3ConnectionOptions {
  /** Multipart part size in bytes (S3's minimum is 5 MiB). Default 16 MiB. */
  partSize?: number;
  /** Parts uploaded at once; memory use is about (queueSize + 1) × partSize. Default 2. */
  queueSize?: number;
}

interface StoredObject {
  size: number;
  lastModified: Date;
}

const mib = 1024 * 1024;
/** Manifests read at once by `list`. */
const readConcurrency = 8;

export class S3Storage implements BackupStorage {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly #where: S3Location;
  readonly #ctx: S3ErrorContext;
  readonly #partSize: number;
  readonly #queueSize: number;
  /** Artifacts put but not yet finalized: `<target>/<name>` (cleanup leaves them alone). */
  readonly #pending = new Set<string>();
  /** Keys being uploaded right now by this instance (cleanup leaves their uploads alone). */
  readonly #uploading = new Set<string>();

  constructor(spec: string | S3Location, options: S3StorageOptions = {}) {
    this.#where = typeof spec === 'string' ? parseS3Spec(spec) : { ...spec };
    this.bucket = this.#where.bucket;
    this.prefix = this.#where.prefix;
    this.location = formatS3Location(this.#where);
    const { client, endpointLabel } = makeS3Client(options);
    this.client = client;
    this.#ctx = { location: this.location, bucket: this.bucket, endpoint: endpointLabel };
    this.#partSize = Math.max(options.partSize ?? 16 * mib, 5 * mib);
    this.#queueSize = Math.max(options.queueSize ?? 2, 1);
  }

  async putArtifact(id: string, name: string, source: Readable): Promise<{ bytes: number }> {
    const target = targetOfId(id);
    checkArtifactName(id, name);
    const key = objectKey(this.#where, target, name);
    const pendingKey = `${target}/${name}`;
    try {
      if (this.#pending.delete(pendingKey)) await this.#deleteObject(key); // a put again replaces it
      for (const existing of [key, objectKey(this.#where, target, manifestFileName(id))]) {
        if (await this.#exists(existing)) {
          throw new DbwardError(
            'E_STORAGE_EXISTS',
            `${this.#rel(existing)} already exists in ${this.location}; refusing to replace it.`,
          );
        }
      }
    } catch (err) {
      source.destroy();
      throw s3Error('E_STORAGE_WRITE', `Writing ${pendingKey} to ${this.location} failed`, err, this.#ctx);
    }

    let bytes = 0;
    let sourceError: unknown;
    const counter = new Transform({
      transform(chunk: Buffer | string, _encoding, callback) {
        const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        bytes += buffer.length;
        callback(null, buffer);
      },
    });
    // A failing source (dump tool, compressor) destroys the counter, which fails the upload.
    pipeline(source, counter, (err) => {
      if (err) sourceError ??= err;
    });
    source.once('error', (err) => (sourceError ??= err));

    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: counter, ContentType: 'application/octet-stream' },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
      leavePartsOnError: false, // abort the multipart upload on failure
    });
    this.#uploading.add(key);
    let failure: unknown;
    try {
      await upload.done();
    } catch (err) {
      failure = err;
    } finally {
      this.#uploading.delete(key);
    }
    // Taken before destroying the streams below, whose own "premature close" must not mask it.
    // When the upload itself failed, a source error that only echoes it (lib-storage aborting the
    // body: "The operation was aborted") must not hide the real cause.
    const sourceFailure = failure !== undefined && isEcho(sourceError) ? undefined : sourceError;
    if (failure === undefined && sourceFailure !== undefined) failure = sourceFailure;
    if (failure !== undefined) {
      source.destroy();
      counter.destroy();
      // Normally nothing was completed; but a CompleteMultipartUpload whose answer was lost may
      // have been, and the key was free before we started: it can only be this failed upload's.
      await this.#deleteObject(key).catch(() => undefined);
      const what = `Writing ${pendingKey} to ${this.location} failed`;
      if (sourceFailure !== undefined) {
        if (isDbwardError(sourceFailure)) throw sourceFailure;
        throw new DbwardError('E_STORAGE_WRITE', `${what}: ${errorMessage(sourceFailure)}`);
      }
      throw s3Error('E_STORAGE_WRITE', what, failure, this.#ctx);
    }
    this.#pending.add(pendingKey);
    return { bytes };
  }

  async discard(id: string, name: string): Promise<void> {
    const target = targetOfId(id);
    if (!this.#pending.delete(`${target}/${name}`)) return;
    await this.#deleteObject(objectKey(this.#where, target, name)).catch(() => undefined);
  }

  async finalize(id: string, name: string, manifest: BackupManifest): Promise<void> {
    const target = targetOfId(id);
    const m = manifestToFinalize(id, name, manifest);
    const pendingKey = `${target}/${name}`;
    if (!this.#pending.has(pendingKey)) {
      throw new DbwardError(
        'E_STORAGE_NO_ARTIFACT',
        `No artifact ${pendingKey} was put in ${this.location}.`,
        {
          hint: 'Call putArtifact before finalize, on the same storage object.',
        },
      );
    }
    const artifactKey = objectKey(this.#where, target, name);
    const manifestKey = objectKey(this.#where, target, manifestFileName(id));
    const what = `Finalizing backup ${id} in ${this.location} failed`;
    try {
      const stored = await this.#head(artifactKey);
      if (!stored) {
        throw new DbwardError(
          'E_STORAGE_NO_ARTIFACT',
          `The artifact ${pendingKey} is gone from ${this.location}.`,
        );
      }
      if (stored.size !== m.storedBytes) {
        throw new DbwardError(
          'E_STORAGE_SIZE_MISMATCH',
          `The stored artifact ${pendingKey} has ${stored.size} bytes but the manifest says ${m.storedBytes}.`,
        );
      }
      if (await this.#exists(manifestKey)) {
        throw new DbwardError(
          'E_STORAGE_EXISTS',
          `${this.#rel(manifestKey)} already exists; refusing to replace it.`,
        );
      }
      // Last: from this PUT on the backup exists (a PUT is atomic: the whole manifest or none).
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: manifestKey,
          Body: `${JSON.stringify(m, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      );
      this.#pending.delete(pendingKey);
    } catch (err) {
      throw s3Error('E_STORAGE_WRITE', what, err, this.#ctx);
    }
  }

  async list(target?: string): Promise<ListResult> {
    if (target !== undefined) checkTargetName(target);
    const byTarget = await this.#listObjects(target);
    const backups: BackupManifest[] = [];
    const problems: StorageProblem[] = [];
    const jobs: (() => Promise<void>)[] = [];
    for (const [t, objects] of [...byTarget].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      for (const name of objects.keys()) {
        if (name.startsWith('.') || !name.endsWith('.manifest.json')) continue;
        const id = name.slice(0, -'.manifest.json'.length);
        jobs.push(async () => {
          const manifest = await this.#readManifest(t, id, objects, problems);
          if (!manifest) return;
          if (objects.has(verificationFileName(id))) {
            manifest.verification = await this.#readVerification(t, id, problems);
          }
          backups.push(manifest);
        });
      }
    }
    await runLimited(jobs, readConcurrency);
    backups.sort(compareManifestsNewestFirst);
    problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { backups, problems };
  }

  async openArtifact(manifest: BackupManifest): Promise<Readable> {
    const key = this.#artifactKey(manifest);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body as Readable;
    } catch (err) {
      if (s3FailureKind(err) === 'not-found') {
        throw new DbwardError(
          'E_BACKUP_ARTIFACT_MISSING',
          `The artifact of backup ${manifest.id} is missing.`,
          {
            hint: `Expected ${this.location}/${this.#rel(key)}. The backup cannot be restored; delete it with dbward backups.`,
            context: { target: manifest.target },
          },
        );
      }
      throw s3Error('E_STORAGE_READ', `Cannot read ${this.#rel(key)} in ${this.location}`, err, this.#ctx);
    }
  }

  async writeVerification(manifest: BackupManifest, verification: BackupVerification): Promise<void> {
    this.#artifactKey(manifest);
    const check = checkVerification(verification);
    if (!check.ok) {
      throw new DbwardError(
        'E_VERIFICATION_INVALID',
        `Invalid verification record: ${check.problems.join('; ')}`,
      );
    }
    const what = `Recording the verification of ${manifest.id} in ${this.location} failed`;
    try {
      if (!(await this.#exists(objectKey(this.#where, manifest.target, manifestFileName(manifest.id))))) {
        throw new DbwardError('E_BACKUP_NOT_FOUND', `Backup ${manifest.id} is not in ${this.location}.`);
      }
      const record = { formatVersion: 1, id: manifest.id, verification: check.verification };
      // A PUT replaces the earlier record atomically: readers see the old one or the new one.
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: objectKey(this.#where, manifest.target, verificationFileName(manifest.id)),
          Body: `${JSON.stringify(record, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      );
    } catch (err) {
      throw s3Error('E_STORAGE_WRITE', what, err, this.#ctx);
    }
  }

  async delete(manifest: BackupManifest): Promise<void> {
    const artifact = this.#artifactKey(manifest);
    try {
      // Manifest first: from here on the backup is not listed, whatever happens next.
      await this.#deleteObject(objectKey(this.#where, manifest.target, manifestFileName(manifest.id)));
      await this.#deleteObject(objectKey(this.#where, manifest.target, verificationFileName(manifest.id)));
      await this.#deleteObject(artifact);
    } catch (err) {
      throw s3Error(
        'E_STORAGE_DELETE',
        `Deleting backup ${manifest.id} from ${this.location} failed`,
        err,
        this.#ctx,
      );
    }
  }

  async cleanupIncomplete(options: CleanupOptions): Promise<string[]> {
    const { olderThanMs } = options;
    checkGracePeriod(olderThanMs);
    if (options.target !== undefined) checkTargetName(options.target);
    const cutoff = (options.now ?? new Date()).getTime() - olderThanMs;
    const removed: string[] = [];
    for (const [t, objects] of await this.#listObjects(options.target)) {
      const names = new Set(objects.keys());
      for (const [name, object] of objects) {
        const rel = `${t}/${name}`;
        if (this.#pending.has(rel) || !isIncompleteName(t, name, names)) continue;
        if (object.lastModified.getTime() >= cutoff) continue;
        try {
          await this.#deleteObject(objectKey(this.#where, t, name));
        } catch (err) {
          throw s3Error(
            'E_STORAGE_DELETE',
            `Removing incomplete ${rel} from ${this.location} failed`,
            err,
            this.#ctx,
          );
        }
        removed.push(rel);
      }
    }
    removed.push(...(await this.#abortStaleUploads(options.target, cutoff)));
    return removed.sort();
  }

  /** Release the client's connections (a CLI run exits without this; long-lived callers should). */
  close(): void {
    this.client.destroy();
  }

  /** Abort dbward's multipart uploads begun before `cutoff` (a killed run's), except our own. */
  async #abortStaleUploads(target: string | undefined, cutoff: number): Promise<string[]> {
    const aborted: string[] = [];
    const prefix = target === undefined ? rootKeyPrefix(this.#where) : targetKeyPrefix(this.#where, target);
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (err) {
        // Some S3-compatible stores do not list uploads; they usually expire them by themselves.
        if (errorName(err) === 'NotImplemented') return aborted;
        throw s3Error(
          'E_STORAGE_READ',
          `Listing unfinished uploads in ${this.location} failed`,
          err,
          this.#ctx,
        );
      }
      for (const upload of page.Uploads ?? []) {
        const split = upload.Key ? splitKey(this.#where, upload.Key) : undefined;
        if (!split || !upload.UploadId || !upload.Key || this.#uploading.has(upload.Key)) continue;
        if (!isValidTargetName(split.target) || !isOurArtifactName(split.target, split.name)) continue;
        if (!upload.Initiated || upload.Initiated.getTime() >= cutoff) continue;
        try {
          await this.client.send(
            new AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
          );
        } catch (err) {
          if (s3FailureKind(err) !== 'not-found') {
            throw s3Error(
              'E_STORAGE_DELETE',
              `Aborting the upload of ${split.target}/${split.name} failed`,
              err,
              this.#ctx,
            );
          }
        }
        aborted.push(`${split.target}/${split.name} (unfinished multipart upload)`);
      }
      if (!page.IsTruncated) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (keyMarker === undefined && uploadIdMarker === undefined) return aborted;
    }
  }

  /** Every object `<prefix>/<target>/<name>` (of one valid target, or all), grouped by target. */
  async #listObjects(target: string | undefined): Promise<Map<string, Map<string, StoredObject>>> {
    const prefix = target === undefined ? rootKeyPrefix(this.#where) : targetKeyPrefix(this.#where, target);
    const byTarget = new Map<string, Map<string, StoredObject>>();
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (err) {
        throw s3Error('E_STORAGE_READ', `Cannot list ${this.location}`, err, this.#ctx);
      }
      for (const object of page.Contents ?? []) {
        const split = object.Key ? splitKey(this.#where, object.Key) : undefined;
        if (!split || !isValidTargetName(split.target)) continue;
        let objects = byTarget.get(split.target);
        if (!objects) byTarget.set(split.target, (objects = new Map()));
        objects.set(split.name, { size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return byTarget;
  }

  async #readManifest(
    target: string,
    id: string,
    objects: Map<string, StoredObject>,
    problems: StorageProblem[],
  ): Promise<BackupManifest | undefined> {
    return readListedManifest(
      () => this.#readText(objectKey(this.#where, target, manifestFileName(id))),
      { target, id, rel: `${target}/${manifestFileName(id)}`, nameWord: 'key' },
      (name) => objects.has(name),
      problems,
    );
  }

  async #readVerification(
    target: string,
    id: string,
    problems: StorageProblem[],
  ): Promise<BackupVerification | null> {
    return readListedVerification(
      () => this.#readText(objectKey(this.#where, target, verificationFileName(id))),
      id,
      `${target}/${verificationFileName(id)}`,
      problems,
    );
  }

  /** A small object's text (manifests and verification records: a few KiB). */
  async #readText(key: string): Promise<string> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) return '';
      return await out.Body.transformToString('utf8');
    } catch (err) {
      throw s3Error('E_STORAGE_READ', `reading ${this.#rel(key)} failed`, err, this.#ctx);
    }
  }

  async #head(key: string): Promise<StoredObject | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (s3FailureKind(err) === 'not-found') return undefined;
      throw err;
    }
  }

  async #exists(key: string): Promise<boolean> {
    return (await this.#head(key)) !== undefined;
  }

  /** DeleteObject; S3 answers success for a missing key, so this is idempotent. */
  async #deleteObject(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  #artifactKey(manifest: BackupManifest): string {
    checkManifestNames(manifest);
    return objectKey(this.#where, manifest.target, manifest.artifact);
  }

  /** A key relative to the storage root (`<target>/<name>`), for messages. */
  #rel(key: string): string {
    const root = rootKeyPrefix(this.#where);
    return key.startsWith(root) ? key.slice(root.length) : key;
  }
}

/** An artifact (or partial) name of a backup of `target`: the names dbward's uploads use. */
function isOurArtifactName(target: string, name: string): boolean {
  const base = parsePartialFileName(name) ?? name;
  const id = idOfName(target, base);
  return id !== undefined && (base !== name || isValidArtifactName(id, base));
}

/** Run `jobs` with at most `limit` at a time. */
async function runLimited(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
