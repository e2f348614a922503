/**
 * scripts/dbward-decrypt.mjs, the way to read an encrypted backup without dbward, decrypts what
 * dbward's encryption stream writes — byte for byte — and refuses a damaged or truncated artifact.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BackupKey } from '../../src/backup/backup-key.js';
import { createEncryptStream } from '../../src/backup/encryption.js';

const script = fileURLToPath(new URL('../../scripts/dbward-decrypt.mjs', import.meta.url));
const keyBytes = randomBytes(32);
const key = BackupKey.fromBytes(keyBytes);

async function encrypt(plain: Buffer, chunkSize: number): Promise<Buffer> {
  return buffer(Readable.from([plain]).pipe(createEncryptStream(key, { chunkSize })));
}

function decrypt(artifact: Buffer, keyText = keyBytes.toString('base64')) {
  return spawnSync(process.execPath, [script], {
    input: artifact,
    env: { ...process.env, DBWARD_BACKUP_KEY: keyText },
  });
}

describe('scripts/dbward-decrypt.mjs', () => {
  for (const size of [0, 1, 4096, 4096 * 3, 4096 * 3 + 17]) {
    it(`decrypts a ${size}-byte plaintext exactly (4 KiB chunks)`, async () => {
      const plain = randomBytes(size);
      const run = decrypt(await encrypt(plain, 4096));
      assert.equal(run.status, 0, run.stderr.toString());
      assert.ok(run.stdout.equals(plain));
    });
  }

  it('accepts the hex form of the key, and names the key id of a wrong key', async () => {
    const artifact = await encrypt(randomBytes(100), 4096);
    assert.equal(decrypt(artifact, keyBytes.toString('hex')).status, 0);
    const wrong = decrypt(artifact, randomBytes(32).toString('hex'));
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr.toString(), new RegExp(`key id ${key.id}`));
  });

  it('refuses a flipped byte and a truncated artifact', async () => {
    const artifact = await encrypt(randomBytes(10_000), 4096);
    const flipped = Buffer.from(artifact);
    flipped[5000] = flipped[5000]! ^ 1;
    const bad = decrypt(flipped);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.toString(), /chunk 1 failed authentication/);
    const cut = decrypt(artifact.subarray(0, 44 + 4112 * 2));
    assert.equal(cut.status, 1);
    assert.match(cut.stderr.toString(), /chunk 1 failed authentication|truncated/);
  });
});
