import { redact } from '../core/redact.js';

/** An error's stack followed by its causes' stacks (for --verbose), redacted. */
export function stackWithCauses(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    parts.push(e instanceof Error ? (e.stack ?? e.message) : String(e));
    e = e instanceof Error ? e.cause : undefined;
    if (e) parts.push('caused by:');
  }
  return redact(parts.join('\n'));
}
