import { ConfigError } from './errors.js';
import { redactUrl, registerSecret } from './redact.js';

/** A connection URL taken apart. Network engines fill host/port; SQLite fills file. */
export interface ConnectionSpec {
  scheme: string;
  host?: string;
  port?: number;
  user?: string;
  /** Never print; registered with the redactor when parsed. */
  password?: string;
  database?: string;
  /** SQLite: a path, or ':memory:'. */
  file?: string;
  /** Query-string parameters (sslmode, socket, …). */
  params: Record<string, string>;
}

/**
 * Parse a network URL (`scheme://user:pass@host:port/db?x=y`). The password is registered as a
 * secret before anything else can fail, so an error about a malformed URL cannot print it.
 */
export function parseNetworkUrl(url: string): ConnectionSpec {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(?:([^:@/]*)(?::([^@]*))?@)?/i.exec(url);
  if (match?.[3]) registerSecret(safeDecode(match[3]));
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`Malformed database URL: ${redactUrl(url)}`, {
      hint: 'Use the form scheme://user:password@host:port/database, and percent-encode special characters in the password (e.g. @ as %40).',
    });
  }
  const password = parsed.password ? safeDecode(parsed.password) : undefined;
  registerSecret(password);
  const params: Record<string, string> = {};
  for (const [k, v] of parsed.searchParams) params[k] = v;
  const port = parsed.port ? Number(parsed.port) : undefined;
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || undefined;
  const path = safeDecode(parsed.pathname.replace(/^\//, ''));
  return {
    scheme: parsed.protocol.replace(/:$/, '').toLowerCase(),
    ...(host ? { host } : {}),
    ...(port ? { port } : {}),
    ...(parsed.username ? { user: safeDecode(parsed.username) } : {}),
    ...(password ? { password } : {}),
    ...(path ? { database: path } : {}),
    params,
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
