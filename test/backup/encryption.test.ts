import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { BACKUP_KEY_ENV, BackupKey, generateBackupKey, loadBackupKey } from '../../src/backup/backup-key.js';
import {
  chunkNonce,
  createDecryptStream,
  createEncryptStream,
  DEFAULT_CHUNK_SIZE,
  describeScheme,
  ENCRYPTION_HEADER_BYTES,
  readEncryptionHeader,
  TAG_BYTES,
  verifyEncrypted,
} from '../../src/backup/encryption.js';
import { ConfigError, DbwardError } from '../../src/core/errors.js';
import { ExitCode } from '../../src/core/exit-codes.js';

const HEX = '0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0';
const key = BackupKey.parse(HEX, 'test');
const otherKey = BackupKey.fromBytes(randomBytes(32), 'other');

/** Split a buffer into pieces of varying sizes, so that framing is exercised across boundaries. */
function pieces(data: Buffer, seed = 7): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  let n = seed;
  while (at < data.length) {
    n = (n * 1103515245 + 12345) % 2147483648;
    const len = 1 + (n % 9000);
    out.push(data.subarray(at, at + len));
    at += len;
  }
  return out;
}

async function encrypt(data: Buffer, chunkSize?: number, withKey = key): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(pieces(data)),
    createEncryptStream(withKey, chunkSize === undefined ? {} : { chunkSize }),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        parts.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

interface DecryptResult {
  output: Buffer;
  error: DbwardError | undefined;
}

/** Decrypt, collecting whatever the stream emits before it fails. */
async function decrypt(artifact: Buffer, withKey = key): Promise<DecryptResult> {
  const parts: Buffer[] = [];
  let error: DbwardError | undefined;
  try {
    await pipeline(
      Readable.from(pieces(artifact, 3)),
      createDecryptStream(withKey),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          parts.push(chunk);
          cb();
        },
      }),
    );
  } catch (err) {
    assert.ok(err instanceof DbwardError, `expected a DbwardError, got ${String(err)}`);
    error = err;
  }
  return { output: Buffer.concat(parts), error };
}

function flipped(artifact: Buffer, at: number, mask = 0x01): Buffer {
  const copy = Buffer.from(artifact);
  copy[at]! ^= mask;
  return copy;
}

function expectedLength(size: number, chunkSize: number): number {
  const chunks = Math.floor(size / chunkSize) + 1;
  return ENCRYPTION_HEADER_BYTES + size + chunks * TAG_BYTES;
}

const CS = 1024;
/** Offset of chunk i in an artifact with chunk size CS. */
const chunkAt = (i: number): number => ENCRYPTION_HEADER_BYTES + i * (CS + TAG_BYTES);

