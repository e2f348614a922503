/**
 * The MySQL/MariaDB connection role: a verified mysql2 pool behind the engine-neutral
 * {@link SqlConnection}. mysql2 is imported here and only here, and this module is itself loaded
 * lazily by the registry, so commands that never touch MySQL never load the driver.
 */
import mysql from 'mysql2/promise';
import type { ExecuteValues, Pool, PoolConnection, PoolOptions } from 'mysql2/promise';
import { diagnoseConnectionFailure } from '../../core/connection-diagnosis.js';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { ConfigError, DbwardError } from '../../core/errors.js';
import type { ConnectionFailureKind } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { redact } from '../../core/redact.js';
import type { Target } from '../../core/target.js';
import type {
  ConnectContext,
  ConnectionRole,
  IsolationLevel,
  PoolStats,
  QueryResult,
  SqlConnection,
  SqlSession,
} from '../contract.js';
import { connectionFailureKind, isRetryableMysqlError, toMysqlQueryError } from './mysql-errors.js';

/** Opens a mysql2 pool and proves it works with one connection and a ping. */
export const mysqlConnectionRole: ConnectionRole = {
  async connect({ target, spec, logger }: ConnectContext): Promise<SqlConnection> {
    const pool = mysql.createPool(poolOptions(target, spec, logger));
    const conn = new MysqlConnection(pool, target, spec, logger);
    try {
      await conn.ping();
    } catch (err) {
      await conn.close();
      throw err;
    }
    return conn;
  },
};

/** mysql2 options from the URL and the target's options; `target.options.driver` wins. */
export function poolOptions(target: Target, spec: ConnectionSpec, logger: Logger): PoolOptions {
  const { pool, connectTimeoutMs, driver } = target.options;
  return {
    host: spec.host ?? 'localhost',
    port: spec.port ?? 3306,
    user: spec.user,
    password: spec.password,
    database: spec.database,
    ...urlParamOptions(spec.params, logger),
    connectionLimit: pool.max,
    // mysql2 only runs its idle reaper when maxIdle < connectionLimit (the default makes them
    // equal, which silently ignores idleTimeout). One slot less keeps the reaper on.
    maxIdle: Math.max(1, pool.max - 1),
    idleTimeout: pool.idleTimeoutMs,
    connectTimeout: connectTimeoutMs,
    // One statement per call: a stray `;` in interpolated text cannot smuggle in a second one.
    multipleStatements: false,
    // BIGINT / DECIMAL beyond 2^53 arrive as strings instead of silently rounded numbers.
    supportBigNumbers: true,
    ...driver,
  };
}

/** The URL parameters we understand; anything else is reported once and ignored. */
function urlParamOptions(params: Record<string, string>, logger: Logger): Partial<PoolOptions> {
  const out: Partial<PoolOptions> = {};
  for (const [key, value] of Object.entries(params)) {
    switch (key) {
      case 'ssl':
        Object.assign(out, sslOption(value));
        break;
      case 'sslmode':
      case 'ssl-mode':
        Object.assign(out, sslModeOption(value));
        break;
      case 'socket':
      case 'socketPath':
        out.socketPath = value;
        break;
      case 'charset':
        out.charset = value;
        break;
      case 'timezone':
        out.timezone = value;
        break;
      default:
        logger.warn(`Ignoring unknown MySQL URL parameter "${key}".`, {
          known: 'ssl, sslmode, socket, charset, timezone',
        });
    }
  }
  return out;
}

/** `ssl=true|false`, a JSON object of TLS options, or a mysql2 profile name (`Amazon RDS`). */
function sslOption(value: string): Partial<PoolOptions> {
  if (value === 'true' || value === '1') return { ssl: {} };
  if (value === 'false' || value === '0' || value === '') return {};
  if (value.startsWith('{')) {
    try {
      return { ssl: JSON.parse(value) as Record<string, unknown> };
    } catch {
      throw new ConfigError(`The ssl parameter of the MySQL URL is not valid JSON.`, {
        hint: 'Use ssl=true, ssl={"rejectUnauthorized":false} (percent-encoded), or a profile name like ssl=Amazon%20RDS.',
      });
    }
  }
  return { ssl: value };
}

/**
 * MySQL client `--ssl-mode` names, plus the PostgreSQL-style names people carry over. mysql2
 * cannot try TLS and fall back to plain text, so `preferred` connects without TLS (what it
 * would get from a server without TLS anyway); `required` encrypts without verifying the
 * certificate, as the MySQL client does.
 */
