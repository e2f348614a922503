/**
 * The S3 storage against a real S3-compatible server (moto, started by the test harness): the
 * shared storage contract, plus what only S3 has — multipart uploads that must be aborted on
 * failure and cleaned up when abandoned, a server that goes away mid-upload, and credential,
 * bucket and endpoint errors that must be clear and never show the secret key.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { Readable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { hashReadable } from '../../src/backup/hash-stream.js';
import { newBackupId } from '../../src/backup/manifest.js';
import { DbwardError } from '../../src/core/errors.js';
import { openStorage } from '../../src/storage/open-storage.js';
import { DeferredS3Storage } from '../../src/storage/deferred-s3-storage.js';
import { S3Storage } from '../../src/storage/s3-storage.js';
import { freePort, isSkipped, type StartedServer } from '../harness/servers/server-process.js';
import { start as startS3Server } from '../harness/servers/s3-server.js';
import { s3SkipReason, testS3, type TestS3 } from '../harness/test-s3.js';
import { failingSource, makeBackup, manifestFor, readAll, storageContract } from './storage-contract.js';

const skip = s3SkipReason();
const server = testS3();
const mib = 1024 * 1024;
const hour = 60 * 60 * 1000;

function storageOn(
  s3: TestS3,
  prefix: string,
  options: { secret?: string; bucket?: string } = {},
): S3Storage {
  return new S3Storage(
    { bucket: options.bucket ?? s3.bucket, prefix },
    {
      endpoint: s3.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: options.secret ?? s3.secretAccessKey },
    },
  );
}

function rawClient(s3: TestS3): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

async function keysUnder(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(page.Contents ?? []).map((o) => o.Key!));
    token = page.NextContinuationToken;
  } while (token);
  return keys.sort();
}

async function uploadsUnder(client: S3Client, bucket: string, prefix: string) {
  return (
    (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))).Uploads ?? []
  );
}

/** A deterministic-size random stream of `size` bytes in 1 MiB chunks, hashing what it sends. */
function generated(size: number): { source: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let sent = 0;
  const source = new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(mib, size - sent));
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { source, sha256: () => hash.digest('hex') };
}