describe('dbward-enc v1 round trip', () => {
  for (const size of [0, 1, CS - 1, CS, CS + 1, 3 * CS + 5]) {
    it(`round-trips ${size} bytes (chunk size ${CS})`, async () => {
      const data = randomBytes(size);
      const artifact = await encrypt(data, CS);
      assert.equal(artifact.length, expectedLength(size, CS));
      const { output, error } = await decrypt(artifact);
      assert.equal(error, undefined);
      assert.ok(output.equals(data));
      assert.deepEqual(await verifyEncrypted(Readable.from([artifact]), key), {
        chunks: Math.floor(size / CS) + 1,
        plaintextBytes: size,
      });
    });
  }

  it('round-trips with the default 1 MiB chunk size', async () => {
    const data = randomBytes(DEFAULT_CHUNK_SIZE * 2 + 333);
    const artifact = await encrypt(data);
    assert.equal(readEncryptionHeader(artifact).chunkSize, DEFAULT_CHUNK_SIZE);
    assert.ok((await decrypt(artifact)).output.equals(data));
  });

  it('round-trips ~20 MB of random data with a small chunk size', async () => {
    const data = randomBytes(20 * 1000 * 1000 + 17);
    const artifact = await encrypt(data, 4093);
    const { output, error } = await decrypt(artifact);
    assert.equal(error, undefined);
    assert.ok(output.equals(data));
  });

  it('never produces the same artifact twice (random salt and nonce prefix)', async () => {
    const data = Buffer.from('same plaintext');
    const a = await encrypt(data, CS);
    const b = await encrypt(data, CS);
    assert.ok(!a.equals(b));
    assert.ok(!a.includes(data) && !b.includes(data));
  });

  it('writes the header fields, including the key id', async () => {
    const artifact = await encrypt(Buffer.from('x'), 4096);
    assert.equal(artifact.subarray(0, 8).toString('latin1'), 'DBWENC1\n');
    const header = readEncryptionHeader(artifact);
    assert.equal(header.version, 1);
    assert.equal(header.chunkSize, 4096);
    assert.equal(header.keyId, key.id);
    assert.equal(key.id.length, 16);
  });

  it('rejects invalid chunk sizes', () => {
    for (const chunkSize of [0, -1, 1.5, 64 * 1024 * 1024 + 1]) {
      assert.throws(() => createEncryptStream(key, { chunkSize }), /invalid encryption chunk size/);
    }
  });

  it('refuses to count past 2^32 chunks', () => {
    const prefix = Buffer.alloc(7, 0xab);
    assert.equal(chunkNonce(prefix, 0xffffffff, true).toString('hex'), 'abababababababffffffff01');
    assert.equal(chunkNonce(prefix, 1, false).toString('hex'), 'ababababababab0000000100');
    assert.throws(
      () => chunkNonce(prefix, 0x100000000, false),
      (err: DbwardError) => err.code === 'E_BACKUP_TOO_LARGE' && /counter overflow/.test(err.message),
    );
  });

  it('describes the scheme for the manifest, without key material', () => {
    const scheme = describeScheme();
    assert.deepEqual(scheme, {
      scheme: 'dbward-enc-v1',
      cipher: 'AES-256-GCM',
      chunkSize: DEFAULT_CHUNK_SIZE,
      kdf: 'HKDF-SHA256',
    });
    assert.equal(describeScheme({ chunkSize: 4096 }).chunkSize, 4096);
  });
});

