/**
 * Email notifications through an SMTP server, with nodemailer. One connection per message: the
 * daemon sends a handful a day, and a pooled connection would only go stale in between.
 */
import nodemailer from 'nodemailer';
import { eventSubject, eventText } from './format-event.js';
import type { BackupEvent, EmailChannel } from './notifier.js';
import { errorText, scrub } from './secret-scrub.js';

/** Failures a second attempt cannot fix: a refused login, refused addresses, a malformed message. */
const permanentCodes = new Set(['EAUTH', 'ENOAUTH', 'EENVELOPE', 'EMESSAGE']);

export interface SendEmailOptions {
  timeoutMs: number;
  retryDelayMs: number;
}

/** Resolves once the server accepted the message; rejects with a message free of the password. */
export async function sendEmail(
  event: BackupEvent,
  channel: EmailChannel,
  options: SendEmailOptions,
): Promise<void> {
  const { smtp } = channel;
  const password = smtp.password;
  // AUTH PLAIN sends base64("\0user\0password"); a server may quote it back.
  const secrets = [password, password && `\u0000${smtp.user ?? ''}\u0000${password}`];
  let lastProblem = '';
  for (let attempt = 1; attempt <= 2; attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, options.retryDelayMs));
    const transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure ?? smtp.port === 465,
      auth: smtp.user ? { user: smtp.user, pass: password ?? '' } : undefined,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      socketTimeout: options.timeoutMs,
    });
    try {
      await transport.sendMail({
        from: channel.from,
        to: channel.to,
        subject: eventSubject(event),
        text: eventText(event),
      });
      return;
    } catch (err) {
      lastProblem = scrub(errorText(err), secrets);
      const code = (err as { code?: unknown; responseCode?: unknown }).code;
      const responseCode = (err as { responseCode?: unknown }).responseCode;
      const permanent =
        (typeof code === 'string' && permanentCodes.has(code)) ||
        (typeof responseCode === 'number' && responseCode >= 500);
      if (permanent) break;
      if (attempt === 2) lastProblem += ' (after a retry)';
    } finally {
      transport.close();
    }
  }
  throw new Error(lastProblem);
}
