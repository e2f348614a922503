/**
 * The behaviours every {@link BackupStorage} promises (src/storage/storage.ts), as one suite each
 * storage's test file runs against a real instance: a local directory, an S3 server. What is
 * specific to one storage (fsync order, file modes, multipart uploads) stays in its own file.
 *
 * Time: instead of back-dating stored files, cleanup is asked to act as if it ran `now` = hours
 * later — S3 cannot back-date an object, and `CleanupOptions.now` exists for this.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { hashReadable } from '../../src/backup/hash-stream.js';
import { newBackupId, type BackupManifest } from '../../src/backup/manifest.js';
import { DbwardError } from '../../src/core/errors.js';
import type { BackupStorage } from '../../src/storage/storage.js';

const hour = 60 * 60 * 1000;

/** How the suite reaches one kind of storage. */
export interface StorageUnderTest {
  /** The storage to test; a new, empty root for every test. */
  storage: BackupStorage;
  /** Another instance on the same root: "the next run", which knows nothing of pending puts. */
  reopen(): BackupStorage;
  /** The stored names directly under a target (files in its directory, keys under its prefix). */
  names(target: string): Promise<string[]>;
  /** Store a file or object as is, bypassing the storage. */
  writeRaw(target: string, name: string, content: string | Buffer): Promise<void>;
  /** Remove one, bypassing the storage. */
  removeRaw(target: string, name: string): Promise<void>;
  cleanup(): Promise<void>;
}

export function manifestFor(
  id: string,
  target: string,
  artifact: string,
  stored: { bytes: number; sha256: string },
  startedAt: Date,
): BackupManifest {
  return {
    formatVersion: 1,
    id,
    target,
    engine: 'sqlite',
    serverVersion: '3.45.1',
    tool: { name: 'dbward-sqlite', version: '0.1.0' },
    dbwardVersion: '0.1.0',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date(startedAt.getTime() + 1500).toISOString(),
    durationMs: 1500,
    rawBytes: stored.bytes * 3,
    storedBytes: stored.bytes,
    sha256: stored.sha256,
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    tables: [{ name: 'main.items', rows: 42 }],
    artifact,
    verification: null,
  };
}

export async function readAll(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A source that sends `okBytes` and then fails like a dump tool exiting with an error. */
export function failingSource(
  okBytes: number,
  error: Error = new Error('pg_dump exited with code 1'),
): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= okBytes) {
        this.destroy(error);
        return;
      }
      const n = Math.min(1024 * 1024, okBytes - sent);
      sent += n;
      this.push(randomBytes(n));
    },
  });
}

export interface Made {
  id: string;
  name: string;
  data: Buffer;
  manifest: BackupManifest;
}

/** Put an artifact; finalize it too unless `finalize: false` (a crash before finalize). */
export async function makeBackup(
  storage: BackupStorage,
  target = 'main',
  options: { at?: Date; finalize?: boolean; size?: number } = {},
): Promise<Made> {
  const at = options.at ?? new Date();
  const id = newBackupId(target, at);
  const name = `${id}.sql.zst`;
  const data = randomBytes(options.size ?? 100_000);
  const { bytes } = await storage.putArtifact(
    id,
    name,
    Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
  );
  assert.equal(bytes, data.length);
  const manifest = manifestFor(id, target, name, await hashReadable(Readable.from([data])), at);
  if (options.finalize !== false) await storage.finalize(id, name, manifest);
  return { id, name, data, manifest };
}

