/**
 * The local-directory storage: the write order that makes "listed" mean "complete", cleanup of
 * what crashed backups leave behind (only after the grace period), delete order, permissions, and
 * the failures that must never leave something that looks like a backup.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { hashReadable } from '../../src/backup/hash-stream.js';
import { newBackupId } from '../../src/backup/manifest.js';
import { DbwardError } from '../../src/core/errors.js';
import { LocalStorage } from '../../src/storage/local-storage.js';
import { openStorage } from '../../src/storage/open-storage.js';
import { DeferredS3Storage } from '../../src/storage/deferred-s3-storage.js';
import { makeBackup, manifestFor, storageContract } from './storage-contract.js';

const hour = 60 * 60 * 1000;

let root: string;
let storage: LocalStorage;

beforeEach(() => {
  root = path.join(mkdtempSync(path.join(tmpdir(), 'dbward-storage-')), 'backups');
  storage = new LocalStorage(root);
});

afterEach(async () => {
  mock.restoreAll();
  await fsp.chmod(path.dirname(root), 0o700).catch(() => undefined);
  await fsp.rm(path.dirname(root), { recursive: true, force: true });
});

function filesIn(target: string): string[] {
  try {
    return readdirSync(path.join(root, target)).sort();
  } catch {
    return [];
  }
}

function assertFiles(target: string, expected: string[], message?: string): void {
  assert.deepEqual(filesIn(target), [...expected].sort(), message);
}

/** Back-date a file so the cleanup grace period has passed for it. */
async function age(target: string, name: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  await fsp.utimes(path.join(root, target, name), when, when);
}

