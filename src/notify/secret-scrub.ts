/**
 * Keeping notification secrets out of failure messages. A webhook URL is a credential (Slack's
 * `/services/T…/B…/xyz` path is the token), so is an SMTP password, and both can surface in what a
 * library or server says when something fails. Messages are built from our own words, and any
 * text quoted from elsewhere goes through {@link scrub} with the channel's secrets.
 */
import { REDACTED, redact } from '../core/redact.js';

/** `https://hooks.slack.com` for `https://hooks.slack.com/services/T0/B0/xyz?token=…`. */
export function endpointForDisplay(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

/** The parts of a URL that may be secret: the whole URL, its userinfo, path, query and path segments. */
export function urlSecrets(url: string): string[] {
  const secrets = [url];
  try {
    const parsed = new URL(url);
    secrets.push(parsed.username, parsed.password, parsed.pathname + parsed.search, parsed.search);
    secrets.push(...parsed.pathname.split('/'), ...parsed.searchParams.values());
    secrets.push(parsed.hash);
  } catch {
    // An unparseable URL is scrubbed as a whole.
  }
  return secrets;
}

/** Header values (`Bearer abc…`) and their words, which may each be the secret. */
export function headerSecrets(headers: Record<string, string> | undefined): string[] {
  return Object.values(headers ?? {}).flatMap((value) => [value, ...value.split(/\s+/)]);
}

/**
 * Replace every secret in `text` (longest first, ignoring ones too short to be secrets, and their
 * percent-encoded and base64 forms, which SMTP AUTH and URLs use), then apply the global redaction.
 */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < 4 || secret === '/') continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    forms.add(Buffer.from(secret).toString('base64'));
  }
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) {
    if (out.includes(form)) out = out.split(form).join(REDACTED);
  }
  return redact(out);
}

/** An error's message with its causes (fetch hides the reason, e.g. ECONNREFUSED, in `cause`). */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.includes(message)) parts.push(message);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ') || 'unknown error';
}
