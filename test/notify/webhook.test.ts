/**
 * Webhook and Slack notifications against a real local HTTP server: what is posted, when, the
 * timeout and the one retry, and that failures come back as a list without the URL's token.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Logger } from '../../src/core/logger.js';
import { sendNotifications, type BackupEvent } from '../../src/notify/notifier.js';

interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const received: Received[] = [];
/** Scripted answers per path, consumed in order; without one the server answers 200 "ok". */
const answers = new Map<string, ((res: ServerResponse, req: Received) => void)[]>();
let server: Server;
let base: string;

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(r);
      const answer = answers.get(r.path)?.shift();
      if (answer) answer(res, r);
      else res.end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  received.length = 0;
  answers.clear();
});

const failed: BackupEvent = {
  kind: 'backup',
  target: 'main',
  ok: false,
  backupId: 'main-20261128T030000Z-9f2c',
  message: 'pg_dump exited with code 1',
  details: ['pg_dump: error: connection refused', 'took 2.1 s'],
  at: '2026-11-28T03:00:02.100Z',
};
const succeeded: BackupEvent = { ...failed, ok: true, message: '12.3 MiB in 41 s', details: undefined };
const fast = { timeoutMs: 1000, retryDelayMs: 20 };

describe('webhook channel', () => {
  it('POSTs the event as JSON with the configured headers', async () => {
    const failures = await sendNotifications(
      failed,
      [{ type: 'webhook', url: `${base}/hooks/dbward`, headers: { authorization: 'Bearer tok-123' } }],
      fast,
    );
    assert.deepEqual(failures, []);
    assert.equal(received.length, 1);
    const [r] = received;
    assert.equal(r?.method, 'POST');
    assert.equal(r?.path, '/hooks/dbward');
    assert.equal(r?.headers['content-type'], 'application/json');
    assert.equal(r?.headers.authorization, 'Bearer tok-123');
    assert.deepEqual(JSON.parse(r?.body ?? ''), failed);
  });

  it('sends successes only to channels that ask for everything (failure is the default)', async () => {
    const failures = await sendNotifications(
      succeeded,
      [
        { type: 'webhook', url: `${base}/default` },
        { type: 'webhook', url: `${base}/failures`, on: 'failure' },
        { type: 'webhook', url: `${base}/always`, on: 'always' },
      ],
      fast,
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(
      received.map((r) => r.path),
      ['/always'],
    );
    await sendNotifications(failed, [{ type: 'webhook', url: `${base}/default` }], fast);
    assert.deepEqual(
      received.map((r) => r.path),
      ['/always', '/default'],
    );
  });

  it('retries once after a 5xx, and succeeds', async () => {
    answers.set('/flaky', [(res) => ((res.statusCode = 503), res.end('busy'))]);
    const failures = await sendNotifications(failed, [{ type: 'webhook', url: `${base}/flaky` }], fast);
    assert.deepEqual(failures, []);
    assert.equal(received.length, 2);
  });

  it('returns a failure without the URL token after two 5xx, and logs it', async () => {
    const token = 'T0001/B0002/s3cr3tT0kenXYZ';
    // A server that quotes the request line back in its error page.
    const echo = (res: ServerResponse, req: Received): void => {
      res.statusCode = 500;
      res.end(`cannot handle POST ${req.path}`);
    };
    answers.set(`/services/${token}`, [echo, echo]);
    const warnings: string[] = [];
    const logger: Logger = { debug: () => {}, info: () => {}, warn: (m) => warnings.push(m) };
    const failures = await sendNotifications(
      failed,
      [{ type: 'webhook', url: `${base}/services/${token}` }],
      { ...fast, logger },
    );
    assert.equal(received.length, 2);
    assert.deepEqual(failures, [
      {
        channel: `webhook ${base}`,
        message: 'answered 500 Internal Server Error: cannot handle POST ***** (after a retry)',
      },
    ]);
    assert.equal(warnings.length, 1);
    for (const text of [JSON.stringify(failures), ...warnings]) {
      assert.doesNotMatch(text, /s3cr3tT0ken|T0001|B0002/);
    }
  });

  it('does not retry a 404 (a deleted hook stays deleted)', async () => {
    answers.set('/gone', [(res) => ((res.statusCode = 404), res.end('no_service'))]);
    const failures = await sendNotifications(failed, [{ type: 'webhook', url: `${base}/gone` }], fast);
    assert.equal(received.length, 1);
    assert.equal(failures[0]?.message, 'answered 404 Not Found: no_service');
  });

  it('gives up after the timeout, twice, without throwing', async () => {
    answers.set('/slow', [() => {}, () => {}]); // never answers
    const started = Date.now();
    const failures = await sendNotifications(failed, [{ type: 'webhook', url: `${base}/slow` }], {
      timeoutMs: 300,
      retryDelayMs: 20,
    });
    const elapsed = Date.now() - started;
    assert.equal(received.length, 2);
    assert.deepEqual(failures, [
      { channel: `webhook ${base}`, message: 'did not answer within 300 ms (after a retry)' },
    ]);
    assert.ok(elapsed >= 600 && elapsed < 3000, `took ${elapsed} ms`);
  });

  it('reports an unreachable endpoint and still notifies the other channels', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');

    const failures = await sendNotifications(
      failed,
      [
        { type: 'webhook', url: `http://127.0.0.1:${deadPort}/hook/secret-path-token` },
        { type: 'webhook', url: `${base}/fine` },
      ],
      fast,
    );
    assert.deepEqual(
      received.map((r) => r.path),
      ['/fine'],
    );
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.channel, `webhook http://127.0.0.1:${deadPort}`);
    assert.match(
      failures[0]?.message ?? '',
      /^could not be reached: fetch failed: .*ECONNREFUSED.* \(after a retry\)$/,
    );
    assert.doesNotMatch(JSON.stringify(failures), /secret-path-token/);
  });
});

describe('slack channel', () => {
  it('posts a readable one-line summary and blocks with the details', async () => {
    const failures = await sendNotifications(
      { ...failed, details: ['relation <orders> & co'] },
      [{ type: 'slack', url: `${base}/services/T1/B2/xyz` }],
      fast,
    );
    assert.deepEqual(failures, []);
    const payload = JSON.parse(received[0]?.body ?? '') as { text: string; blocks: { type: string }[] };
    assert.equal(payload.text, '❌ Backup of main failed: pg_dump exited with code 1');
    assert.deepEqual(
      payload.blocks.map((b) => b.type),
      ['section', 'section', 'context'],
    );
    const blocksText = JSON.stringify(payload.blocks);
    assert.match(blocksText, /• relation &lt;orders&gt; &amp; co/);
    assert.match(blocksText, /main-20261128T030000Z-9f2c/);
  });

  it('says ✅ for a success when asked for everything', async () => {
    await sendNotifications(succeeded, [{ type: 'slack', url: `${base}/s`, on: 'always' }], fast);
    const payload = JSON.parse(received[0]?.body ?? '') as { text: string };
    assert.equal(payload.text, '✅ Backup of main succeeded: 12.3 MiB in 41 s');
  });
});