describe('dbward-enc v1 tampering', () => {
  // 3 full chunks and a final chunk of 5 bytes.
  const data = randomBytes(3 * CS + 5);
  let artifact: Buffer;
  before(async () => {
    artifact = await encrypt(data, CS);
  });

  function assertFails(result: DecryptResult, code: string, message?: RegExp): DbwardError {
    assert.ok(result.error, `expected ${code}, but decryption succeeded`);
    assert.equal(result.error.code, code, result.error.message);
    assert.equal(result.error.exitCode, ExitCode.failed);
    assert.ok(result.error.hint);
    if (message) assert.match(result.error.message, message);
    return result.error;
  }

  it('a flipped magic byte: not a dbward encrypted artifact', async () => {
    const result = await decrypt(flipped(artifact, 2));
    assertFails(result, 'E_BACKUP_CORRUPT', /not a dbward encrypted artifact/);
    assert.equal(result.output.length, 0);
  });

  it('a plain dump is not a dbward encrypted artifact', async () => {
    assertFails(
      await decrypt(Buffer.from('PGDMP\x01\x0f\x00 plain dump')),
      'E_BACKUP_CORRUPT',
      /not a dbward/,
    );
  });

  it('a newer format version: written by a newer dbward', async () => {
    const copy = Buffer.from(artifact);
    copy[8] = 2;
    assertFails(await decrypt(copy), 'E_BACKUP_UNSUPPORTED', /written by a newer dbward/);
  });

  it('a flipped chunk-size byte fails authentication of chunk 0', async () => {
    assertFails(await decrypt(flipped(artifact, 12)), 'E_BACKUP_CORRUPT', /chunk 0/);
  });

  it('a flipped salt byte fails authentication of chunk 0', async () => {
    const result = await decrypt(flipped(artifact, 20));
    assertFails(result, 'E_BACKUP_CORRUPT', /authentication failed at chunk 0 \(bytes 0–1023\)/);
    assert.equal(result.output.length, 0);
  });

  it('a flipped nonce-prefix byte fails authentication of chunk 0', async () => {
    assertFails(await decrypt(flipped(artifact, 30)), 'E_BACKUP_CORRUPT', /chunk 0/);
  });

  it('a flipped key-id byte is reported as another key, from the header', async () => {
    const result = await decrypt(flipped(artifact, 40));
    assertFails(result, 'E_BACKUP_WRONG_KEY', /encrypted with another key/);
    assert.equal(result.output.length, 0);
  });

  it('a flipped ciphertext byte in chunk 0: corrupt, and nothing at all is emitted', async () => {
    const result = await decrypt(flipped(artifact, chunkAt(0) + 100, 0x80));
    const err = assertFails(result, 'E_BACKUP_CORRUPT', /authentication failed at chunk 0 \(bytes 0–1023\)/);
    assert.match(err.message, /modified or damaged/);
    assert.equal(result.output.length, 0, 'no plaintext may leave a chunk that failed authentication');
  });

  it('a flipped tag byte in the middle chunk names that chunk and its byte range', async () => {
    const result = await decrypt(flipped(artifact, chunkAt(2) - 3));
    const err = assertFails(
      result,
      'E_BACKUP_CORRUPT',
      /authentication failed at chunk 1 \(bytes 1024–2047\)/,
    );
    assert.equal((err as DbwardError & { chunk?: number }).chunk, 1);
    assert.ok(result.output.equals(data.subarray(0, CS)), 'only chunk 0, which verified, is emitted');
  });

  it('a flipped byte in the last chunk', async () => {
    const result = await decrypt(flipped(artifact, artifact.length - 20));
    assertFails(
      result,
      'E_BACKUP_CORRUPT',
      /authentication failed at chunk 3, the last one \(bytes 3072–3076\)/,
    );
    assert.ok(result.output.equals(data.subarray(0, 3 * CS)));
  });

  it('swapped chunks fail authentication', async () => {
    const copy = Buffer.from(artifact);
    artifact.copy(copy, chunkAt(0), chunkAt(1), chunkAt(2));
    artifact.copy(copy, chunkAt(1), chunkAt(0), chunkAt(1));
    assertFails(await decrypt(copy), 'E_BACKUP_CORRUPT', /chunk 0/);
  });

  // The exhaustive sweeps use a small chunk size to keep the artifact short.
  const SMALL = 64;
  const smallData = randomBytes(3 * SMALL + 5);
  let small: Buffer;
  before(async () => {
    small = await encrypt(smallData, SMALL);
  });

  it('every single-bit flip anywhere is detected and emits only verified chunks', async () => {
    for (let at = 0; at < small.length; at++) {
      const result = await decrypt(flipped(small, at, 1 << (at % 8)));
      assert.ok(result.error, `flip at byte ${at} went unnoticed`);
      assert.ok(
        ['E_BACKUP_CORRUPT', 'E_BACKUP_WRONG_KEY', 'E_BACKUP_UNSUPPORTED'].includes(result.error.code),
        `flip at byte ${at}: ${result.error.code}`,
      );
      const chunk =
        at < ENCRYPTION_HEADER_BYTES ? 0 : Math.floor((at - ENCRYPTION_HEADER_BYTES) / (SMALL + TAG_BYTES));
      assert.ok(
        result.output.equals(smallData.subarray(0, chunk * SMALL)),
        `flip at byte ${at} leaked output`,
      );
    }
  });

  it('dropping the final chunk (cut at a chunk boundary) is truncation', async () => {
    const result = await decrypt(artifact.subarray(0, chunkAt(3)));
    assertFails(
      result,
      'E_BACKUP_TRUNCATED',
      /the artifact ends after chunk 2 without its final chunk: it was cut short/,
    );
  });

  it('an artifact of a multiple of the chunk size cut before its empty final chunk', async () => {
    const exact = await encrypt(randomBytes(2 * CS), CS);
    assert.equal(exact.length, chunkAt(2) + TAG_BYTES);
    assertFails(await decrypt(exact.subarray(0, chunkAt(2))), 'E_BACKUP_TRUNCATED', /after chunk 1 /);
  });

  it('cuts in the header, right after it, and mid-chunk are errors', async () => {
    assertFails(await decrypt(Buffer.alloc(0)), 'E_BACKUP_TRUNCATED', /empty/);
    assertFails(await decrypt(artifact.subarray(0, 20)), 'E_BACKUP_TRUNCATED', /inside its header/);
    assertFails(
      await decrypt(artifact.subarray(0, ENCRYPTION_HEADER_BYTES)),
      'E_BACKUP_TRUNCATED',
      /before its first chunk/,
    );
    assertFails(
      await decrypt(artifact.subarray(0, chunkAt(1) + 7)),
      'E_BACKUP_TRUNCATED',
      /middle of chunk 1/,
    );
    assertFails(
      await decrypt(artifact.subarray(0, chunkAt(1) + 500)),
      'E_BACKUP_CORRUPT',
      /chunk 1, the last/,
    );
  });

  it('every proper prefix of the artifact fails', async () => {
    for (let length = 0; length < small.length; length++) {
      const result = await decrypt(small.subarray(0, length));
      assert.ok(result.error, `a cut at ${length} bytes went unnoticed`);
      assert.ok(['E_BACKUP_TRUNCATED', 'E_BACKUP_CORRUPT'].includes(result.error.code));
      assert.ok(smallData.subarray(0, result.output.length).equals(result.output));
    }
  });

  it('data appended after the final chunk is corruption', async () => {
    for (const extra of [1, 16, CS, CS + 16, 3 * (CS + 16)]) {
      const result = await decrypt(Buffer.concat([artifact, randomBytes(extra)]));
      assertFails(result, 'E_BACKUP_CORRUPT');
    }
    // A copy of the final chunk appended again.
    const tail = artifact.subarray(chunkAt(3));
    assertFails(await decrypt(Buffer.concat([artifact, tail])), 'E_BACKUP_CORRUPT', /data appended/);
  });

  it('a wrong key is detected from the header, before any output', async () => {
    const result = await decrypt(artifact, otherKey);
    const err = assertFails(
      result,
      'E_BACKUP_WRONG_KEY',
      new RegExp(
        `this backup was encrypted with another key \\(key id ${key.id}\\); the configured key has id ${otherKey.id}`,
      ),
    );
    assert.equal(result.output.length, 0);
    // The header alone is enough.
    const headerOnly = await decrypt(artifact.subarray(0, ENCRYPTION_HEADER_BYTES), otherKey);
    assert.equal(headerOnly.error?.code, 'E_BACKUP_WRONG_KEY');
    assert.ok(!err.message.includes(HEX));
  });

  it('verifyEncrypted reads through and rejects a damaged artifact', async () => {
    assert.deepEqual(await verifyEncrypted(Readable.from(pieces(artifact)), key), {
      chunks: 4,
      plaintextBytes: data.length,
    });
    await assert.rejects(verifyEncrypted(Readable.from([flipped(artifact, chunkAt(3) - 1)]), key), {
      code: 'E_BACKUP_CORRUPT',
    });
    await assert.rejects(verifyEncrypted(Readable.from([artifact.subarray(0, chunkAt(3))]), key), {
      code: 'E_BACKUP_TRUNCATED',
    });
    await assert.rejects(verifyEncrypted(Readable.from([artifact]), otherKey), {
      code: 'E_BACKUP_WRONG_KEY',
    });
  });
});

