#!/usr/bin/env node
// Decrypt a dbward backup artifact (dbward-enc v1) without dbward: Node.js ≥ 18 and nothing else.
// The format is specified in docs/backups.md ("Encryption format"); this file is that
// specification as code, kept short so it can be read and audited in a minute.
//
//   DBWARD_BACKUP_KEY=… node dbward-decrypt.mjs < main-….pgdump.zst.enc > main-….pgdump.zst
//
// The key (64 hex or 44 base64 characters) is read from DBWARD_BACKUP_KEY, never from argv. Exits
// non-zero, having written only authenticated plaintext, when a chunk fails authentication or the
// input ends without its final chunk.
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';

const text = (process.env.DBWARD_BACKUP_KEY ?? '').trim();
const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
if (key.length !== 32)
  fail('set DBWARD_BACKUP_KEY to the 32-byte backup key (64 hex or 44 base64 characters)');

const input = [];
for await (const chunk of process.stdin) input.push(chunk);
const data = Buffer.concat(input); // simple rather than streaming; see docs for large artifacts

const header = data.subarray(0, 44);
if (header.subarray(0, 8).toString('latin1') !== 'DBWENC1\n' || header[8] !== 1)
  fail('not a dbward-enc v1 artifact');
const chunkSize = header.readUInt32BE(9);
const salt = header.subarray(13, 29);
const prefix = header.subarray(29, 36);
const keyId = header.subarray(36, 44).toString('hex');
const ourId = createHmac('sha256', key)
  .update('dbward backup key id')
  .digest()
  .subarray(0, 8)
  .toString('hex');
if (keyId !== ourId) fail(`encrypted with key id ${keyId}; this key has id ${ourId}`);
const dataKey = Buffer.from(hkdfSync('sha256', key, salt, 'dbward backup v1 data key', 32));

let offset = 44;
for (let index = 0; ; index++) {
  const block = data.subarray(offset, offset + chunkSize + 16);
  const final = offset + block.length >= data.length && block.length < chunkSize + 16;
  if (block.length < 16 || (!final && block.length < chunkSize + 16)) fail(`truncated at chunk ${index}`);
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = final ? 1 : 0;
  const decipher = createDecipheriv('aes-256-gcm', dataKey, nonce);
  decipher.setAAD(header);
  decipher.setAuthTag(block.subarray(block.length - 16));
  let plain;
  try {
    plain = Buffer.concat([decipher.update(block.subarray(0, block.length - 16)), decipher.final()]);
  } catch {
    fail(`chunk ${index} failed authentication: damaged, or cut short`);
  }
  process.stdout.write(plain);
  offset += block.length;
  if (final) break;
}

function fail(message) {
  process.stderr.write(`dbward-decrypt: ${message}\n`);
  process.exit(1);
}
