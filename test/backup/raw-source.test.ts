/**
 * The load pass's raw dump (src/backup/raw-source.ts), on a real backup of a SQLite file: sent
 * straight into a real process's stdin by zstd, it arrives byte for byte as the stream form
 * delivers it; progress reaches the raw size; a damaged artifact makes `done()` fail with the
 * decompressor's or the checksum's error; and the two forms cannot both be used.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openRawSource } from '../../src/backup/raw-source.js';
import type { BackupManifest } from '../../src/backup/manifest.js';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { openStorage } from '../../src/storage/open-storage.js';
import { runCli } from '../helpers/run-cli.js';

const { Database: Driver } = await loadSqliteDriver();

describe('raw source of a restore', () => {
  let dir: string;
  let manifest: BackupManifest;
  const storage = (): ReturnType<typeof openStorage> => openStorage(path.join(dir, 'backups'));

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'dbward-raw-'));
    const db = new Driver(path.join(dir, 'app.db'));
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    const insert = db.prepare('INSERT INTO notes (body) VALUES (?)');
    for (let i = 0; i < 5000; i++) insert.run(`note ${i} ${'x'.repeat(i % 200)}`);
    db.close();
    writeFileSync(
      path.join(dir, 'dbward.config.json'),
      JSON.stringify({ targets: { app: 'sqlite:./app.db' }, backups: { storage: './backups' } }),
    );
    const backup = await runCli(['backup', '--no-encrypt'], { cwd: dir });
    assert.equal(backup.code, 0, backup.all);
    const listed = await storage().list();
    manifest = listed.backups[0]!;
    assert.ok(manifest, 'one backup');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function viaStream(m: BackupManifest): Promise<Buffer> {
    const raw = await openRawSource(storage(), m, null);
    const chunks: Buffer[] = [];
    for await (const chunk of raw.stream) chunks.push(chunk as Buffer);
    await raw.done();
    return Buffer.concat(chunks);
  }

  /** pipeInto a real `cat > file`, as pg_restore would be fed. */
  async function viaPipe(m: BackupManifest, onProgress?: (n: number) => void): Promise<Buffer> {
    const raw = await openRawSource(storage(), m, null, { onProgress });
    const out = path.join(dir, `piped-${Math.random().toString(16).slice(2)}`);
    const child = spawn('sh', ['-c', 'cat > "$0"', out], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    raw.pipeInto(child.stdin);
    const [done, code] = await Promise.allSettled([raw.done(), exited]);
    if (done.status === 'rejected') throw done.reason;
    assert.equal(code.status === 'fulfilled' && code.value, 0);
    return readFileSync(out);
  }

  it('zstd writes the same bytes into a process as the stream delivers, and progress ends at the raw size', async () => {
    const streamed = await viaStream(manifest);
    let last = 0;
    const piped = await viaPipe(manifest, (n) => (last = n));
    assert.equal(streamed.length, manifest.rawBytes);
    assert.equal(streamed.subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    assert.equal(sha(piped), sha(streamed));
    assert.ok(last > 0.9 * manifest.rawBytes && last <= manifest.rawBytes, `progress ended at ${last}`);
  });

  it('a damaged artifact fails done(), naming the decompressor or the checksum', async () => {
    const folder = path.join(dir, 'backups', manifest.target);
    const artifact = path.join(
      folder,
      readdirSync(folder).find((f) => f.endsWith('.zst'))!,
    );
    const original = readFileSync(artifact);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
    writeFileSync(artifact, damaged);
    try {
      await assert.rejects(viaPipe(manifest), (err: Error & { code?: string }) => {
        assert.match(String(err.code), /E_ZSTD_FAILED|E_BACKUP_CORRUPT/);
        return true;
      });
      await assert.rejects(viaStream(manifest), (err: Error & { code?: string }) => {
        assert.match(String(err.code), /E_ZSTD_FAILED|E_BACKUP_CORRUPT/);
        return true;
      });
    } finally {
      writeFileSync(artifact, original);
    }
  });

  it('a reader that exits early is a broken pipe, unless stop() says it had what it needed', async () => {
    const early = async (stop: boolean): Promise<void> => {
      const raw = await openRawSource(storage(), manifest, null);
      // Reads 1000 bytes of ~600 KB and exits 0, as pg_restore does after its last listed entry.
      const child = spawn('sh', ['-c', 'head -c 1000 > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] });
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      raw.pipeInto(child.stdin);
      assert.equal(await exited, 0);
      if (stop) raw.stop();
      await raw.done();
    };
    await assert.rejects(early(false), (err: Error & { code?: string }) => err.code === 'EPIPE');
    await early(true);
  });

  it("prove: 'none' reads without checking the SHA-256 (a second read of a proven artifact)", async () => {
    const wrong = { ...manifest, sha256: '0'.repeat(64) };
    await assert.rejects(viaPipe(wrong), (err: Error & { code?: string }) => err.code === 'E_BACKUP_CORRUPT');
    const raw = await openRawSource(storage(), wrong, null, { prove: 'none' });
    const child = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] });
    raw.pipeInto(child.stdin);
    await raw.done();
  });

  it('a stream form stopped before done() is not an unhandled rejection', async () => {
    // restore -j N stops the shared stream when a pg_restore fails; the decompressor's cut-off
    // pipeline must not end the process with a stack trace before the real error is reported.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const raw = await openRawSource(storage(), manifest, null);
      const reader = raw.stream[Symbol.asyncIterator]();
      // Stopped while zstd is still starting: its pipeline is cut off for sure.
      const first = reader.next().catch(() => undefined);
      raw.stop();
      await first;
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(unhandled, []);
      await raw.done();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('after pipeInto, the stream form refuses to start (and the other way round)', async () => {
    const raw = await openRawSource(storage(), manifest, null);
    const child = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] });
    raw.pipeInto(child.stdin);
    await assert.rejects(
      (async () => {
        for await (const chunk of raw.stream) void chunk;
      })(),
      /already sent straight into a tool/,
    );
    await raw.done();
    const second = await openRawSource(storage(), manifest, null);
    const reader = second.stream[Symbol.asyncIterator]();
    await reader.next();
    const other = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'ignore', 'inherit'] });
    assert.throws(() => second.pipeInto(other.stdin), /already being read/);
    other.kill();
    second.destroy();
  });
});
