/**
 * What mysql2 errors mean to dbward: which connection failure a driver error is, which query
 * errors are worth retrying, and how a failed statement becomes a {@link QueryError}. Pure
 * functions of the error's code / errno, so they are testable without a server.
 */
import type { ConnectionFailureKind } from '../../core/errors.js';
import { DbwardError, QueryError } from '../../core/errors.js';

/** The fields mysql2 puts on its errors (server errors carry errno + sqlState; socket errors a code). */
export interface MysqlDriverError extends Error {
  code?: string;
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
  fatal?: boolean;
}

/** True for anything shaped like a mysql2 / Node socket error. */
export function isDriverError(err: unknown): err is MysqlDriverError {
  return err instanceof Error && ('code' in err || 'errno' in err);
}

/** Server error numbers (see MariaDB/MySQL error references) and what they say about a connection attempt. */
const kindByErrno: ReadonlyMap<number, ConnectionFailureKind> = new Map([
  [1045, 'auth-failed'], // ER_ACCESS_DENIED_ERROR
  [1049, 'unknown-database'], // ER_BAD_DB_ERROR
  [1044, 'permission-denied'], // ER_DBACCESS_DENIED_ERROR
  [1130, 'permission-denied'], // ER_HOST_NOT_PRIVILEGED: the user may not connect from this host
  [1040, 'too-many-connections'], // ER_CON_COUNT_ERROR: max_connections
  [1203, 'too-many-connections'], // ER_TOO_MANY_USER_CONNECTIONS: global max_user_connections
  [1226, 'too-many-connections'], // ER_USER_LIMIT_REACHED: the account's MAX_USER_CONNECTIONS
  [3159, 'tls'], // ER_SECURE_TRANSPORT_REQUIRED (MySQL): require_secure_transport=ON
]);

const kindByCode: ReadonlyMap<string, ConnectionFailureKind> = new Map([
  ['ECONNREFUSED', 'refused'],
  ['ENOTFOUND', 'unknown-host'],
  ['EAI_AGAIN', 'unknown-host'],
  ['ETIMEDOUT', 'timeout'],
  ['HANDSHAKE_NO_SSL_SUPPORT', 'tls'],
  ['HANDSHAKE_SSL_ERROR', 'tls'],
  ['EPROTO', 'tls'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'tls'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'tls'],
  ['CERT_HAS_EXPIRED', 'tls'],
  ['CERT_NOT_YET_VALID', 'tls'],
]);

/** Classify a failed connection attempt from the driver error. */
export function connectionFailureKind(err: unknown): ConnectionFailureKind {
  if (!isDriverError(err)) return 'unknown';
  const byErrno = err.errno === undefined ? undefined : kindByErrno.get(err.errno);
  if (byErrno) return byErrno;
  const code = err.code ?? '';
  const byCode = kindByCode.get(code);
  if (byCode) return byCode;
  // Node names its TLS failures ERR_TLS_* (e.g. ERR_TLS_CERT_ALTNAME_INVALID) and OpenSSL's ERR_SSL_*.
  if (/^ERR_(TLS|SSL)_/.test(code)) return 'tls';
  return 'unknown';
}

/**
 * Error numbers after which re-running the whole transaction can succeed: the server rolled
 * the transaction (or statement) back because of another one, not because of what it said.
 */
const retryableErrnos: ReadonlySet<number> = new Set([
  1213, // ER_LOCK_DEADLOCK: InnoDB chose this transaction as the deadlock victim
  1205, // ER_LOCK_WAIT_TIMEOUT: innodb_lock_wait_timeout elapsed waiting for a row lock
  1020, // ER_CHECKREAD: MariaDB's "record has changed since last read" (snapshot isolation)
]);

/** True for deadlocks, lock wait timeouts and MariaDB's record-changed errors, also when wrapped as a cause. */
export function isRetryableMysqlError(err: unknown): boolean {
  const errno = mysqlErrno(err);
  return errno !== undefined && retryableErrnos.has(errno);
}

/**
 * A failed statement as a QueryError: `ER_PARSE_ERROR (errno 1064, SQLSTATE 42000): <server text>`,
 * with `position` (1-based character offset into `sql`) when the server's "near '…' at line N"
 * can be found in the statement. Errors dbward already made pass through unchanged.
 */
export function toMysqlQueryError(err: unknown, sql: string): Error {
  if (err instanceof DbwardError) return err;
  if (!(err instanceof Error))
    return new QueryError(String(err), { context: { engine: 'mysql', operation: 'query' } });
  const driver = isDriverError(err) ? err : undefined;
  const text = driver?.sqlMessage ?? err.message;
  const tags = [
    driver?.errno !== undefined ? `errno ${driver.errno}` : undefined,
    driver?.sqlState ? `SQLSTATE ${driver.sqlState}` : undefined,
  ].filter(Boolean);
  const code = driver?.code ? `${driver.code}${tags.length ? ` (${tags.join(', ')})` : ''}: ` : '';
  const near = nearPosition(text, sql);
  return new QueryError(`${code}${text}`, {
    sqlState: driver?.sqlState,
    position: near?.position,
    hint: near ? `The error is at line ${near.line} of the statement, near the quoted text.` : undefined,
    cause: err,
    context: { engine: 'mysql', operation: 'query' },
  });
}

/**
 * Find where MySQL's "… near 'rest of statement' at line N" points. The quoted text is the
 * statement from the offending token on (truncated by the server, quotes not escaped); N is the
 * line the parser had reached, which can be the line after the token. So we take the last
 * occurrence of the text that starts no later than the end of line N. An empty quote means
 * "at the end of the statement".
 */
export function nearPosition(
  message: string,
  sql: string,
): { line: number; position: number | undefined } | undefined {
  const match = /near '([\s\S]*)' at line (\d+)\s*$/.exec(message);
  if (!match) return undefined;
  const snippet = match[1] ?? '';
  const line = Number(match[2]);
  if (snippet === '') return { line, position: sql.trimEnd().length + 1 };
  let lineEnd = -1;
  for (let i = 0; i < line; i++) {
    lineEnd = sql.indexOf('\n', lineEnd + 1);
    if (lineEnd < 0) break;
  }
  const limit = lineEnd < 0 ? sql.length : lineEnd;
  // MariaDB cuts long snippets and appends "...".
  const found = lastBefore(sql, snippet, limit) ?? lastBefore(sql, snippet.replace(/\.\.\.$/, ''), limit);
  return { line, position: found === undefined ? undefined : found + 1 };
}

function lastBefore(text: string, needle: string, limit: number): number | undefined {
  let found: number | undefined;
  for (let at = text.indexOf(needle); at >= 0 && at <= limit; at = text.indexOf(needle, at + 1)) found = at;
  return found;
}

/** The server error number of a driver error, also when wrapped (as a QueryError's cause). */
export function mysqlErrno(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isDriverError(e) && typeof e.errno === 'number') return e.errno;
  }
  return undefined;
}