describe('backup keys', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dbward-key-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const base64 = Buffer.from(HEX, 'hex').toString('base64');

  it('reads hex and base64, from the environment, a key file or the config', () => {
    const fromHex = loadBackupKey({ env: { [BACKUP_KEY_ENV]: HEX } });
    const fromBase64 = loadBackupKey({ env: {}, configKey: base64 });
    assert.ok(fromHex && fromBase64);
    assert.equal(fromHex.id, key.id);
    assert.equal(fromBase64.id, key.id);
    assert.equal(fromHex.source, BACKUP_KEY_ENV);
    assert.equal(loadBackupKey({ env: { [BACKUP_KEY_ENV]: HEX.toUpperCase() } })?.id, key.id);
    assert.equal(loadBackupKey({ env: { [BACKUP_KEY_ENV]: `  ${base64}\n` } })?.id, key.id);
  });

  it('returns null when no key is configured; an empty variable counts as unset', () => {
    assert.equal(loadBackupKey({ env: {} }), null);
    assert.equal(loadBackupKey({ env: { [BACKUP_KEY_ENV]: '  ' } }), null);
  });

  it('prefers the key file, then the environment, then the config', () => {
    const file = path.join(dir, 'precedence.key');
    writeFileSync(file, `${HEX}\n`, { mode: 0o600 });
    const other = generateBackupKey();
    assert.equal(
      loadBackupKey({ keyFile: file, env: { [BACKUP_KEY_ENV]: other }, configKey: other })?.id,
      key.id,
    );
    assert.equal(loadBackupKey({ env: { [BACKUP_KEY_ENV]: HEX }, configKey: other })?.id, key.id);
  });

  it('rejects a malformed key with a config error that never shows it', () => {
    const bad = [
      HEX.slice(0, 62),
      `${HEX}00`,
      base64.slice(0, 40),
      `${base64.slice(0, 43)}!`,
      'g'.repeat(64),
      '',
    ];
    for (const value of bad) {
      assert.throws(
        () => loadBackupKey({ env: {}, configKey: value }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.exitCode, ExitCode.usage);
          assert.match(err.message, /the backup key from config \(backup\.key\) (is not valid|is empty)/);
          if (value.length > 0) {
            assert.ok(!err.message.includes(value) && !JSON.stringify(err).includes(value));
            assert.ok(!(err.hint ?? '').includes(value));
          }
          return true;
        },
      );
    }
    assert.throws(() => BackupKey.fromBytes(randomBytes(16)), /expected 32 bytes, found 16/);
  });

  it('refuses a key file that group or others can read, accepts a private one', () => {
    const file = path.join(dir, 'backup.key');
    writeFileSync(file, `${base64}\n`);
    chmodSync(file, 0o644);
    if (process.platform !== 'win32') {
      assert.throws(
        () => loadBackupKey({ keyFile: file, env: {} }),
        (err: unknown) =>
          err instanceof ConfigError &&
          /accessible by group or others \(mode 0644\)/.test(err.message) &&
          /chmod 600/.test(err.hint ?? '') &&
          !err.message.includes(base64),
      );
      chmodSync(file, 0o640);
      assert.throws(() => loadBackupKey({ keyFile: file }), /mode 0640/);
    }
    chmodSync(file, 0o600);
    const loaded = loadBackupKey({ keyFile: file, env: {} });
    assert.equal(loaded?.id, key.id);
    assert.equal(loaded?.source, `key file ${file}`);
  });

  it('reports a missing key file and a malformed key file', () => {
    assert.throws(() => loadBackupKey({ keyFile: path.join(dir, 'nope.key') }), /does not exist/);
    const file = path.join(dir, 'short.key');
    writeFileSync(file, 'abcd\n', { mode: 0o600 });
    assert.throws(
      () => loadBackupKey({ keyFile: file }),
      (err: unknown) => err instanceof ConfigError && err.file === file && /not valid/.test(err.message),
    );
  });

  it('generates keys that load', () => {
    const text = generateBackupKey();
    assert.match(text, /^[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(generateBackupKey(), text);
    assert.ok(loadBackupKey({ env: { [BACKUP_KEY_ENV]: text } }));
  });

  it('never reveals the key in JSON, inspect, String or error output', async () => {
    const secretForms = [HEX, HEX.toUpperCase(), base64];
    const printed = [
      JSON.stringify(key),
      JSON.stringify({ nested: { key } }),
      inspect(key),
      inspect(key, { showHidden: true, depth: 10 }),
      inspect({ key }, { showHidden: true }),
      String(key),
      `${key.toString()}`,
      JSON.stringify(describeScheme()),
    ];
    const artifact = await encrypt(Buffer.from('hello'), CS);
    for (const result of [await decrypt(artifact, otherKey), await decrypt(flipped(artifact, 60))]) {
      assert.ok(result.error);
      printed.push(
        result.error.message,
        result.error.hint ?? '',
        JSON.stringify(result.error),
        inspect(result.error),
      );
    }
    for (const text of printed) {
      for (const form of secretForms) assert.ok(!text.includes(form), `key revealed in: ${text}`);
    }
    assert.ok(JSON.stringify(key).includes(key.id));
    assert.ok(!artifact.includes(Buffer.from(HEX, 'hex')));
  });
});

