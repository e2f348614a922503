import { performance } from 'node:perf_hooks';
import { DbwardError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SchemaModel } from '../core/schema-model.js';
import type { Target } from '../core/target.js';
import type {
  EngineCapabilities,
  EngineConnection,
  EngineDefinition,
  InspectOptions,
  IsolationLevel,
  KeyValueConnection,
  PoolStats,
  QueryResult,
  SqlConnection,
  SqlSession,
} from '../engines/contract.js';
import type { HealthReport } from './health.js';
import { watchHeld } from './leak-watch.js';
import { withRetries } from './transaction-retry.js';

export interface TransactionOptions {
  /** Retries on serialization failure, deadlock or busy. Default 3. */
  retries?: number;
  isolation?: IsolationLevel;
}

interface HandleBase {
  readonly target: { name: string; displayUrl: string };
  readonly engine: { id: string; displayName: string; capabilities: EngineCapabilities };
  /** One round trip; resolves to the latency in ms, throws a diagnosed ConnectionError. */
  ping(): Promise<number>;
  /** Reachability, latency, server version and pool usage; never throws. */
  health(): Promise<HealthReport>;
  poolStats(): PoolStats;
  /** The schema (or keyspace) as the engine-neutral model. */
  inspect(options?: InspectOptions): Promise<SchemaModel>;
  /** Close every connection. Safe to call twice. */
  close(): Promise<void>;
}

/** A handle on a SQL database. */
export interface SqlDatabase extends HandleBase {
  readonly kind: 'sql';
  /** Run one statement with positional parameters in the engine's own style ($1 or ?). */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Run `fn` in a transaction, retrying the whole of it on serialization failures and deadlocks. */
  transaction<T>(fn: (tx: SqlSession) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Run `fn` on one dedicated session (session settings, locks). */
  session<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /** Quote an identifier, dotted parts separately: `ident('app', 'users')` → `"app"."users"`. */
  ident(...parts: string[]): string;
  /** The engine connection, for engine-specific code. */
  readonly connection: SqlConnection;
}

/** A handle on a key-value store (Redis): commands instead of SQL. */
export interface KeyValueDatabase extends HandleBase {
  readonly kind: 'keyvalue';
  command(name: string, ...args: (string | number | Buffer)[]): Promise<unknown>;
  readonly connection: KeyValueConnection;
}

export type Database = SqlDatabase | KeyValueDatabase;

interface HandleParts {
  engine: EngineDefinition;
  target: Target;
  connection: EngineConnection;
  logger: Logger;
  onClose: () => void;
}

/** Wrap an engine connection in the public handle: retries, leak warnings, health, inspect. */
export function createHandle(parts: HandleParts): Database {
  const { engine, target, connection, logger } = parts;
  let closed = false;
  const base: HandleBase = {
    target: { name: target.name, displayUrl: target.displayUrl },
    engine: { id: engine.id, displayName: engine.displayName, capabilities: engine.capabilities },
    async ping() {
      const started = performance.now();
      await connection.ping();
      return performance.now() - started;
    },
    async health() {
      const report: HealthReport = {
        target: target.name,
        engine: engine.id,
        reachable: false,
        latencyMs: null,
        serverVersion: null,
        pool: null,
      };
      try {
        report.latencyMs = Math.round((await base.ping()) * 100) / 100;
        report.serverVersion = await connection.serverVersion();
        report.reachable = true;
      } catch (err) {
        report.error =
          err instanceof DbwardError
            ? { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) }
            : { code: 'E_UNKNOWN', message: String(err) };
      }
      report.pool = connection.poolStats();
      return report;
    },
    poolStats: () => connection.poolStats(),
    async inspect(options = {}) {
      const load = engine.roles.inspect;
      if (!load) throw new DbwardError('E_NOT_SUPPORTED', `${engine.displayName} cannot be inspected yet.`);
      return (await load()).inspect(connection, target, options);
    },
    async close() {
      if (closed) return;
      closed = true;
      parts.onClose();
      await connection.close();
    },
  };
  const held = { target: target.name };
  if (connection.kind === 'sql') {
    const sql: SqlDatabase = {
      ...base,
      kind: 'sql',
      connection,
      query: (text, params) => connection.query(text, params),
      transaction: (fn, options = {}) =>
        withRetries(
          () =>
            watchHeld('A transaction', target.options.leakWarningMs, logger, held, () =>
              connection.withTransaction(fn, options.isolation),
            ),
          (err) => connection.isRetryable(err),
          { retries: options.retries ?? 3, baseDelayMs: 20 },
        ),
      session: (fn) =>
        watchHeld('A session', target.options.leakWarningMs, logger, held, () => connection.withSession(fn)),
      ident: (...names) => names.map((n) => connection.quoteIdent(n)).join('.'),
    };
    return sql;
  }
  const kv: KeyValueDatabase = {
    ...base,
    kind: 'keyvalue',
    connection,
    command: (name, ...args) => connection.command(name, ...args),
  };
  return kv;
}
