/**
 * Secret redaction. Every password dbward learns (from a URL, a config file or the environment)
 * is registered here, and every message that leaves the library — errors, logs, CLI output,
 * `--json` — passes through {@link redact}. Registering is cheap and idempotent, so parsers call
 * it eagerly rather than trusting every printer to remember.
 */
const secrets = new Set<string>();

// Words that stand for a password in examples and hints; they are not secrets.
const placeholders = new Set(['password', 'PASSWORD', 'pass', 'secret', 'PASS']);

/** The text shown in place of a secret. */
export const REDACTED = '*****';

/** Remember a secret so that later output never contains it. Empty and very short values are ignored. */
export function registerSecret(secret: string | undefined | null): void {
  if (!secret || secret.length < 2) return;
  secrets.add(secret);
  // Drivers and URLs also show the percent-encoded form.
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) secrets.add(encoded);
}

/** Replace every registered secret, and any `user:password@` in a URL, with {@link REDACTED}. */
export function redact(text: string): string {
  let out = text.replace(
    /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@/\s]+)@/gi,
    (whole, head: string, pw: string) => (placeholders.has(pw) ? whole : `${head}${REDACTED}@`),
  );
  // Longest first, so a secret containing another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

/** A URL with its password replaced, for display. Unparseable input is redacted as text. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      registerSecret(decodeURIComponent(parsed.password));
      parsed.password = REDACTED;
    }
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) parsed.searchParams.set(key, REDACTED);
    }
    return redact(parsed.toString());
  } catch {
    return redact(url);
  }
}

/** Deep-copy a JSON-like value with every string redacted (for `--json` output and logs). */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => redactDeep(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = /^(password|secret|token)$/i.test(k) && typeof v === 'string' ? REDACTED : redactDeep(v);
    }
    return out as T;
  }
  return value;
}