/** The secret must appear nowhere a user or a log could see it. */
function assertNoSecret(err: unknown, secret: string): void {
  assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${inspect(err)}`);
  for (const text of [err.message, err.hint ?? '', JSON.stringify(err.toJSON()), inspect(err)]) {
    assert.ok(!text.includes(secret), `the secret leaked into: ${text}`);
  }
}

const randomPrefix = (): string => `t-${randomBytes(5).toString('hex')}`;

if (server) {
  storageContract('s3', () => {
    const prefix = randomPrefix();
    const client = rawClient(server);
    const storage = storageOn(server, prefix);
    const key = (target: string, name: string): string => `${prefix}/${target}/${name}`;
    return Promise.resolve({
      storage,
      reopen: () => storageOn(server, prefix),
      names: async (target: string) =>
        (await keysUnder(client, server.bucket, `${prefix}/${target}/`)).map((k) =>
          k.slice(`${prefix}/${target}/`.length),
        ),
      writeRaw: async (target: string, name: string, content: string | Buffer) => {
        await client.send(
          new PutObjectCommand({ Bucket: server.bucket, Key: key(target, name), Body: content }),
        );
      },
      removeRaw: async (target: string, name: string) => {
        await client.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: key(target, name) }));
      },
      cleanup: () => {
        storage.close();
        client.destroy();
        return Promise.resolve();
      },
    });
  });
}

describe('s3 storage', { skip }, () => {
  const s3 = server!;
  let client: S3Client;
  let prefix: string;
  let storage: S3Storage;

  before(() => {
    client = rawClient(s3);
  });
  after(() => client.destroy());
  afterEach(() => storage?.close());

  const fresh = (): S3Storage => {
    prefix = randomPrefix();
    storage = storageOn(s3, prefix);
    return storage;
  };

  it('a 40 MiB artifact goes up in 16 MiB parts and reads back byte-identical', async () => {
    fresh();
    const id = newBackupId('main');
    const name = `${id}.dump.zst`;
    const { source, sha256 } = generated(40 * mib);
    const { bytes } = await storage.putArtifact(id, name, source);
    assert.equal(bytes, 40 * mib);
    const head = await client.send(
      new HeadObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/main/${name}` }),
    );
    assert.equal(head.ContentLength, 40 * mib);
    assert.match(head.ETag ?? '', /-3"$/, 'a multipart object of 3 parts (16 + 16 + 8 MiB)');
    assert.deepEqual(await keysUnder(client, s3.bucket, prefix), [`${prefix}/main/${name}`]);
    assert.deepEqual((await storage.list()).backups, [], 'not listed before finalize');

    const manifest = manifestFor(id, 'main', name, { bytes, sha256: sha256() }, new Date());
    await storage.finalize(id, name, manifest);
    const [listed] = (await storage.list()).backups;
    assert.deepEqual(listed, manifest);
    const read = await hashReadable(await storage.openArtifact(listed!));
    assert.deepEqual(read, { bytes: 40 * mib, sha256: manifest.sha256 });
  });

  it('a source failing after a part was uploaded aborts the upload: no object, no upload, nothing listed', async () => {
    fresh();
    const id = newBackupId('main');
    const name = `${id}.dump.zst`;
    await assert.rejects(storage.putArtifact(id, name, failingSource(20 * mib)), (err: unknown) => {
      assert.ok(err instanceof DbwardError);
      assert.equal(err.code, 'E_STORAGE_WRITE');
      assert.match(err.message, /pg_dump exited with code 1/);
      return true;
    });
    assert.deepEqual(await keysUnder(client, s3.bucket, prefix), []);
    assert.deepEqual(await uploadsUnder(client, s3.bucket, prefix), [], 'the multipart upload was aborted');
    assert.deepEqual(await storage.list(), { backups: [], problems: [] });
  });

  it('cleanup aborts abandoned multipart uploads older than the grace period, and only dbward ones', async () => {
    fresh();
    const id = newBackupId('main');
    const ours = `${prefix}/main/${id}.dump.zst`;
    const foreign = `${prefix}/main/somebody-else.bin`;
    for (const key of [ours, foreign]) {
      await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key }));
    }
    const initiated = (await uploadsUnder(client, s3.bucket, prefix)).find((u) => u.Key === ours)?.Initiated;
    assert.ok(initiated);
    // Measured from the upload's own start time (servers differ in how they report it).
    const soon = new Date(initiated.getTime() + 30 * 60 * 1000);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: soon }), []);
    const later = new Date(initiated.getTime() + 2 * hour);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: later, target: 'other' }), []);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: later }), [
      `main/${id}.dump.zst (unfinished multipart upload)`,
    ]);
    assert.deepEqual(
      (await uploadsUnder(client, s3.bucket, prefix)).map((u) => u.Key),
      [foreign],
    );
  });

  it('the storage root is the prefix: other prefixes and deeper keys are not its business', async () => {
    fresh();
    const b = await makeBackup(storage);
    const neighbour = storageOn(s3, `${prefix}-neighbour`);
    try {
      assert.deepEqual(await neighbour.list(), { backups: [], problems: [] });
      await client.send(
        new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/main/deeper/${b.id}.sql.zst`, Body: 'x' }),
      );
      assert.deepEqual(
        await storage.cleanupIncomplete({ olderThanMs: 0, now: new Date(Date.now() + hour) }),
        [],
      );
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [b.id],
      );
    } finally {
      neighbour.close();
    }
  });

  it('putArtifact never replaces an existing backup', async () => {
    fresh();
    const b = await makeBackup(storage);
    await assert.rejects(storage.putArtifact(b.id, b.name, Readable.from([Buffer.from('new')])), {
      code: 'E_STORAGE_EXISTS',
    });
    assert.deepEqual(await readAll(await storage.openArtifact(b.manifest)), b.data);
  });

  it('the server dying mid-upload is a clean error and leaves no backup', async () => {
    const own = await startS3Server();
    if (isSkipped(own)) throw new Error(own.skip);
    const target = testS3(own.adminUrl)!;
    const dying = storageOn(target, randomPrefix());
    try {
      const id = newBackupId('main');
      const name = `${id}.dump.zst`;
      let sent = 0;
      const source = new Readable({
        read() {
          sent += mib;
          // After two parts' worth, the server goes away (SIGTERM; moto keeps nothing).
          if (sent === 34 * mib) void own.stop();
          this.push(sent > 200 * mib ? null : randomBytes(mib));
        },
      });
      const t0 = Date.now();
      const err = await dying.putArtifact(id, name, source).then(
        () => assert.fail('the upload succeeded without a server'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof DbwardError, inspect(err));
      assert.equal(err.code, 'E_STORAGE_UNREACHABLE', err.message);
      assert.doesNotMatch(err.message, /\n\s+at /, 'no stack trace in the message');
      assert.match(err.message, /cannot reach http:\/\/127\.0\.0\.1:\d+/);
      assert.match(err.hint ?? '', /endpoint/);
      assert.ok(Date.now() - t0 < 60_000, 'fails within a minute');
      assert.ok(source.destroyed, 'the source (the dump) is stopped');
      await assert.rejects(
        dying.finalize(
          id,
          name,
          manifestFor(id, 'main', name, { bytes: 1, sha256: 'a'.repeat(64) }, new Date()),
        ),
        { code: 'E_STORAGE_NO_ARTIFACT' },
      );
      await assert.rejects(dying.list(), { code: 'E_STORAGE_UNREACHABLE' });
    } finally {
      dying.close();
      await own.stop();
    }
  });

  describe('credentials, on a server that checks signatures', () => {
    let authServer: StartedServer;
    let auth: TestS3;

    before(async () => {
      const started = await startS3Server({ authenticate: true });
      if (isSkipped(started)) throw new Error(started.skip);
      authServer = started;
      auth = testS3(started.adminUrl)!;
    });
    after(() => authServer?.stop());

    it('wrong credentials: a clear access-denied error that never shows the secret', async () => {
      const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
      const good = storageOn(auth, '');
      const bad = storageOn(auth, '', { secret: wrongSecret });
      const id = newBackupId('main');
      try {
        await makeBackup(good);
        for (const attempt of [
          () => bad.list(),
          () => bad.putArtifact(id, `${id}.sql.zst`, Readable.from([Buffer.from('x')])),
        ]) {
          const err = await attempt().then(
            () => assert.fail('succeeded with a wrong secret'),
            (e: unknown) => e,
          );
          assertNoSecret(err, wrongSecret);
          assert.ok(err instanceof DbwardError);
          assert.equal(err.code, 'E_STORAGE_ACCESS_DENIED');
          assert.match(err.message, /access denied \((SignatureDoesNotMatch|HTTP 403)/);
          assert.match(err.hint ?? '', /AWS_ACCESS_KEY_ID/);
        }
        assert.equal((await good.list()).backups.length, 1);
      } finally {
        good.close();
        bad.close();
      }
    });

    it('openStorage takes credentials from the AWS environment, and never shows the secret', async () => {
      const saved = { ...process.env };
      const wrongSecret = `envsecret-${randomBytes(12).toString('hex')}`;
      try {
        Object.assign(process.env, {
          AWS_ACCESS_KEY_ID: auth.accessKeyId,
          AWS_SECRET_ACCESS_KEY: auth.secretAccessKey,
          AWS_ENDPOINT_URL_S3: auth.endpoint,
          AWS_REGION: auth.region,
        });
        const good = openStorage(`s3://${auth.bucket}/`);
        assert.ok(good instanceof DeferredS3Storage);
        assert.equal(good.location, `s3://${auth.bucket}`);
        const b = await makeBackup(good, 'from-env');
        assert.ok((await good.list()).backups.some((m) => m.id === b.id));
        good.close();

        process.env.AWS_SECRET_ACCESS_KEY = wrongSecret;
        const bad = openStorage(`s3://${auth.bucket}`) as DeferredS3Storage;
        const err = await bad.list().then(
          () => assert.fail('listed with a wrong secret'),
          (e: unknown) => e,
        );
        bad.close();
        assertNoSecret(err, wrongSecret);
        assert.equal((err as DbwardError).code, 'E_STORAGE_ACCESS_DENIED');
      } finally {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    });
  });

  it('a missing bucket and an unreachable endpoint are clear errors with a hint', async () => {
    const noBucket = storageOn(s3, 'x', { bucket: `missing-${randomBytes(4).toString('hex')}` });
    const port = await freePort();
    const nowhere = storageOn({ ...s3, endpoint: `http://127.0.0.1:${port}` }, 'x');
    try {
      await assert.rejects(noBucket.list(), (err: unknown) => {
        assert.ok(err instanceof DbwardError);
        assert.equal(err.code, 'E_STORAGE_NO_BUCKET');
        assert.match(err.message, /bucket "missing-[0-9a-f]+" does not exist/);
        assert.match(err.hint ?? '', /Create the bucket/);
        return true;
      });
      await assert.rejects(nowhere.list(), (err: unknown) => {
        assert.ok(err instanceof DbwardError);
        assert.equal(err.code, 'E_STORAGE_UNREACHABLE');
        assert.match(err.message, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}`));
        assert.match(err.hint ?? '', /endpoint/);
        return true;
      });
    } finally {
      noBucket.close();
      nowhere.close();
    }
  });
});

describe('s3 storage URLs', () => {
  it('s3://bucket/prefix: location without credentials; slashes normalized', () => {
    const s = new S3Storage('s3://my-bucket//backups/prod/', {
      endpoint: 'http://127.0.0.1:1',
      region: 'eu-west-1',
    });
    assert.equal(s.location, 's3://my-bucket/backups/prod');
    assert.equal(s.prefix, 'backups/prod');
    s.close();
    const root = openStorage('s3://my-bucket', { s3: { endpoint: 'http://127.0.0.1:1' } });
    assert.equal(root.location, 's3://my-bucket');
    (root as DeferredS3Storage).close();
  });

  it('refuses credentials in the URL without echoing them, and invalid buckets or prefixes', () => {
    assert.throws(
      () => openStorage('s3://AKIAEXAMPLE:TopSecretValue123@bucket/prefix'),
      (err: unknown) => {
        assert.ok(err instanceof DbwardError);
        assert.equal(err.code, 'E_CONFIG');
        assert.ok(!`${err.message} ${err.hint}`.includes('TopSecretValue123'));
        assert.match(err.hint ?? '', /AWS_ACCESS_KEY_ID/);
        return true;
      },
    );
    for (const spec of ['s3://', 's3://Upper_Case/x', 's3://ab', 's3://bucket/../x', 's3://bucket/a?b']) {
      assert.throws(() => openStorage(spec), { code: 'E_CONFIG' }, spec);
    }
  });
});
