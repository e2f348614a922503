import { redactUrl } from '../core/redact.js';
import type { Target } from '../core/target.js';
import type { EngineConnection, SqlConnection } from './contract.js';

/**
 * The target with another database in its URL path, for scratch databases on the same server:
 * credentials, host, port and query parameters (sslmode, options, …) stay as they were. Named
 * `<target>~scratch`.
 */
export function scratchTarget(target: Target, database: string): Target {
  const url = new URL(target.url);
  url.pathname = `/${encodeURIComponent(database)}`;
  const text = url.toString();
  return { ...target, name: `${target.name}~scratch`, url: text, displayUrl: redactUrl(text) };
}

/** The SQL connection a server engine's scratch role was given (the role contract takes any). */
export function sqlConnection(conn: EngineConnection): SqlConnection {
  if (conn.kind !== 'sql') throw new Error('scratch database: expected a SQL connection');
  return conn;
}
