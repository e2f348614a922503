/**
 * The payload of a Slack incoming webhook (also understood by Mattermost and Rocket.Chat):
 * `text` is the one-line summary shown in notifications and by clients without Block Kit;
 * `blocks` add the details.
 */
import { eventSummary } from './format-event.js';
import type { BackupEvent } from './notifier.js';

/** Slack refuses a section text over 3000 characters. */
const maxSectionText = 3000;

export interface SlackPayload {
  text: string;
  blocks: unknown[];
}

/** Slack's mrkdwn treats `&`, `<` and `>` as control characters. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function slackPayload(event: BackupEvent): SlackPayload {
  const summary = escapeMrkdwn(eventSummary(event));
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text: truncate(summary, maxSectionText) } },
  ];
  if (event.details?.length) {
    const list = event.details.map((d) => `• ${escapeMrkdwn(d)}`).join('\n');
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(list, maxSectionText) } });
  }
  const facts = [`target *${escapeMrkdwn(event.target)}*`];
  if (event.backupId) facts.push(`backup \`${escapeMrkdwn(event.backupId)}\``);
  facts.push(escapeMrkdwn(event.at));
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: facts.join(' · ') }] });
  return { text: summary, blocks };
}
