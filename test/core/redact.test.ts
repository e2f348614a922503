import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redact, redactedJson, redactUrl, registerSecret, REDACTED } from '../../src/core/redact.js';
import { DbwardError } from '../../src/core/errors.js';
import { parseNetworkUrl } from '../../src/core/connection-spec.js';

describe('redaction', () => {
  it('redacts the password of any URL in free text', () => {
    const text = 'failed to reach postgres://app:hunter2x@db:5432/app and mysql://root:pw9@h/x';
    const out = redact(text);
    assert.ok(!out.includes('hunter2x') && !out.includes('pw9'));
    assert.ok(out.includes(`postgres://app:${REDACTED}@db:5432/app`));
  });

  it('redacts registered secrets wherever they appear, raw and percent-encoded', () => {
    registerSecret('s3cr3t/with@chars');
    assert.equal(redact('password is s3cr3t/with@chars'), `password is ${REDACTED}`);
    assert.equal(redact('url has s3cr3t%2Fwith%40chars'), `url has ${REDACTED}`);
  });

  it('parsing a URL registers its password even when the URL is malformed', () => {
    assert.throws(() => parseNetworkUrl('postgres://u:Zq8malformedPw@host:99999999/db'));
    assert.ok(!redact('leak Zq8malformedPw').includes('Zq8malformedPw'));
  });

  it('redactUrl hides the password and secret query parameters', () => {
    const out = redactUrl('postgres://u:pw1234@h/db?sslmode=require&password=qq77');
    assert.ok(!out.includes('pw1234') && !out.includes('qq77'));
    assert.ok(out.includes('sslmode=require'));
  });

  it('redactedJson masks password-like keys and secrets, including JSON-escaped ones', () => {
    registerSecret('q"uote\\d');
    const text = redactedJson({ url: 'postgres://u:pw55@h/db', token: 't', note: 'has q"uote\\d inside' });
    assert.ok(!text.includes('pw55'));
    assert.ok(!text.includes('uote'));
    assert.deepEqual(JSON.parse(text), {
      url: `postgres://u:${REDACTED}@h/db`,
      token: REDACTED,
      note: `has ${REDACTED} inside`,
    });
  });

  it('DbwardError messages and hints are redacted at construction', () => {
    registerSecret('ctorSecret77');
    const err = new DbwardError('E_X', 'bad ctorSecret77', { hint: 'try ctorSecret77' });
    assert.ok(!err.message.includes('ctorSecret77'));
    assert.ok(!err.hint?.includes('ctorSecret77'));
  });
});