function sslModeOption(value: string): Partial<PoolOptions> {
  switch (value.toLowerCase().replace(/-/g, '_')) {
    case 'disabled':
    case 'disable':
    case 'preferred':
    case 'prefer':
      return {};
    case 'required':
    case 'require':
      return { ssl: { rejectUnauthorized: false } };
    case 'verify_ca':
    case 'verify_identity':
    case 'verify_full':
      return { ssl: { rejectUnauthorized: true } };
    default:
      throw new ConfigError(`Unknown sslmode "${value}" in the MySQL URL.`, {
        hint: 'Use one of disabled, preferred, required, verify_ca, verify_identity.',
      });
  }
}

const isolationSql: Record<IsolationLevel, string> = {
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
};

// Failures that mean the server could not be reached at all, as opposed to a statement failing.
const unreachableKinds: ReadonlySet<ConnectionFailureKind> = new Set([
  'refused',
  'unknown-host',
  'timeout',
  'tls',
]);

/** The parts of mysql2's pool internals we read for stats; absent in some versions, so all optional. */
interface PoolInternals {
  _allConnections?: { length: number };
  _freeConnections?: { length: number };
  _connectionQueue?: { length: number };
}

/** Something that runs SQL: the pool, or one connection taken from it. */
type Queryable = Pick<Pool, 'query' | 'execute'>;

class MysqlConnection implements SqlConnection {
  readonly kind = 'sql';
  #closing: Promise<void> | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly target: Target,
    private readonly spec: ConnectionSpec,
    private readonly logger: Logger,
  ) {
    // An idle pooled connection that dies (server restart, wait_timeout) emits 'error'; without a
    // listener Node would crash the process. mysql2 already drops it from the pool; we log it.
    pool.on('connection', (connection: { on(event: 'error', fn: (err: Error) => void): unknown }) => {
      connection.on('error', (err) => {
        logger.warn(`A pooled MySQL connection of target "${target.name}" failed; it was dropped.`, {
          error: redact(err.message),
        });
      });
    });
  }

  async ping(): Promise<void> {
    const conn = await this.acquire();
    try {
      await conn.ping();
    } catch (err) {
      throw this.diagnose(err);
    } finally {
      conn.release();
    }
  }

  async serverVersion(): Promise<string> {
    const { rows } = await this.query<{ version: string }>('SELECT VERSION() AS version');
    return String(rows[0]?.version ?? '');
  }

  poolStats(): PoolStats {
    const internals = this.pool.pool as unknown as PoolInternals;
    const total = internals._allConnections?.length ?? 0;
    const idle = internals._freeConnections?.length ?? 0;
    return {
      max: this.target.options.pool.max,
      total,
      idle,
      inUse: Math.max(0, total - idle),
      waiting: internals._connectionQueue?.length ?? 0,
    };
  }

  close(): Promise<void> {
    // mysql2's end() on an already-broken connection can reject; the pool is gone either way.
    this.#closing ??= this.pool.end().catch((err: unknown) => {
      this.logger.debug('Closing the MySQL pool reported an error.', { error: redact(String(err)) });
    });
    return this.#closing;
  }

  async query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<Row>> {
    this.assertOpen();
    return runQuery<Row>(this.pool, sql, params, (err) => this.toError(err, sql));
  }

  async withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
    const conn = await this.acquire();
    const session = this.session(conn);
    try {
      return await fn(session);
    } finally {
      session.end();
      conn.release();
    }
  }

  async withTransaction<T>(fn: (session: SqlSession) => Promise<T>, isolation?: IsolationLevel): Promise<T> {
    const conn = await this.acquire();
    const session = this.session(conn);
    let broken = false;
    try {
      // SET TRANSACTION (without SESSION) applies to the next transaction only, so the pooled
      // connection goes back with its default isolation.
      if (isolation) await session.query(`SET TRANSACTION ISOLATION LEVEL ${isolationSql[isolation]}`);
      await session.query('START TRANSACTION');
      const result = await fn(session);
      await session.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await conn.query('ROLLBACK');
      } catch (rollbackErr) {
        // A connection that cannot roll back may still hold locks or a half transaction: never reuse it.
        broken = true;
        this.logger.warn('ROLLBACK failed; the MySQL connection is discarded.', {
          error: redact(String(rollbackErr)),
        });
      }
      throw err;
    } finally {
      session.end();
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  quoteIdent(name: string): string {
    return `\`${name.replace(/`/g, '``')}\``;
  }

  isRetryable(err: unknown): boolean {
    return isRetryableMysqlError(err);
  }

  toQueryError(err: unknown, sql: string): Error {
    return toMysqlQueryError(err, sql);
  }

  /** One pooled connection, or a diagnosed ConnectionError. (Leak warnings are the handle's job.) */
  private async acquire(): Promise<PoolConnection> {
    this.assertOpen();
    try {
      return await this.pool.getConnection();
    } catch (err) {
      throw this.diagnose(err);
    }
  }

  /** A session bound to one connection; it refuses to run once its owner has released the connection. */
  private session(conn: PoolConnection): SqlSession & { end(): void } {
    let ended = false;
    return {
      query: <Row>(sql: string, params?: readonly unknown[]) => {
        if (ended) {
          return Promise.reject(
            new DbwardError(
              'E_SESSION_ENDED',
              'This session was used after its transaction or session ended.',
              {
                hint: 'Only use the session inside the callback given to withSession/withTransaction, and await every query.',
                context: { engine: 'mysql', target: this.target.name, operation: 'query' },
              },
            ),
          );
        }
        return runQuery<Row>(conn, sql, params, (err) => this.toError(err, sql));
      },
      end: () => {
        ended = true;
      },
    };
  }

  /** A network-level failure becomes a ConnectionError (exit 3); anything else a QueryError. */
  private toError(err: unknown, sql: string): Error {
    const kind = connectionFailureKind(err);
    const isServerError = typeof (err as { errno?: unknown } | null)?.errno === 'number';
    if (unreachableKinds.has(kind) && !isServerError) return this.diagnose(err);
    const mapped = toMysqlQueryError(err, sql);
    if (mapped instanceof DbwardError) Object.assign(mapped.context, { target: this.target.name });
    return mapped;
  }

  private diagnose(err: unknown): Error {
    if (err instanceof DbwardError) return err;
    const driver = err as { sqlMessage?: string; message?: string };
    return diagnoseConnectionFailure({
      kind: connectionFailureKind(err),
      engine: 'mysql',
      target: this.target.name,
      host: this.spec.host ?? 'localhost',
      port: this.spec.port ?? 3306,
      user: this.spec.user,
      database: this.spec.database,
      file: this.spec.params.socket ?? this.spec.params.socketPath,
      serverMessage: redact(driver.sqlMessage ?? driver.message ?? String(err)),
      timeoutMs: this.target.options.connectTimeoutMs,
      cause: err,
    });
  }

  private assertOpen(): void {
    if (this.#closing) {
      throw new DbwardError('E_CLOSED', `The MySQL connection of target "${this.target.name}" is closed.`, {
        hint: 'Open a new connection; close() ends a handle for good.',
        context: { engine: 'mysql', target: this.target.name },
      });
    }
  }
}