// Behaviour every storage shares runs from storage-contract.ts (also for LocalStorage, below);
// these are local storage's own: file names and modes, fsync order, directories.
describe('local storage', () => {
  it('finalize writes the manifest partial first, renames the artifact, and the manifest last', async () => {
    const target = 'main';
    const id = newBackupId(target);
    const name = `${id}.sql.zst`;
    const data = randomBytes(5000);
    await storage.putArtifact(id, name, Readable.from([data]));
    const renames: { to: string; dirBefore: string[] }[] = [];
    const realRename = fsp.rename.bind(fsp);
    mock.method(fsp, 'rename', async (from: string, to: string) => {
      renames.push({ to: path.basename(to), dirBefore: filesIn(target) });
      return realRename(from, to);
    });
    await storage.finalize(
      id,
      name,
      manifestFor(id, target, name, await hashReadable(Readable.from([data])), new Date()),
    );
    assert.deepEqual(
      renames.map((r) => r.to),
      [name, `${id}.manifest.json`],
    );
    const before = renames[0]!.dirBefore;
    assert.ok(
      before.some((f) => f.startsWith(`.${id}.manifest.json.partial-`)),
      'manifest partial already durable',
    );
    assert.ok(before.some((f) => f.startsWith(`.${name}.partial-`)));
    assert.ok(!before.includes(`${id}.manifest.json`));
    assertFiles(target, [name, `${id}.manifest.json`]);
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
    assert.deepEqual(await new LocalStorage(path.join(root, 'missing')).list(), {
      backups: [],
      problems: [],
    });
  });

  it('a crash between put and finalize: not listed, removed by cleanup only after the grace period', async () => {
    const kept = await makeBackup(storage);
    const crashed = await makeBackup(storage, 'main', { finalize: false });
    await fsp.writeFile(path.join(root, 'main', 'notes.txt'), 'not ours');
    const partial = filesIn('main').find((f) => f.startsWith(`.${crashed.name}.partial-`));
    assert.ok(partial, 'the artifact is under a temporary name');
    assert.deepEqual(
      (await storage.list()).backups.map((m) => m.id),
      [kept.id],
    );

    // A fresh instance (the next run) sees a file still inside the grace period: a running backup.
    const nextRun = new LocalStorage(root);
    assert.deepEqual(await nextRun.cleanupIncomplete({ olderThanMs: hour }), []);
    assert.ok(filesIn('main').includes(partial));

    await age('main', partial, 2 * hour);
    await age('main', kept.name, 2 * hour);
    assert.deepEqual(await nextRun.cleanupIncomplete({ olderThanMs: hour }), [`main/${partial}`]);
    assertFiles('main', [kept.name, `${kept.id}.manifest.json`, 'notes.txt']);
    assert.deepEqual(
      (await storage.list()).backups.map((m) => m.id),
      [kept.id],
    );
  });

  it('a crash after the artifact rename but before the manifest: not listed, then cleaned up', async () => {
    const target = 'main';
    const id = newBackupId(target);
    const name = `${id}.sql.zst`;
    const data = randomBytes(2000);
    await storage.putArtifact(id, name, Readable.from([data]));
    const realRename = fsp.rename.bind(fsp);
    mock.method(fsp, 'rename', async (from: string, to: string) => {
      if (to.endsWith('.manifest.json'))
        throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
      return realRename(from, to);
    });
    const manifest = manifestFor(id, target, name, await hashReadable(Readable.from([data])), new Date());
    await assert.rejects(storage.finalize(id, name, manifest), { code: 'E_STORAGE_WRITE' });
    mock.restoreAll();
    assertFiles(target, [name], 'artifact renamed; the manifest partial was removed');
    assert.deepEqual((await storage.list()).backups, []);
    await age(target, name, 2 * hour);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour }), [`${target}/${name}`]);
    assertFiles(target, []);
  });

  it('cleanup also removes stale verification records and manifest partials, but never complete backups', async () => {
    const kept = await makeBackup(storage);
    const ghostId = newBackupId('main', new Date('2026-01-01T00:00:00Z'));
    const dir = path.join(root, 'main');
    await fsp.writeFile(path.join(dir, `${ghostId}.verified.json`), '{}');
    await fsp.writeFile(path.join(dir, `.${ghostId}.manifest.json.partial-abcdef`), '{}');
    for (const f of filesIn('main')) await age('main', f, 48 * hour);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour }), [
      `main/.${ghostId}.manifest.json.partial-abcdef`,
      `main/${ghostId}.verified.json`,
    ]);
    assertFiles('main', [kept.name, `${kept.id}.manifest.json`]);
    await assert.rejects(storage.cleanupIncomplete({ olderThanMs: -1 }), { code: 'E_CLEANUP_GRACE' });
  });

  it('delete removes the manifest first, so a half-deleted backup is never listed', async () => {
    const b = await makeBackup(storage);
    await storage.writeVerification(b.manifest, {
      verifiedAt: new Date().toISOString(),
      ok: true,
      details: [],
    });
    const unlinked: string[] = [];
    const realUnlink = fsp.unlink.bind(fsp);
    mock.method(fsp, 'unlink', async (file: string) => {
      unlinked.push(path.basename(file));
      if (file.endsWith('.sql.zst')) throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
      return realUnlink(file);
    });
    await assert.rejects(storage.delete(b.manifest), { code: 'E_STORAGE_DELETE' });
    mock.restoreAll();
    assert.deepEqual(unlinked, [`${b.id}.manifest.json`, `${b.id}.verified.json`, b.name]);
    assert.deepEqual(await storage.list(), { backups: [], problems: [] });
    assertFiles('main', [b.name], 'the artifact is left as an orphan');
    await age('main', b.name, 2 * hour);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour }), [`main/${b.name}`]);

    const c = await makeBackup(storage);
    await storage.delete(c.manifest);
    assertFiles('main', []);
    await storage.delete(c.manifest); // idempotent
  });

  it('a malformed manifest is reported as a problem while the others are listed', async () => {
    const good = await makeBackup(storage);
    const badId = newBackupId('main', new Date('2026-02-01T00:00:00Z'));
    await fsp.writeFile(path.join(root, 'main', `${badId}.sql.zst`), 'x');
    await fsp.writeFile(path.join(root, 'main', `${badId}.manifest.json`), '{"formatVersion": 1, "id": ');
    const emptyId = newBackupId('main', new Date('2026-02-02T00:00:00Z'));
    await fsp.writeFile(
      path.join(root, 'main', `${emptyId}.manifest.json`),
      JSON.stringify({ ...good.manifest, id: emptyId, artifact: `${emptyId}.sql.zst`, rawBytes: 0 }),
    );
    const lostId = newBackupId('main', new Date('2026-02-03T00:00:00Z'));
    await fsp.writeFile(
      path.join(root, 'main', `${lostId}.manifest.json`),
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
    for (const f of filesIn('main')) await age('main', f, 48 * hour);
    assert.deepEqual(await storage.cleanupIncomplete({ olderThanMs: hour }), []);
  });

  it('creates directories 0700 and files 0600', async () => {
    const b = await makeBackup(storage);
    await storage.writeVerification(b.manifest, {
      verifiedAt: new Date().toISOString(),
      ok: true,
      details: ['ok'],
    });
    assert.equal(statSync(root).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(root, 'main')).mode & 0o777, 0o700);
    for (const f of filesIn('main')) {
      assert.equal(statSync(path.join(root, 'main', f)).mode & 0o777, 0o600, f);
    }
    assertFiles('main', [b.name, `${b.id}.manifest.json`, `${b.id}.verified.json`]);
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

    await fsp.writeFile(path.join(root, 'main', `${b.id}.verified.json`), 'garbage');
    const { backups, problems } = await storage.list();
    assert.equal(backups[0]?.verification, null);
    assert.match(problems[0]?.message ?? '', /unreadable verification record/);

    const missing = { ...b.manifest, id: newBackupId('main'), artifact: 'x' };
    missing.artifact = `${missing.id}.sql.zst`;
    await assert.rejects(storage.writeVerification(missing, newer), { code: 'E_BACKUP_NOT_FOUND' });
  });

  it('a source that fails mid-put leaves no artifact, no partial and no manifest', async () => {
    const id = newBackupId('main');
    const name = `${id}.sql.zst`;
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent >= 3 * 65536) {
          this.destroy(new Error('pg_dump exited with code 1'));
          return;
        }
        sent += 65536;
        this.push(randomBytes(65536));
      },
    });
    await assert.rejects(storage.putArtifact(id, name, failing), (err: unknown) => {
      assert.ok(err instanceof DbwardError);
      assert.equal(err.code, 'E_STORAGE_WRITE');
      assert.match(err.message, /pg_dump exited with code 1/);
      return true;
    });
    assertFiles('main', []);
    await assert.rejects(
      storage.finalize(
        id,
        name,
        manifestFor(id, 'main', name, { bytes: 1, sha256: 'a'.repeat(64) }, new Date()),
      ),
      {
        code: 'E_STORAGE_NO_ARTIFACT',
      },
    );
    assert.deepEqual((await storage.list()).backups, []);
  });

  it('a DbwardError from the source (e.g. zstd failing) comes through as is', async () => {
    const id = newBackupId('main');
    const failing = new Readable({
      read() {
        this.destroy(new DbwardError('E_ZSTD_FAILED', 'zstd (compress) exited with code 1'));
      },
    });
    await assert.rejects(storage.putArtifact(id, `${id}.sql.zst`, failing), { code: 'E_ZSTD_FAILED' });
    assertFiles('main', []);
  });

  it('refuses names that would leave the storage directory', async () => {
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

  it('a read-only directory is a clean error', async (t) => {
    await makeBackup(storage);
    const dir = path.join(root, 'main');
    await fsp.chmod(dir, 0o500);
    try {
      // root (as in CI containers) ignores permission bits: then there is nothing to test.
      const probe = path.join(dir, '.probe');
      const writable = await fsp.writeFile(probe, '').then(
        () => true,
        () => false,
      );
      if (writable) {
        await fsp.unlink(probe);
        t.skip('running as root (or with CAP_DAC_OVERRIDE): chmod 0500 does not block writes');
        return;
      }
      const id = newBackupId('main');
      await assert.rejects(
        storage.putArtifact(id, `${id}.sql.zst`, Readable.from([Buffer.from('x')])),
        (err: unknown) => {
          assert.ok(err instanceof DbwardError);
          assert.equal(err.code, 'E_STORAGE_WRITE');
          assert.match(err.message, /EACCES/);
          assert.match(err.hint ?? '', /write access/);
          return true;
        },
      );
    } finally {
      await fsp.chmod(dir, 0o700);
    }
  });
});