/** Register the contract suite; `open` makes a fresh, empty storage for each test. */
export function storageContract(kind: string, open: () => Promise<StorageUnderTest>): void {
  describe(`${kind} storage: the BackupStorage contract`, () => {
    let t: StorageUnderTest;
    let storage: BackupStorage;
    const later = (): Date => new Date(Date.now() + 2 * hour);
    const sorted = (names: string[]): string[] => [...names].sort();

    beforeEach(async () => {
      t = await open();
      storage = t.storage;
    });
    afterEach(async () => {
      await t.cleanup();
    });

    it('put + finalize + list + open: the artifact round-trips and the manifest describes it', async () => {
      const b = await makeBackup(storage);
      assert.deepEqual(await t.names('main'), sorted([b.name, `${b.id}.manifest.json`]));
      const { backups, problems } = await storage.list();
      assert.deepEqual(problems, []);
      assert.deepEqual(backups, [b.manifest]);
      assert.deepEqual(await readAll(await storage.openArtifact(backups[0]!)), b.data);
      assert.equal((await hashReadable(await storage.openArtifact(b.manifest))).sha256, b.manifest.sha256);
      assert.deepEqual(await t.reopen().list(), { backups: [b.manifest], problems: [] });
    });

    it('lists newest first across targets, and one target on request', async () => {
      const a = await makeBackup(storage, 'main', { at: new Date('2026-01-01T00:00:00Z') });
      const b = await makeBackup(storage, 'other', { at: new Date('2026-01-02T00:00:00Z') });
      const c = await makeBackup(storage, 'main', { at: new Date('2026-01-03T00:00:00Z') });
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [c.id, b.id, a.id],
      );
      assert.deepEqual(
        (await storage.list('main')).backups.map((m) => m.id),
        [c.id, a.id],
      );
      assert.deepEqual(await storage.list('nothing-here'), { backups: [], problems: [] });
    });

    it('an artifact without a manifest is not listed', async () => {
      const kept = await makeBackup(storage);
      await makeBackup(storage, 'main', { finalize: false });
      await t.writeRaw('main', `${newBackupId('main')}.sql.zst`, 'stray');
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [kept.id],
      );
    });

    it('a crash between put and finalize: not listed, removed by cleanup only after the grace period', async () => {
      const kept = await makeBackup(storage);
      const crashed = await makeBackup(storage, 'main', { finalize: false });
      await t.writeRaw('main', 'notes.txt', 'not ours');
      const keptNames = [kept.name, `${kept.id}.manifest.json`];
      const left = (await t.names('main')).filter((n) => !keptNames.includes(n) && n !== 'notes.txt');
      assert.equal(left.length, 1, 'the crashed backup left one artifact (or partial) behind');
      assert.ok(left[0]!.includes(crashed.name));
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [kept.id],
      );

      // The next run sees it still inside the grace period: maybe a backup that is still running.
      const nextRun = t.reopen();
      assert.deepEqual(await nextRun.cleanupIncomplete({ olderThanMs: hour }), []);
      assert.deepEqual(await nextRun.cleanupIncomplete({ olderThanMs: hour, now: later() }), [
        `main/${left[0]}`,
      ]);
      assert.deepEqual(await t.names('main'), sorted([...keptNames, 'notes.txt']));
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [kept.id],
      );
    });

    it('discard throws away a put artifact at once: nothing stored, nothing to finalize', async () => {
      const kept = await makeBackup(storage);
      const dropped = await makeBackup(storage, 'main', { finalize: false });
      await storage.discard(dropped.id, dropped.name);
      await storage.discard(dropped.id, dropped.name); // twice is fine
      assert.deepEqual(sorted(await t.names('main')), sorted([kept.name, `${kept.id}.manifest.json`]));
      await assert.rejects(storage.finalize(dropped.id, dropped.name, dropped.manifest));
    });

    it('cleanup leaves the artifact of a put this instance has not finalized yet', async () => {
      const pending = await makeBackup(storage, 'main', { finalize: false });
      assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: later() }), []);
      await storage.finalize(pending.id, pending.name, pending.manifest);
      assert.equal((await storage.list()).backups.length, 1);
    });

    it('cleanup removes stale verification records and manifest partials, but never complete backups', async () => {
      const kept = await makeBackup(storage);
      const ghostId = newBackupId('main', new Date('2026-01-01T00:00:00Z'));
      await t.writeRaw('main', `${ghostId}.verified.json`, '{}');
      await t.writeRaw('main', `.${ghostId}.manifest.json.partial-abcdef`, '{}');
      await t.writeRaw('main', `.${newBackupId('other')}.sql.zst.partial-abcdef`, 'other target');
      assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: later() }), [
        `main/.${ghostId}.manifest.json.partial-abcdef`,
        `main/${ghostId}.verified.json`,
      ]);
      assert.equal((await t.names('main')).length, 3);
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [kept.id],
      );
      await assert.rejects(storage.cleanupIncomplete({ olderThanMs: -1 }), { code: 'E_CLEANUP_GRACE' });
    });

    it('delete removes the manifest, the verification record and the artifact; twice is fine', async () => {
      const b = await makeBackup(storage);
      const other = await makeBackup(storage);
      await storage.writeVerification(b.manifest, {
        verifiedAt: new Date().toISOString(),
        ok: true,
        details: [],
      });
      await storage.delete(b.manifest);
      assert.deepEqual(await t.names('main'), sorted([other.name, `${other.id}.manifest.json`]));
      assert.deepEqual(
        (await storage.list()).backups.map((m) => m.id),
        [other.id],
      );
      await storage.delete(b.manifest);
    });

    it('a half-deleted backup (manifest gone, artifact left) is not listed and is cleaned up', async () => {
      const b = await makeBackup(storage);
      await t.removeRaw('main', `${b.id}.manifest.json`);
      assert.deepEqual(await storage.list(), { backups: [], problems: [] });
      assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: later() }), [
        `main/${b.name}`,
      ]);
      assert.deepEqual(await t.names('main'), []);
    });

    it('a malformed manifest is reported as a problem while the others are listed', async () => {
      const good = await makeBackup(storage);
      const badId = newBackupId('main', new Date('2026-02-01T00:00:00Z'));
      await t.writeRaw('main', `${badId}.sql.zst`, 'x');
      await t.writeRaw('main', `${badId}.manifest.json`, '{"formatVersion": 1, "id": ');
      const emptyId = newBackupId('main', new Date('2026-02-02T00:00:00Z'));
      await t.writeRaw(
        'main',
        `${emptyId}.manifest.json`,
        JSON.stringify({ ...good.manifest, id: emptyId, artifact: `${emptyId}.sql.zst`, rawBytes: 0 }),
      );
      const lostId = newBackupId('main', new Date('2026-02-03T00:00:00Z'));
      await t.writeRaw(
        'main',
        `${lostId}.manifest.json`,
        JSON.stringify({ ...good.manifest, id: lostId, artifact: `${lostId}.sql.zst` }),
      );
      const { backups, problems } = await storage.list();
      assert.deepEqual(
        backups.map((m) => m.id),
        [good.id],
      );
      const byPath = new Map(problems.map((p) => [p.path, p.message]));
      assert.match(byPath.get(`main/${badId}.manifest.json`) ?? '', /unreadable manifest/);
      assert.match(
        byPath.get(`main/${emptyId}.manifest.json`) ?? '',
        /rawBytes: an empty dump is not a backup/,
      );
      assert.match(byPath.get(`main/${lostId}.manifest.json`) ?? '', /artifact .* is missing/);
      assert.equal(problems.length, 3);

      // A manifest (even a broken one) protects its artifact from cleanup: a human should look.
      assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour, now: later() }), []);
    });

    it('writeVerification is merged into list; a broken record is a problem, not a lost backup', async () => {
      const b = await makeBackup(storage);
      const verification = {
        verifiedAt: '2026-08-21T04:00:00.000Z',
        ok: true,
        details: ['restored', 'rows match'],
      };
      await storage.writeVerification(b.manifest, verification);
      assert.deepEqual((await storage.list()).backups[0]?.verification, verification);
      const newer = { verifiedAt: '2026-08-22T04:00:00.000Z', ok: false, details: ['row count differs'] };
      await storage.writeVerification(b.manifest, newer);
      assert.deepEqual((await storage.list()).backups[0]?.verification, newer);
      assert.ok((await t.names('main')).includes(`${b.id}.verified.json`));

      await t.writeRaw('main', `${b.id}.verified.json`, 'garbage');
      const { backups, problems } = await storage.list();
      assert.equal(backups[0]?.verification, null);
      assert.match(problems[0]?.message ?? '', /unreadable verification record/);

      const missingId = newBackupId('main');
      const missing = { ...b.manifest, id: missingId, artifact: `${missingId}.sql.zst` };
      await assert.rejects(storage.writeVerification(missing, newer), { code: 'E_BACKUP_NOT_FOUND' });
      await assert.rejects(storage.writeVerification(b.manifest, { ...newer, verifiedAt: 'yesterday' }), {
        code: 'E_VERIFICATION_INVALID',
      });
    });

    it('a source that fails mid-put leaves nothing behind and nothing to finalize', async () => {
      const id = newBackupId('main');
      const name = `${id}.sql.zst`;
      await assert.rejects(storage.putArtifact(id, name, failingSource(3 * 65536)), (err: unknown) => {
        assert.ok(err instanceof DbwardError);
        assert.equal(err.code, 'E_STORAGE_WRITE');
        assert.match(err.message, /pg_dump exited with code 1/);
        return true;
      });
      assert.deepEqual(await t.names('main'), []);
      await assert.rejects(
        storage.finalize(
          id,
          name,
          manifestFor(id, 'main', name, { bytes: 1, sha256: 'a'.repeat(64) }, new Date()),
        ),
        { code: 'E_STORAGE_NO_ARTIFACT' },
      );
      assert.deepEqual((await storage.list()).backups, []);
    });

    it('a DbwardError from the source (e.g. zstd failing) comes through as is', async () => {
      const id = newBackupId('main');
      const zstd = new DbwardError('E_ZSTD_FAILED', 'zstd (compress) exited with code 1');
      await assert.rejects(storage.putArtifact(id, `${id}.sql.zst`, failingSource(1000, zstd)), {
        code: 'E_ZSTD_FAILED',
      });
      assert.deepEqual(await t.names('main'), []);
    });

    it('finalize refuses a manifest that does not match what was stored', async () => {
      const id = newBackupId('main');
      const name = `${id}.sql.zst`;
      const data = randomBytes(1000);
      await storage.putArtifact(id, name, Readable.from([data]));
      const stored = await hashReadable(Readable.from([data]));
      await assert.rejects(
        storage.finalize(id, name, manifestFor(id, 'main', name, { ...stored, bytes: 999 }, new Date())),
        { code: 'E_STORAGE_SIZE_MISMATCH' },
      );
      await assert.rejects(
        storage.finalize(id, name, { ...manifestFor(id, 'main', name, stored, new Date()), rawBytes: 0 }),
        { code: 'E_MANIFEST_INVALID' },
      );
      const otherId = newBackupId('main', new Date('2026-01-01T00:00:00Z'));
      await assert.rejects(
        storage.finalize(id, name, manifestFor(otherId, 'main', `${otherId}.sql.zst`, stored, new Date())),
        { code: 'E_STORAGE_MANIFEST_MISMATCH' },
      );
      assert.deepEqual((await storage.list()).backups, []);
      await storage.finalize(id, name, manifestFor(id, 'main', name, stored, new Date()));
      assert.equal((await storage.list()).backups.length, 1);
    });

    it('refuses names that would leave the storage root', async () => {
      const b = await makeBackup(storage);
      await assert.rejects(storage.putArtifact('..-20260821T030405Z-9f2c', 'x', Readable.from([])), {
        code: 'E_BACKUP_ID',
      });
      await assert.rejects(storage.putArtifact(b.id, '../../escape', Readable.from([])), {
        code: 'E_BACKUP_ARTIFACT_NAME',
      });
      await assert.rejects(storage.openArtifact({ ...b.manifest, artifact: '../../../etc/passwd' }), {
        code: 'E_MANIFEST_INVALID',
      });
      await assert.rejects(storage.delete({ ...b.manifest, target: '..' }), { code: 'E_BACKUP_TARGET_NAME' });
      await assert.rejects(storage.list('../x'), { code: 'E_BACKUP_TARGET_NAME' });
    });

    it('opening a missing artifact is a clear error', async () => {
      const b = await makeBackup(storage);
      await t.removeRaw('main', b.name);
      await assert.rejects(storage.openArtifact(b.manifest), { code: 'E_BACKUP_ARTIFACT_MISSING' });
    });
  });
}
