/**
 * node-postgres errors, read structurally (this module never loads `pg`): which ones mean "the
 * connection failed" and which kind of failure, which are worth a retry, and how a server error
 * becomes a {@link QueryError} that keeps everything the server said.
 */
import { diagnoseConnectionFailure } from '../../core/connection-diagnosis.js';
import type { ConnectionError, ConnectionFailureKind, ErrorContext } from '../../core/errors.js';
import { DbwardError, QueryError } from '../../core/errors.js';

/** The fields of pg's `DatabaseError` we use (the server's ErrorResponse). */
interface ServerErrorFields {
  message: string;
  code: string;
  /** ERROR ends the statement; FATAL and PANIC end the session. */
  severity: string;
  detail?: string;
  hint?: string;
  position?: string;
}

/** Where the error happened: opening a session, or running a statement on an open one. */
export type PostgresErrorPhase = 'connect' | 'query';

/** A server ErrorResponse: it has a five-character SQLSTATE and a severity (system errors have neither). */
export function isServerError(err: unknown): err is ServerErrorFields & Error {
  if (!(err instanceof Error)) return false;
  const { code, severity } = err as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string';
}

/** The SQLSTATE of a raw pg error or of a QueryError built from one. */
export function sqlStateOf(err: unknown): string | undefined {
  if (err instanceof QueryError) return err.sqlState;
  return isServerError(err) ? err.code : undefined;
}

/** Serialization failure and deadlock: the transaction as a whole may succeed if run again. */
export function isRetryablePostgresError(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state === '40001' || state === '40P01';
}

const unknownHostCodes = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA']);
// Errors Node raises when a socket dies under a running query.
const lostSocketCodes = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * The failure kind of an error that means the session could not be opened or was lost, or
 * undefined for an ordinary statement error. On an open session only a FATAL (or PANIC) server
 * error ends it: SQLSTATE 42501 at connect is a missing CONNECT privilege, on a query it is an
 * ordinary "permission denied for table"; 08P01 on a query is a wrong parameter count.
 */
export function connectionFailureKind(
  err: unknown,
  phase: PostgresErrorPhase,
): ConnectionFailureKind | undefined {
  if (!(err instanceof Error)) return phase === 'connect' ? 'unknown' : undefined;
  if (isServerError(err)) {
    return phase === 'query' && !/^(FATAL|PANIC)$/.test(err.severity) ? undefined : serverFailureKind(err);
  }
  const code = (err as { code?: unknown }).code;
  const text = `${err.message} ${err.cause instanceof Error ? err.cause.message : ''}`;
  if (code === 'ECONNREFUSED') return 'refused';
  if (typeof code === 'string' && unknownHostCodes.has(code)) return 'unknown-host';
  if (/connection timeout|timeout expired|timeout exceeded when trying to connect/i.test(text))
    return 'timeout';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (isTlsError(err, text)) return 'tls';
  if (typeof code === 'string' && lostSocketCodes.has(code)) return 'unknown';
  if (/Connection terminated|Client has encountered a connection error/i.test(err.message)) return 'unknown';
  return phase === 'connect' ? 'unknown' : undefined;
}

function serverFailureKind(err: ServerErrorFields): ConnectionFailureKind {
  switch (err.code) {
    case '28P01':
      return 'auth-failed';
    case '28000':
      if (/no pg_hba\.conf entry/i.test(err.message)) return 'no-hba-entry';
      // Under trust or peer auth a missing role is reported as such (with passwords it is 28P01).
      return /role .* does not exist/i.test(err.message) ? 'auth-failed' : 'permission-denied';
    case '3D000':
      return 'unknown-database';
    case '53300':
      return 'too-many-connections';
    case '42501':
      return 'permission-denied';
  }
  if (/too many clients|remaining connection slots are reserved/i.test(err.message))
    return 'too-many-connections';
  // Anything else that refuses or ends a session: admin shutdown, crash recovery, startup.
  return 'unknown';
}

function isTlsError(err: Error, text: string): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^ERR_(TLS|SSL)_|CERT|^EPROTO$|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code))
    return true;
  return /\bSSL\b|\bTLS\b|certificate/i.test(text);
}

/** What the connection knows about itself, to word a diagnosis. */
export interface PostgresFailureFacts {
  target: string;
  host: string;
  port: number;
  user: string | undefined;
  database: string | undefined;
  timeoutMs: number;
}

/** Turn a failed connect (or a connection lost mid-query) into a diagnosed ConnectionError. */
export function diagnosePostgresFailure(
  err: unknown,
  facts: PostgresFailureFacts,
  kind: ConnectionFailureKind = connectionFailureKind(err, 'connect') ?? 'unknown',
): ConnectionError {
  return diagnoseConnectionFailure({
    kind,
    engine: 'postgres',
    target: facts.target,
    host: facts.host,
    port: facts.port,
    ...(facts.user ? { user: facts.user } : {}),
    ...(facts.database ? { database: facts.database } : {}),
    serverMessage: err instanceof Error ? err.message : String(err),
    timeoutMs: facts.timeoutMs,
    cause: err,
  });
}

/**
 * A QueryError carrying the server's SQLSTATE, detail, hint and position. The message names
 * the line and column of `sql` the position points at, because a character offset into a long
 * migration file helps nobody.
 */
export function toPostgresQueryError(err: unknown, sql: string, context: ErrorContext): Error {
  if (err instanceof DbwardError) return err;
  if (!isServerError(err)) {
    const message = err instanceof Error ? err.message : String(err);
    return new QueryError(message, {
      cause: err,
      context: { engine: 'postgres', operation: 'query', ...context },
    });
  }
  const position = err.position === undefined ? undefined : Number(err.position);
  const where = position === undefined ? '' : ` (${lineAndColumn(sql, position)})`;
  return new QueryError(`${err.message}${where}`, {
    sqlState: err.code,
    ...(err.detail === undefined ? {} : { detail: err.detail }),
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    ...(position === undefined ? {} : { position }),
    cause: err,
    context: { engine: 'postgres', operation: 'query', ...context },
  });
}

/** `line L, column C` of a 1-based character position (PostgreSQL counts characters, not bytes). */
export function lineAndColumn(sql: string, position: number): string {
  const before = [...sql].slice(0, Math.max(0, position - 1)).join('');
  const lines = before.split('\n');
  return `line ${lines.length}, column ${[...(lines.at(-1) ?? '')].length + 1}`;
}
