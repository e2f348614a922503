/**
 * Email notifications delivered to a real SMTP server (smtp-server) that requires a login: the
 * AUTH, the envelope, the subject and body, and that a refused login or an unreachable server
 * comes back as a failure without the password.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { sendNotifications, type BackupEvent, type EmailChannel } from '../../src/notify/notifier.js';

const password = 'pa55-w0rd-for-mail!';

interface Mail {
  from: string;
  to: string[];
  raw: string;
}

const logins: { username?: string; password?: string | null; method: string }[] = [];
const mails: Mail[] = [];
let server: SMTPServer;
let port: number;

before(async () => {
  server = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true, // no TLS on a loopback test server
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push({ username: auth.username, password: auth.password, method: auth.method });
      if (auth.username === 'dbward' && auth.password === password) callback(null, { user: 'dbward' });
      // A careless server that quotes the refused password back, as some do in their logs.
      else callback(new Error(`Invalid username or password (${auth.password ?? ''})`));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        mails.push({
          from: from ? from.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  port = (server.server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  logins.length = 0;
  mails.length = 0;
});

const event: BackupEvent = {
  kind: 'verify',
  target: 'main',
  ok: false,
  backupId: 'main-20261128T030000Z-9f2c',
  message: 'row count of public.orders differs: 1200 in the manifest, 1199 restored',
  details: ['restored into a scratch database', 'pg_restore exit 0'],
  at: '2026-11-28T04:00:00.000Z',
};

function channel(overrides: Partial<EmailChannel['smtp']> = {}): EmailChannel {
  return {
    type: 'email',
    smtp: { host: '127.0.0.1', port, secure: false, user: 'dbward', password, ...overrides },
    from: 'dbward@example.com',
    to: ['ops@example.com', 'dba@example.com'],
  };
}

/** Headers and body of a single-part message (RFC 5322: headers, blank line, body). */
function split(raw: string): { headers: string; body: string } {
  const at = raw.indexOf('\r\n\r\n');
  return { headers: raw.slice(0, at).replace(/\r\n[ \t]+/g, ' '), body: raw.slice(at + 4) };
}

/** RFC 2045 quoted-printable: drop soft line breaks (`=` at a line end), turn `=XX` into a byte. */
function decodeQuotedPrintable(body: string): string {
  const unwrapped = body.replace(/=\r\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < unwrapped.length; i++) {
    const hex = unwrapped[i] === '=' ? /^[0-9A-F]{2}/.exec(unwrapped.slice(i + 1, i + 3)) : null;
    if (hex) {
      bytes.push(parseInt(hex[0], 16));
      i += 2;
    } else bytes.push(unwrapped.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8').replace(/\r\n/g, '\n');
}

describe('email channel', () => {
  it('logs in with the password and delivers subject and body to every recipient', async () => {
    const failures = await sendNotifications(event, [channel()], { timeoutMs: 5000, retryDelayMs: 20 });
    assert.deepEqual(failures, []);
    assert.equal(logins.length, 1);
    assert.equal(logins[0]?.username, 'dbward');
    assert.equal(logins[0]?.password, password);

    assert.equal(mails.length, 1);
    const mail = mails[0]!;
    assert.equal(mail.from, 'dbward@example.com');
    assert.deepEqual(mail.to, ['ops@example.com', 'dba@example.com']);
    const { headers, body } = split(mail.raw);
    assert.match(headers, /^Subject: \[dbward\] FAILED: verification of main$/m);
    assert.match(headers, /^To: ops@example.com, dba@example.com$/m);
    const text = /^Content-Transfer-Encoding: quoted-printable$/m.test(headers)
      ? decodeQuotedPrintable(body)
      : body.replace(/\r\n/g, '\n');
    assert.match(
      text,
      /^Verification of main failed: row count of public.orders differs: 1200 in the manifest, 1199 restored$/m,
    );
    assert.match(text, /^Backup: main-20261128T030000Z-9f2c$/m);
    assert.match(text, /^ {2}- restored into a scratch database$/m);
    assert.match(text, /^ {2}- pg_restore exit 0$/m);
    assert.doesNotMatch(mail.raw, new RegExp(password));
  });

  it('reports a refused login once (no retry) and without the password', async () => {
    const wrong = 'wr0ng-but-secret-pw';
    const failures = await sendNotifications(event, [channel({ password: wrong })], {
      timeoutMs: 5000,
      retryDelayMs: 20,
    });
    assert.equal(logins.length, 1, 'a refused login is not retried');
    assert.equal(mails.length, 0);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.channel, `email via 127.0.0.1:${port}`);
    assert.match(
      failures[0]?.message ?? '',
      /Invalid login: 535 Invalid username or password \(\*\*\*\*\*\)/,
    );
    const text = JSON.stringify(failures);
    assert.ok(!text.includes(wrong), text);
    assert.ok(!text.includes(Buffer.from(wrong).toString('base64')), text);
  });

  it('reports an unreachable server after one retry', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const failures = await sendNotifications(event, [channel({ port: deadPort })], {
      timeoutMs: 2000,
      retryDelayMs: 20,
    });
    assert.equal(failures.length, 1);
    assert.match(failures[0]?.message ?? '', /ECONNREFUSED.*\(after a retry\)$/);
    assert.ok(!JSON.stringify(failures).includes(password));
  });

  it('does not mail a success unless the channel asks for everything', async () => {
    const ok = { ...event, ok: true, message: 'restored and checked' };
    await sendNotifications(ok, [channel()], { timeoutMs: 5000 });
    assert.equal(mails.length, 0);
    await sendNotifications(ok, [{ ...channel(), on: 'always' }], { timeoutMs: 5000 });
    assert.equal(mails.length, 1);
    assert.match(split(mails[0]!.raw).headers, /^Subject: \[dbward\] OK: verification of main$/m);
  });
});
