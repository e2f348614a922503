/**
 * Telling people what happened to their backups: a webhook (the event as JSON), a Slack-compatible
 * incoming webhook, or an email. A notification is a side effect of a backup, never its outcome: a
 * channel that fails is logged and returned in the list of failures, and `sendNotifications`
 * itself never throws. Failure messages name the channel by scheme and host only — the rest of a
 * webhook URL is its token — and never contain the SMTP password.
 */
import type { Logger } from '../core/logger.js';
import { sendEmail } from './email.js';
import { postJson } from './post-json.js';
import { endpointForDisplay, errorText, headerSecrets, scrub, urlSecrets } from './secret-scrub.js';
import { slackPayload } from './slack.js';

export interface BackupEvent {
  kind: 'backup' | 'verify' | 'prune' | 'restore';
  target: string;
  ok: boolean;
  backupId?: string;
  /** One line: what happened. */
  message: string;
  details?: string[];
  /** ISO 8601 UTC. */
  at: string;
}

/** When a channel is used: only for failures (the default), or for every event. */
export type NotifyOn = 'failure' | 'always';

export interface WebhookChannel {
  type: 'webhook';
  url: string;
  /** Extra request headers, e.g. an Authorization header (treated as secret in messages). */
  headers?: Record<string, string>;
  on?: NotifyOn;
}

export interface SlackChannel {
  type: 'slack';
  /** The incoming webhook URL (it is the credential). */
  url: string;
  on?: NotifyOn;
}

export interface EmailChannel {
  type: 'email';
  smtp: { host: string; port: number; secure?: boolean; user?: string; password?: string };
  from: string;
  to: string[];
  on?: NotifyOn;
}

export type NotifyChannel = WebhookChannel | SlackChannel | EmailChannel;

export interface SendNotificationsOptions {
  /** Per attempt (default 5000). */
  timeoutMs?: number;
  /** Wait before the one retry (default 1000). */
  retryDelayMs?: number;
  /** Failures are also logged here, as warnings. */
  logger?: Logger;
}

export interface NotifyFailure {
  /** The channel, without secrets: `webhook https://example.com`, `email via smtp.example.com:587`. */
  channel: string;
  message: string;
}

/** How a channel is named in messages: type and where, never a token or password. */
export function describeChannel(channel: NotifyChannel): string {
  switch (channel.type) {
    case 'webhook':
    case 'slack':
      return `${channel.type} ${endpointForDisplay(channel.url)}`;
    case 'email':
      return `email via ${channel.smtp.host}:${channel.smtp.port}`;
  }
}

function channelSecrets(channel: NotifyChannel): (string | undefined)[] {
  switch (channel.type) {
    case 'webhook':
      return [...urlSecrets(channel.url), ...headerSecrets(channel.headers)];
    case 'slack':
      return urlSecrets(channel.url);
    case 'email':
      return [channel.smtp.password];
  }
}

/** True when the channel wants this event. */
export function channelWants(channel: NotifyChannel, event: BackupEvent): boolean {
  return (channel.on ?? 'failure') === 'always' || !event.ok;
}

/**
 * Send `event` to every channel that wants it, in parallel. Resolves with the channels that could
 * not be notified (empty when all went through, or when none wanted the event); never rejects.
 */
export async function sendNotifications(
  event: BackupEvent,
  channels: NotifyChannel[],
  options: SendNotificationsOptions = {},
): Promise<NotifyFailure[]> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const results = await Promise.all(
    channels
      .filter((channel) => channelWants(channel, event))
      .map(async (channel): Promise<NotifyFailure | undefined> => {
        try {
          await sendOne(event, channel, { timeoutMs, retryDelayMs });
          return undefined;
        } catch (err) {
          // The senders already scrub what they quote; this second pass also covers the unexpected.
          const failure = {
            channel: describeChannel(channel),
            message: scrub(errorText(err), channelSecrets(channel)),
          };
          options.logger?.warn(`Could not notify ${failure.channel}: ${failure.message}`);
          return failure;
        }
      }),
  );
  return results.filter((r): r is NotifyFailure => r !== undefined);
}

function sendOne(
  event: BackupEvent,
  channel: NotifyChannel,
  options: { timeoutMs: number; retryDelayMs: number },
): Promise<void> {
  switch (channel.type) {
    case 'webhook':
      return postJson(channel.url, event, { ...options, headers: channel.headers });
    case 'slack':
      return postJson(channel.url, slackPayload(event), options);
    case 'email':
      return sendEmail(event, channel, options);
  }
}
