import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, NotAvailableError } from '../../src/core/errors.js';
import { engineForUrl, usableEngineForUrl } from '../../src/engines/registry.js';
import { parseSqliteUrl } from '../../src/engines/sqlite/sqlite-url.js';

describe('engine registry', () => {
  const cases: [string, string][] = [
    ['postgres://u@h/db', 'postgres'],
    ['postgresql://u@h/db', 'postgres'],
    ['mysql://root@h/db', 'mysql'],
    ['mariadb://root@h/db', 'mysql'],
    ['sqlite:db/app.db', 'sqlite'],
    ['sqlite:///abs/app.db', 'sqlite'],
    ['file:./dev.db', 'sqlite'],
    ['./app.sqlite3', 'sqlite'],
    ['/var/lib/app.db', 'sqlite'],
    [':memory:', 'sqlite'],
    ['redis://h:6379/0', 'redis'],
    ['rediss://h:6380', 'redis'],
    ['mongodb://h/db', 'mongodb'],
    ['mongodb+srv://cluster.example/db', 'mongodb'],
  ];
  for (const [url, id] of cases) {
    it(`${url} → ${id}`, () => assert.equal(engineForUrl(url).id, id));
  }

  it('rejects an unknown scheme with the accepted ones, and hides the password', () => {
    assert.throws(
      () => engineForUrl('oracle://scott:tiger99@h/db'),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('Unknown URL scheme "oracle:"') &&
        !err.message.includes('tiger99') &&
        !!err.hint?.includes('postgres'),
    );
  });

  it('reports MongoDB as not available yet', () => {
    assert.throws(() => usableEngineForUrl('mongodb://h/db'), NotAvailableError);
  });

  it('resolves SQLite locations the way dbmate and Prisma write them', () => {
    assert.equal(parseSqliteUrl('sqlite:db/app.db').file, path.resolve('db/app.db'));
    assert.equal(parseSqliteUrl('sqlite:///abs/app.db').file, '/abs/app.db');
    assert.equal(parseSqliteUrl('sqlite://./rel.db').file, path.resolve('rel.db'));
    assert.equal(parseSqliteUrl('file:./dev.db?mode=ro').file, path.resolve('dev.db'));
    assert.equal(parseSqliteUrl('file:./dev.db?mode=ro').params.mode, 'ro');
    assert.equal(parseSqliteUrl('sqlite::memory:').file, ':memory:');
  });
});