describe('dbward-enc v1 memory', () => {
  it('respects backpressure: a consumer that stops reading stops the source', async () => {
    const plain = randomBytes(64 * 1024 * 1024);
    const cases = [
      { name: 'encrypt', stream: createEncryptStream(key), input: plain },
      { name: 'decrypt', stream: createDecryptStream(key), input: await encrypt(plain) },
    ];
    for (const { name, stream, input } of cases) {
      let pulled = 0;
      const source = Readable.from(
        (function* () {
          for (let at = 0; at < input.length; at += 64 * 1024) {
            pulled = at + 64 * 1024;
            yield input.subarray(at, at + 64 * 1024);
          }
        })(),
      );
      source.pipe(stream); // nobody reads the output
      for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
      // About one chunk (1 MiB) plus the streams' high-water marks; never the whole 64 MiB.
      assert.ok(pulled < 8 * 1024 * 1024, `${name} pulled ${pulled} bytes without a reader`);
      source.destroy();
      stream.destroy();
    }
  });

  it('streams 256 MB through encrypt → decrypt with bounded memory', async (t) => {
    const total = 256 * 1024 * 1024;
    const piece = randomBytes(64 * 1024);
    const expected = createHash('sha256');
    for (let i = 0; i < total / piece.length; i++) expected.update(piece);
    const expectedDigest = expected.digest('hex');

    function source(bytes: number): () => AsyncGenerator<Buffer> {
      return async function* () {
        for (let i = 0; i < bytes / piece.length; i++) yield piece;
      };
    }
    // A warm-up run first, so one-time growth (JIT, heap and allocator arenas) is not counted.
    await pipeline(
      source(32 * 1024 * 1024),
      createEncryptStream(key),
      createDecryptStream(key),
      new Writable({ write: (_c, _e, cb) => cb() }),
    );
    const actual = createHash('sha256');
    let received = 0;
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const started = process.hrtime.bigint();
    try {
      await pipeline(
        source(total),
        createEncryptStream(key),
        createDecryptStream(key),
        new Writable({
          write(chunk: Buffer, _e, cb) {
            received += chunk.length;
            actual.update(chunk);
            peak = Math.max(peak, process.memoryUsage().rss);
            cb();
          },
        }),
      );
    } finally {
      clearInterval(sampler);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.equal(received, total);
    assert.equal(actual.digest('hex'), expectedDigest);
    const growthMb = (peak - baseline) / (1024 * 1024);
    t.diagnostic(
      `256 MiB encrypt→decrypt: ${(256 / seconds).toFixed(0)} MiB/s, peak RSS growth ${growthMb.toFixed(1)} MiB`,
    );
    assert.ok(growthMb < 64, `RSS grew by ${growthMb.toFixed(1)} MiB`);
  });
});
