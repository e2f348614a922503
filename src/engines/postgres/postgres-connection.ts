/**
 * The PostgreSQL connection role: a verified `pg.Pool` behind the engine-neutral SqlConnection.
 * This module is the only one that loads `pg`, and the registry loads it lazily.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from './pg-driver.js';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { ConfigError, DbwardError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
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
import {
  connectionFailureKind,
  diagnosePostgresFailure,
  isRetryablePostgresError,
  toPostgresQueryError,
  type PostgresFailureFacts,
} from './postgres-errors.js';

/** Opens a pool and proves it works by checking out one session before returning. */
export const postgresConnectionRole: ConnectionRole = {
  async connect({ target, spec, logger }: ConnectContext): Promise<SqlConnection> {
    const config = poolConfig(spec, target);
    const facts: PostgresFailureFacts = {
      target: target.name,
      host: config.host ?? 'localhost',
      port: config.port ?? 5432,
      user: config.user,
      database: config.database,
      timeoutMs: target.options.connectTimeoutMs,
    };
    const pool = new pg.Pool(config);
    // Without a listener, an idle client killed by the server (restart, pg_terminate_backend)
    // would crash the process with an unhandled 'error' event.
    pool.on('error', (err) => logger.warn('postgres: an idle connection failed', { error: err.message }));
    try {
      const client = await pool.connect();
      client.release();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw diagnosePostgresFailure(err, facts);
    }
    return new PostgresConnection(pool, facts, target, logger);
  },
};

/** The pg pool options for a parsed URL and target: URL parts, then TLS, then the user's driver overrides. */
export function poolConfig(spec: ConnectionSpec, target: Target): pg.PoolConfig {
  const { params } = spec;
  return {
    // As in libpq, ?host= wins over the URL's host; it is how a socket directory is given.
    host: params.host ?? spec.host ?? 'localhost',
    port: spec.port ?? (params.port ? Number(params.port) : 5432),
    ...(spec.user ? { user: spec.user } : {}),
    ...(spec.password ? { password: spec.password } : {}),
    ...(spec.database ? { database: spec.database } : {}),
    application_name: params.application_name ?? 'dbward',
    ...(params.options ? { options: params.options } : {}),
    ssl: sslOptions(params),
    max: target.options.pool.max,
    idleTimeoutMillis: target.options.pool.idleTimeoutMs,
    connectionTimeoutMillis: target.options.connectTimeoutMs,
    ...target.options.driver,
  };
}

/**
 * libpq's sslmode / ssl URL parameters as Node TLS options. `require` encrypts without
 * verifying, as in libpq (pg's own parser treats it as verify-full). pg cannot fall back from
 * TLS to plain text, so `prefer` and `allow` (libpq's defaults) connect in plain text.
 */
export function sslOptions(params: Record<string, string>): boolean | ConnectionOptions {
  const files: ConnectionOptions = {
    ...(params.sslrootcert ? { ca: readTlsFile(params.sslrootcert, 'sslrootcert') } : {}),
    ...(params.sslcert ? { cert: readTlsFile(params.sslcert, 'sslcert') } : {}),
    ...(params.sslkey ? { key: readTlsFile(params.sslkey, 'sslkey') } : {}),
  };
  switch (params.sslmode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      // libpq: with a root certificate, require behaves like verify-ca.
      return files.ca
        ? { ...files, checkServerIdentity: () => undefined }
        : { ...files, rejectUnauthorized: false };
    case 'verify-ca':
      return { ...files, checkServerIdentity: () => undefined };
    case 'verify-full':
      return files;
    case undefined:
      break;
    default:
      throw new ConfigError(`Unknown sslmode "${params.sslmode}".`, {
        hint: 'Use one of: disable, allow, prefer, require, verify-ca, verify-full.',
      });
  }
  if (params.ssl === 'true' || params.ssl === '1') return files;
  if (params.ssl === 'no-verify') return { ...files, rejectUnauthorized: false };
  return Object.keys(files).length > 0 ? files : false;
}

