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
  // …and JSON output shows the escaped form of a secret containing quotes or backslashes.
  const escaped = JSON.stringify(secret).slice(1, -1);
  if (escaped !== secret) secrets.add(escaped);
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

const secretKey = /^(password|secret|token)$/i;

/**
 * Serialize a value as JSON with secrets redacted: values under password-like keys are masked,
 * and the finished text is redacted in one pass (cheaper than visiting every string of a large
 * schema model, and it also catches secrets split across keys and values).
 */
export function redactedJson(value: unknown, indent = 2): string {
  return redact(
    JSON.stringify(
      value,
      (key, v: unknown) => (secretKey.test(key) && typeof v === 'string' ? REDACTED : v),
      indent,
    ),
  );
}
