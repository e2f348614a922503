/**
 * The words of a notification, shared by every channel so Slack, email and logs say the same:
 * one summary line (`❌ Backup of main failed: pg_dump exited with code 1`) and the facts below it.
 */
import type { BackupEvent } from './notifier.js';

const nouns: Record<BackupEvent['kind'], string> = {
  backup: 'Backup',
  verify: 'Verification',
  prune: 'Pruning',
  restore: 'Restore',
};

/** `Backup of main failed: <message>` */
export function eventSentence(event: BackupEvent): string {
  return `${nouns[event.kind]} of ${event.target} ${event.ok ? 'succeeded' : 'failed'}: ${event.message}`;
}

/** `✅ Backup of main succeeded: …` / `❌ Backup of main failed: …` */
export function eventSummary(event: BackupEvent): string {
  return `${event.ok ? '✅' : '❌'} ${eventSentence(event)}`;
}

/** `[dbward] FAILED: backup of main` — ASCII, so every mail client shows it as written. */
export function eventSubject(event: BackupEvent): string {
  return `[dbward] ${event.ok ? 'OK' : 'FAILED'}: ${nouns[event.kind].toLowerCase()} of ${event.target}`;
}

/** The plain-text body: the sentence, the facts, and the details as a list. */
export function eventText(event: BackupEvent): string {
  const lines = [eventSentence(event), '', `Target: ${event.target}`];
  if (event.backupId) lines.push(`Backup: ${event.backupId}`);
  lines.push(`When:   ${event.at}`);
  if (event.details?.length) lines.push('', 'Details:', ...event.details.map((d) => `  - ${d}`));
  lines.push('', '-- sent by dbward');
  return lines.join('\n') + '\n';
}
