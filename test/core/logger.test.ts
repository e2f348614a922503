import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stderrLogger } from '../../src/core/logger.js';
import { registerSecret } from '../../src/core/redact.js';

/** Capture what a function writes to stderr. */
function captureStderr(fn: () => void): string {
  const original = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = original;
  }
  return text;
}

describe('stderrLogger', () => {
  it('redacts secrets in messages and fields', () => {
    registerSecret('logSecret123');
    const out = captureStderr(() =>
      stderrLogger().warn('pool error for postgres://app:pw777@db/app', {
        detail: 'auth logSecret123 failed',
      }),
    );
    assert.match(out, /dbward warn: pool error/);
    assert.ok(!out.includes('pw777') && !out.includes('logSecret123'), out);
  });

  it('prints debug and info only when verbose', () => {
    const quiet = captureStderr(() => {
      stderrLogger().debug('d');
      stderrLogger().info('i');
    });
    assert.equal(quiet, '');
    const verbose = captureStderr(() => stderrLogger({ verbose: true }).debug('shown'));
    assert.match(verbose, /dbward debug: shown/);
  });
});