/**
 * Run one statement. Without parameters it goes over the text protocol (`query`), which accepts
 * every statement (SET, START TRANSACTION, DDL, SHOW). With parameters it uses a server-side
 * prepared statement (`execute`): values are bound by the server, never spliced into SQL text,
 * so they stay safe under any sql_mode (client-side escaping relies on backslash escapes, which
 * NO_BACKSLASH_ESCAPES turns off). mysql2 caches the statement per connection, so a repeat costs
 * one round trip. `undefined` is sent as NULL, as node-postgres does, instead of mysql2's TypeError.
 */
async function runQuery<Row>(
  target: Queryable,
  sql: string,
  params: readonly unknown[] | undefined,
  mapError: (err: unknown) => Error,
): Promise<QueryResult<Row>> {
  let result: unknown;
  try {
    [result] =
      params && params.length > 0
        ? await target.execute(sql, params.map((p) => (p === undefined ? null : p)) as ExecuteValues[])
        : await target.query(sql);
  } catch (err) {
    throw mapError(err);
  }
  return shapeResult<Row>(result);
}

/** Rows for result sets (the first one, for CALL), affected rows for writes. */
function shapeResult<Row>(result: unknown): QueryResult<Row> {
  if (Array.isArray(result)) {
    // CALL returns [rows, …, header]; a plain SELECT returns the rows themselves.
    const rows = (Array.isArray(result[0]) ? result[0] : result) as Row[];
    return { rows, rowCount: rows.length };
  }
  const affected = (result as { affectedRows?: number } | undefined)?.affectedRows ?? 0;
  return { rows: [], rowCount: affected };
}
