/** Backup ids and the manifest format: what a valid manifest is, and what is refused. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkManifest,
  compareManifestsNewestFirst,
  formatBackupTimestamp,
  isValidArtifactName,
  newBackupId,
  parseBackupId,
  validateManifest,
  type BackupManifest,
} from '../../src/backup/manifest.js';
import { DbwardError } from '../../src/core/errors.js';

function sampleManifest(overrides: Partial<BackupManifest> = {}): BackupManifest {
  const id = overrides.id ?? 'main-20260821T030405Z-9f2c';
  return {
    formatVersion: 1,
    id,
    target: 'main',
    engine: 'postgres',
    serverVersion: '16.4',
    tool: { name: 'pg_dump', version: '16.4' },
    dbwardVersion: '0.1.0',
    startedAt: '2026-08-21T03:04:05.123Z',
    finishedAt: '2026-08-21T03:04:09.456Z',
    durationMs: 4333,
    rawBytes: 1_048_576,
    storedBytes: 151_234,
    sha256: 'a'.repeat(64),
    compression: { algorithm: 'zstd', level: 3 },
    encryption: {
      scheme: 'dbward-enc-v1',
      cipher: 'AES-256-GCM',
      chunkSize: 1048576,
      kdf: 'HKDF-SHA256',
      keyId: '3f9a1c0d5e7b2a64',
    },
    tables: [
      { name: 'public.orders', rows: 1200 },
      { name: 'public.users', rows: 0 },
    ],
    artifact: `${id}.dump.zst.enc`,
    verification: null,
    ...overrides,
  };
}

function problemsOf(json: unknown): string[] {
  const check = checkManifest(json);
  assert.equal(check.ok, false, 'expected the manifest to be refused');
  return check.ok ? [] : check.problems;
}

describe('backup ids', () => {
  it('are <target>-<UTC YYYYMMDDTHHMMSSZ>-<4 hex> and parse back', () => {
    const at = new Date('2026-08-21T03:04:05.678Z');
    const id = newBackupId('main', at);
    assert.match(id, /^main-20260821T030405Z-[0-9a-f]{4}$/);
    const parsed = parseBackupId(id);
    assert.equal(parsed?.target, 'main');
    assert.equal(parsed?.timestamp.toISOString(), '2026-08-21T03:04:05.000Z');
    assert.equal(formatBackupTimestamp(at), '20260821T030405Z');
  });

  it('parse targets that contain dashes and dots', () => {
    const id = newBackupId('eu-west.db-1', new Date('2026-01-02T00:00:00Z'));
    assert.equal(parseBackupId(id)?.target, 'eu-west.db-1');
  });

  it('sort by time as plain strings', () => {
    const times = [
      '2025-12-31T23:59:59Z',
      '2026-01-01T00:00:00Z',
      '2026-01-01T00:00:01Z',
      '2026-10-01T09:00:00Z',
    ];
    const ids = times.map((t) => newBackupId('main', new Date(t)));
    assert.deepEqual([...ids].reverse().sort(), ids);
  });

  it('refuse unsafe target names and reject non-ids', () => {
    for (const bad of ['', '..', '.', 'a/b', 'a b']) {
      assert.throws(() => newBackupId(bad), DbwardError, bad);
    }
    for (const bad of [
      'main',
      'main-20260821T030405Z',
      'main-20261321T030405Z-9f2c',
      '..-20260821T030405Z-9f2c',
      'main-20260821T030405Z-9F2C',
    ]) {
      assert.equal(parseBackupId(bad), undefined, bad);
    }
  });

  it('artifact names are <id>.<ext> plain file names', () => {
    const id = 'main-20260821T030405Z-9f2c';
    assert.ok(isValidArtifactName(id, `${id}.sql.zst`));
    assert.ok(isValidArtifactName(id, `${id}.dump.zst.enc`));
    for (const bad of [
      id,
      `${id}.`,
      `${id}./x`,
      `${id}../x`,
      `other.sql.zst`,
      `${id}.manifest.json`,
      `${id}.verified.json`,
      `${id}.a/b`,
    ]) {
      assert.equal(isValidArtifactName(id, bad), false, bad);
    }
  });
});

describe('manifest', () => {
  it('accepts a complete manifest, with and without encryption and verification', () => {
    assert.deepEqual(validateManifest(sampleManifest()), sampleManifest());
    const plain = sampleManifest({
      encryption: null,
      verification: { verifiedAt: '2026-08-21T04:00:00.000Z', ok: true, details: ['row counts match'] },
    });
    assert.deepEqual(validateManifest(JSON.parse(JSON.stringify(plain))), plain);
  });

  it('refuses an empty dump: a 0-byte backup is never good', () => {
    assert.ok(problemsOf(sampleManifest({ rawBytes: 0 })).some((p) => /rawBytes: an empty dump/.test(p)));
    assert.ok(problemsOf(sampleManifest({ storedBytes: 0 })).some((p) => /storedBytes/.test(p)));
  });

  it('refuses bad checksums, ids, artifact names and timings', () => {
    assert.ok(problemsOf(sampleManifest({ sha256: 'ABC' })).some((p) => p.startsWith('sha256:')));
    assert.ok(problemsOf(sampleManifest({ target: 'other' })).some((p) => /names target "main"/.test(p)));
    assert.ok(
      problemsOf(sampleManifest({ artifact: '../../etc/passwd' })).some((p) => p.startsWith('artifact:')),
    );
    assert.ok(problemsOf(sampleManifest({ id: 'nope' })).some((p) => p.startsWith('id:')));
    assert.ok(
      problemsOf(sampleManifest({ finishedAt: '2026-08-21T03:00:00.000Z' })).some((p) =>
        /finishes before/.test(p),
      ),
    );
    assert.ok(
      problemsOf(sampleManifest({ tables: [{ name: 't', rows: -1 }] })).some((p) =>
        p.startsWith('tables.0.rows'),
      ),
    );
  });

  it('never carries a key: encryption holds scheme, cipher, chunk size, kdf and key id only', () => {
    const m = validateManifest({
      ...sampleManifest(),
      encryption: { ...sampleManifest().encryption, key: 'secret' },
    });
    assert.deepEqual(Object.keys(m.encryption ?? {}).sort(), [
      'chunkSize',
      'cipher',
      'kdf',
      'keyId',
      'scheme',
    ]);
  });

  it('says when a manifest comes from a newer format', () => {
    assert.match(problemsOf({ ...sampleManifest(), formatVersion: 2 })[0] ?? '', /newer dbward/);
  });

  it('validateManifest throws a DbwardError naming every problem', () => {
    assert.throws(
      () => validateManifest({ formatVersion: 1 }),
      (err: unknown) =>
        err instanceof DbwardError &&
        err.code === 'E_MANIFEST_INVALID' &&
        /id:/.test(err.message) &&
        /sha256:/.test(err.message),
    );
    assert.throws(() => validateManifest(null), { code: 'E_MANIFEST_INVALID' });
  });

  it('sorts newest first', () => {
    const older = sampleManifest();
    const newer = sampleManifest({
      id: 'main-20260822T030405Z-0000',
      startedAt: '2026-08-22T03:04:05.000Z',
      finishedAt: '2026-08-22T03:04:06.000Z',
    });
    assert.deepEqual(
      [older, newer].sort(compareManifestsNewestFirst).map((m) => m.id),
      [newer.id, older.id],
    );
  });
});
