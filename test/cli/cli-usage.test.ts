/**
 * The CLI's promises for bad input: one readable message, the documented exit code, no stack
 * trace unless --verbose, and never a password. These run the built CLI as a user would.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSqliteDriver } from '../../src/engines/sqlite/sqlite-driver.js';
import { binPath, runCli } from '../helpers/run-cli.js';

const secret = 'Sup3rSecretPw';
const noStack = (text: string): boolean => !/\n\s+at .+:\d+:\d+/.test(text);

describe('dbward CLI: usage and config errors', () => {
  it('--version prints the package version and exits 0', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), pkg.version);
  });

  it('a reader that stops early (dbward --help | head -1) ends it quietly with exit 0', async () => {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [binPath, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before dbward writes a byte
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('close', (exit) => resolve({ code: exit, stderr: err }));
    });
    assert.equal(stderr, '');
    assert.equal(code, 0);
  });

  it('an unknown option or command exits 2 with a suggestion', async () => {
    const r = await runCli(['inspekt']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'inspekt'/);
    assert.match(r.stderr, /inspect/);
    assert.equal((await runCli(['ping', '--bogus'])).code, 2);
  });

  it('no database configured: exit 2, says how to configure one', async () => {
    const r = await runCli(['inspect'], { cwd: mkdtempSync(path.join(tmpdir(), 'dbward-empty-')) });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /No database configured/);
    assert.match(r.stderr, /DATABASE_URL/);
  });

  it('unknown URL scheme: exit 2, lists the schemes, hides the password', async () => {
    const r = await runCli(['inspect'], { env: { DATABASE_URL: `oracle://scott:${secret}@h/db` } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unknown URL scheme "oracle:"/);
    assert.match(r.stderr, /postgres/);
    assert.ok(!r.all.includes(secret));
    assert.ok(noStack(r.all));
  });

  it('malformed URL: exit 2, hides the password', async () => {
    const r = await runCli(['ping'], { env: { DATABASE_URL: `postgres://app:${secret}@db:notaport/app` } });
    assert.equal(r.code, 2);
    assert.match(r.all, /Malformed database URL/);
    assert.ok(!r.all.includes(secret));
  });

  it('--config naming a missing file: exit 2', async () => {
    const r = await runCli(['targets', '--config', 'does-not-exist.json']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Config file not found: .*does-not-exist\.json/);
  });

  it('invalid config: exit 2, names the file and the key', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-badcfg-'));
    writeFileSync(
      path.join(dir, 'dbward.config.json'),
      '{"targets":{"main":{"url":"sqlite:x.db","pool":{"max":0}}}}',
    );
    const r = await runCli(['targets'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /dbward\.config\.json: "targets\.main\.pool\.max"/);
  });

  it('MongoDB URLs are recognised and reported as not available yet: exit 2', async () => {
    const r = await runCli(['ping'], { env: { DATABASE_URL: 'mongodb://localhost/app' } });
    assert.equal(r.code, 2);
    assert.match(r.all, /MongoDB support is not available yet/);
  });

  it('--json prints errors as JSON on stdout', async () => {
    const r = await runCli(['inspect', '--json'], { env: { DATABASE_URL: 'oracle://h/db' } });
    assert.equal(r.code, 2);
    const parsed = JSON.parse(r.stdout) as { error: { code: string; exitCode: number } };
    assert.equal(parsed.error.code, 'E_CONFIG');
    assert.equal(parsed.error.exitCode, 2);
  });

  it('a password in --url triggers a warning about ps', async () => {
    const r = await runCli(['ping', '--url', `postgres://u:${secret}@127.0.0.1:1/db`]);
    assert.match(r.stderr, /visible to other users/);
    assert.ok(!r.all.includes(secret));
  });
});

describe('dbward CLI: connection failures', () => {
  let silent: net.Server;
  let silentPort = 0;
  let closedPort = 0;
  before(async () => {
    // A server that accepts and never answers: the handshake can only end by timing out.
    silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as net.AddressInfo).port;
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
  after(() => silent.close());

  for (const scheme of ['postgres', 'mysql', 'redis']) {
    const db = scheme === 'redis' ? '0' : 'db';
    it(`${scheme}: connection refused → exit 3, diagnosis and hint, no password, no stack`, async () => {
      const r = await runCli(['ping'], {
        env: { DATABASE_URL: `${scheme}://u:${secret}@127.0.0.1:${closedPort}/${db}` },
      });
      assert.equal(r.code, 3, r.all);
      assert.match(r.stdout + r.stderr, /Connection refused/);
      assert.match(r.all, /hint:/);
      assert.ok(!r.all.includes(secret));
      assert.ok(noStack(r.all));
    });

    it(`${scheme}: a silent server times out within the configured connect timeout → exit 3`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'dbward-timeout-'));
      writeFileSync(
        path.join(dir, 'dbward.config.json'),
        JSON.stringify({
          targets: {
            main: { url: `${scheme}://u:${secret}@127.0.0.1:${silentPort}/${db}`, connectTimeout: '1s' },
          },
        }),
      );
      const started = Date.now();
      const r = await runCli(['ping'], { cwd: dir });
      assert.equal(r.code, 3, r.all);
      assert.match(r.all, /Timed out after 1000 ms/);
      assert.ok(Date.now() - started < 10_000);
      assert.ok(!r.all.includes(secret));
    });
  }

  it('unknown host → exit 3 "does not resolve"', async () => {
    const r = await runCli(['ping'], {
      env: { DATABASE_URL: `postgres://u:${secret}@no-such-host.invalid:5432/db` },
    });
    assert.equal(r.code, 3);
    assert.match(r.all, /Unknown host "no-such-host\.invalid"/);
  });

  it('--verbose adds the stack, still without the password', async () => {
    const r = await runCli(['ping', '--verbose'], {
      env: { DATABASE_URL: `postgres://u:${secret}@127.0.0.1:${closedPort}/db` },
    });
    assert.equal(r.code, 3);
    assert.ok(!noStack(r.all));
    assert.ok(!r.all.includes(secret));
  });

  it('SQLite file missing → exit 3, and the file is not created', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-nofile-'));
    const r = await runCli(['inspect'], { cwd: dir, env: { DATABASE_URL: 'sqlite:missing.db' } });
    assert.equal(r.code, 3);
    assert.match(r.all, /does not exist/);
    assert.throws(() => readFileSync(path.join(dir, 'missing.db')));
  });

  it('SQLite file that is not a database → exit 3', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-notdb-'));
    writeFileSync(path.join(dir, 'notes.db'), 'these are not the pages you are looking for\n'.repeat(100));
    const r = await runCli(['inspect'], { cwd: dir, env: { DATABASE_URL: 'sqlite:notes.db' } });
    assert.equal(r.code, 3);
    assert.match(r.all, /not a SQLite database/);
  });

  it('ping --wait retries until the timeout, then exits 3', async () => {
    const started = Date.now();
    const r = await runCli(['ping', '--wait', '--timeout', '2s', '--interval', '200ms'], {
      env: { DATABASE_URL: `postgres://u@127.0.0.1:${closedPort}/db` },
    });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /waiting for main/);
    assert.ok(Date.now() - started >= 1500);
  });

  it('ping --wait succeeds once the database appears', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbward-wait-'));
    const file = path.join(dir, 'late.db');
    const pending = runCli(['ping', '--wait', '--timeout', '20s', '--interval', '100ms'], {
      env: { DATABASE_URL: `sqlite:${file}` },
    });
    setTimeout(() => {
      void loadSqliteDriver().then(({ Database }) => {
        const db = new Database(file);
        db.exec('CREATE TABLE t (id INTEGER)');
        db.close();
      });
    }, 700);
    const r = await pending;
    assert.equal(r.code, 0, r.all);
    assert.match(r.stdout, /main: ok/);
    assert.match(r.stderr, /waiting for main/);
  });
});