function readTlsFile(file: string, param: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the ${param} file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The SqlConnection over one pg pool. Every error leaves it as a QueryError or a diagnosed ConnectionError. */
class PostgresConnection implements SqlConnection {
  readonly kind = 'sql';
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly facts: PostgresFailureFacts,
    private readonly target: Target,
    private readonly logger: Logger,
  ) {}

  async query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<Row>> {
    return this.useClient((session) => session.query<Row>(sql, params), { reset: false });
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async serverVersion(): Promise<string> {
    const { rows } = await this.query<{ server_version: string }>('SHOW server_version');
    return trimServerVersion(rows[0]?.server_version ?? '');
  }

  poolStats(): PoolStats {
    const { totalCount: total, idleCount: idle, waitingCount: waiting } = this.pool;
    return { max: this.pool.options.max, total, idle, inUse: total - idle, waiting };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.useClient((session) => fn(session), { reset: true });
  }

  async withTransaction<T>(fn: (session: SqlSession) => Promise<T>, isolation?: IsolationLevel): Promise<T> {
    return this.useClient(
      async (session, discard) => {
        await session.query(beginSql(isolation));
        try {
          const result = await fn(session);
          await session.query('COMMIT');
          return result;
        } catch (err) {
          // After a failed COMMIT the server has already rolled back; ROLLBACK then only warns.
          await session.query('ROLLBACK').catch((rollbackErr: unknown) => discard(rollbackErr));
          throw err;
        }
      },
      { reset: true },
    );
  }

  quoteIdent(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
  }

  isRetryable(err: unknown): boolean {
    return isRetryablePostgresError(err);
  }

  toQueryError(err: unknown, sql: string): Error {
    return toPostgresQueryError(err, sql, { target: this.target.name });
  }

  /** Check out a client; failing to open one is a connection problem, diagnosed as at connect. */
  private async acquire(): Promise<pg.PoolClient> {
    if (this.closed) {
      throw new DbwardError('E_CLOSED', `The connection to target "${this.target.name}" is closed.`, {
        context: { engine: 'postgres', target: this.target.name },
      });
    }
    try {
      return await this.pool.connect();
    } catch (err) {
      throw diagnosePostgresFailure(err, this.facts);
    }
  }

  /**
   * Check out one client for `fn`, and always give it back: destroyed instead of pooled when
   * `fn` called `discard` or a statement lost the connection, so a dead socket never reaches the
   * next caller. With `reset`, session state (SET, advisory locks, temp tables, LISTEN) is
   * discarded first, so what one withSession/withTransaction did cannot leak into the next user
   * of the client; a client that cannot be reset (say, left inside a transaction) is destroyed.
   */
  private async useClient<T>(
    fn: (session: SqlSession, discard: (err: unknown) => void) => Promise<T>,
    { reset }: { reset: boolean },
  ): Promise<T> {
    const client = await this.acquire();
    const onError = (err: Error): void =>
      this.logger.warn('postgres: a connection in use failed', { error: err.message });
    // A checked-out client has no pg-pool listener; between statements an 'error' would crash the process.
    client.on('error', onError);
    let broken: Error | undefined;
    const discard = (err: unknown): void => {
      broken = err instanceof Error ? err : new Error(String(err));
    };
    try {
      return await fn(this.session(client, discard), discard);
    } finally {
      if (reset && !broken) await client.query('DISCARD ALL').catch(discard);
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** A session over one client; errors that leave the client unusable are reported through `discard`. */
  private session(client: pg.PoolClient, discard: (err: unknown) => void): SqlSession {
    return {
      query: async <Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> => {
        try {
          const result = (await client.query(sql, params as unknown[] | undefined)) as
            pg.QueryResult | pg.QueryResult[];
          return toQueryResult<Row>(result);
        } catch (err) {
          const kind = connectionFailureKind(err, 'query');
          if (kind === undefined) throw this.toQueryError(err, sql);
          discard(err);
          throw diagnosePostgresFailure(err, this.facts, kind);
        }
      },
    };
  }
}

const isolationSql: Record<IsolationLevel, string> = {
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
};

/** BEGIN at an isolation level from a fixed list, so no caller's string reaches the SQL. */
function beginSql(isolation: IsolationLevel | undefined): string {
  if (isolation === undefined) return 'BEGIN';
  const level = isolationSql[isolation];
  if (!level) throw new TypeError(`unknown isolation level ${String(isolation)}`);
  return `BEGIN ISOLATION LEVEL ${level}`;
}

/**
 * pg returns an array of results for a multi-statement string (simple protocol, no
 * parameters): the last statement's rows are the answer, the affected rows add up.
 */
function toQueryResult<Row>(result: pg.QueryResult | pg.QueryResult[]): QueryResult<Row> {
  if (!Array.isArray(result))
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? result.rows.length };
  const last = result.at(-1);
  const rowCount = result.reduce((sum, r) => sum + (r.rowCount ?? 0), 0);
  return { rows: (last?.rows ?? []) as Row[], rowCount };
}

/** `15.19 (Debian 15.19-1.pgdg120+1)` → `15.19`. */
export function trimServerVersion(version: string): string {
  return version.trim().split(/\s/)[0] ?? '';
}
