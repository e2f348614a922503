import { createHash } from 'node:crypto';

/**
 * The checksum recorded for an applied migration. Content is normalized first — CRLF and CR
 * become LF, trailing whitespace on each line and trailing blank lines are dropped — so a file
 * re-saved by an editor on another OS is not reported as edited (Flyway's most-reported
 * checksum complaint), while any change to the SQL itself is.
 */
export function migrationChecksum(content: string): string {
  return createHash('sha256').update(normalizeForChecksum(content)).digest('hex');
}

export function normalizeForChecksum(content: string): string {
  // One pass per rule, no array of lines: `status` checksums every file on every run.
  return content
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t]+(?=\n|$)/g, '')
    .replace(/\n+$/, '');
}
