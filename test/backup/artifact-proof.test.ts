/**
 * How restore's check pass proves an artifact (src/backup/read-artifact.ts, the `fast` proof), on
 * real backups of a SQLite file: an encrypted artifact by its AES-GCM tags, final-chunk marker and
 * size (no SHA-256 pass), an unencrypted one by its size and SHA-256; `sha256` always compares
 * the SHA-256. Each case is also shown failing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { BackupKey, generateBackupKey } from '../../src/backup/backup-key.js';
import type { BackupManifest } from '../../src/backup/manifest.js';
import { checkArtifact, openPlainArtifact } from '../../src/backup/read-artifact.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { openStorage } from '../../src/storage/open-storage.js';
import { runCli } from '../helpers/run-cli.js';

const { Database: Driver } = await loadSqliteDriver();

describe('artifact proof of the restore check pass', () => {
  let dir: string;
  const keyText = generateBackupKey();
  const key = BackupKey.parse(keyText, 'test');
  let encrypted: BackupManifest;
  let older: BackupManifest;
  let plain: BackupManifest;
  const storage = (): ReturnType<typeof openStorage> => openStorage(path.join(dir, 'backups'));
  const artifactOf = (m: BackupManifest): string =>
    path.join(dir, 'backups', 'app', `${m.id}.${m.artifact.split('.').slice(1).join('.')}`);

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'dbward-proof-'));
    const db = new Driver(path.join(dir, 'app.db'));
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    const insert = db.prepare('INSERT INTO notes (body) VALUES (?)');
    // Random text, over several 1 MiB encryption chunks once compressed.
    db.transaction(() => {
      for (let i = 0; i < 15_000; i++) insert.run(randomBytes(200).toString('base64'));
    })();
    db.close();
    writeFileSync(
      path.join(dir, 'dbward.config.json'),
      JSON.stringify({ targets: { app: 'sqlite:./app.db' }, backups: { storage: './backups' } }),
    );
    const env = { DBWARD_BACKUP_KEY: keyText };
    for (const args of [
      ['backup', '--no-verify'],
      ['backup', '--no-verify'],
      ['backup', '--no-encrypt', '--no-verify'],
    ]) {
      const run = await runCli(args, { cwd: dir, env });
      assert.equal(run.code, 0, run.all);
    }
    const { backups } = await storage().list();
    // Newest first.
    [plain, encrypted, older] = backups as [BackupManifest, BackupManifest, BackupManifest];
    assert.equal(plain.encryption, null);
    assert.ok(encrypted.encryption && older.encryption);
    assert.ok(encrypted.storedBytes > 2 * 1024 * 1024, `several chunks: ${encrypted.storedBytes} bytes`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const corrupt = (err: Error & { code?: string }): boolean => err.code === 'E_BACKUP_CORRUPT';

  it('passes both kinds of intact artifact', async () => {
    await checkArtifact(storage(), encrypted, key);
    await checkArtifact(storage(), plain, null);
  });

  it('an encrypted artifact is proven by its tags and size, without the SHA-256', async () => {
    const otherSha = { ...encrypted, sha256: '0'.repeat(64) };
    await checkArtifact(storage(), otherSha, key);
    // The full proof still compares it.
    const full = await openPlainArtifact(storage(), otherSha, key, { decompress: false });
    await pipeline(full.stream, new Writable({ write: (_c, _e, cb) => cb() }));
    await assert.rejects(full.done, /SHA-256/);
    // A size that differs from the manifest's is caught.
    await assert.rejects(
      checkArtifact(storage(), { ...encrypted, storedBytes: encrypted.storedBytes + 1 }, key),
      (err: Error & { code?: string }) =>
        corrupt(err) && /bytes\) is not the one the manifest describes/.test(err.message),
    );
  });

  it('a manifest from before the header was recorded falls back to the SHA-256', async () => {
    const { header, ...withoutHeader } = encrypted.encryption!;
    assert.match(header ?? '', /^[0-9a-f]{88}$/, 'the 44-byte header, in hex');
    const old = { ...encrypted, encryption: withoutHeader };
    await checkArtifact(storage(), old, key);
    await assert.rejects(checkArtifact(storage(), { ...old, sha256: '0'.repeat(64) }, key), /SHA-256/);
  });

  it('an unencrypted artifact is proven by its SHA-256', async () => {
    await assert.rejects(
      checkArtifact(storage(), { ...plain, sha256: '0'.repeat(64) }, null),
      (err: Error & { code?: string }) => corrupt(err) && /SHA-256/.test(err.message),
    );
  });

  it('a flipped byte, a cut and another backup’s artifact in its place are all caught', async () => {
    const file = artifactOf(encrypted);
    const original = readFileSync(file);
    try {
      const flipped = Buffer.from(original);
      flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
      writeFileSync(file, flipped);
      await assert.rejects(
        checkArtifact(storage(), encrypted, key),
        (err: Error & { code?: string }) =>
          corrupt(err) && /authentication failed at chunk/.test(err.message),
      );
      writeFileSync(file, original.subarray(0, 1024 * 1024 + 44 + 16));
      await assert.rejects(checkArtifact(storage(), encrypted, key), /cut short/);
      // A valid artifact of the same key and size, but another backup's: its header gives it away.
      copyFileSync(artifactOf(older), file);
      assert.equal(older.storedBytes, encrypted.storedBytes, 'two backups of the same file');
      await assert.rejects(
        checkArtifact(storage(), encrypted, key),
        (err: Error & { code?: string }) => corrupt(err) && /header differs/.test(err.message),
      );
    } finally {
      writeFileSync(file, original);
    }
    await checkArtifact(storage(), encrypted, key);
  });
});