describe('openStorage', () => {
  it('opens a local directory, relative to the working directory', () => {
    const s = openStorage('backups/here', { cwd: '/srv/app' });
    assert.ok(s instanceof LocalStorage);
    assert.equal(s.location, '/srv/app/backups/here');
    assert.equal(openStorage(undefined, { cwd: '/srv/app' }).location, '/srv/app/dbward-backups');
    assert.equal(openStorage('/abs/dir').location, '/abs/dir');
    assert.equal(openStorage('file:///var/backups/db').location, '/var/backups/db');
  });

  it('opens s3:// as S3 storage (see s3-storage.test.ts), and refuses unknown schemes', () => {
    const s3 = openStorage('s3://bucket/prefix', { s3: { endpoint: 'http://127.0.0.1:1' } });
    assert.ok(s3 instanceof DeferredS3Storage, 'S3 storage whose SDK loads on first use');
    assert.equal(s3.location, 's3://bucket/prefix');
    s3.close();
    assert.throws(() => openStorage('ftp://host/dir'), { code: 'E_CONFIG' });
    assert.throws(() => openStorage('  '), { code: 'E_CONFIG' });
  });
});

// The behaviours every storage promises, run against a local directory too.
storageContract('local', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dbward-storage-contract-'));
  const base = path.join(dir, 'backups');
  const at = (target: string, name: string): string => path.join(base, target, name);
  return Promise.resolve({
    storage: new LocalStorage(base),
    reopen: () => new LocalStorage(base),
    names: async (target: string) => (await fsp.readdir(path.join(base, target)).catch(() => [])).sort(),
    writeRaw: async (target: string, name: string, content: string | Buffer) => {
      await fsp.mkdir(path.join(base, target), { recursive: true, mode: 0o700 });
      await fsp.writeFile(at(target, name), content);
    },
    removeRaw: (target: string, name: string) => fsp.unlink(at(target, name)),
    cleanup: () => fsp.rm(dir, { recursive: true, force: true }),
  });
});
