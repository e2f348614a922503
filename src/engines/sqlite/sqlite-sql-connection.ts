/**
 * The SqlConnection contract over one synchronous better-sqlite3 handle. Every entry point goes
 * through a {@link SessionQueue}, so it behaves like a pool of one: a transaction has the
 * connection to itself until it commits. Code running inside a transaction or session (tracked
 * with AsyncLocalStorage) that calls the connection again joins that session instead of
 * waiting for itself forever; a nested transaction becomes a SAVEPOINT.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type BetterSqlite3 from 'better-sqlite3';
import { DbwardError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { IsolationLevel, PoolStats, QueryResult, SqlConnection, SqlSession } from '../contract.js';
import { isSqliteBusy, toSqliteQueryError } from './sqlite-errors.js';
import { SessionQueue } from './sqlite-session-queue.js';

type Statement = BetterSqlite3.Statement<unknown[], unknown>;

export interface SqliteConnectionOptions {
  logger: Logger;
}

// Prepared statements are reused; SQLite re-prepares them itself after a schema change.
const statementCacheSize = 200;

export class SqliteSqlConnection implements SqlConnection {
  readonly kind = 'sql' as const;
  readonly #db: BetterSqlite3.Database;
  readonly #options: SqliteConnectionOptions;
  readonly #queue = new SessionQueue();
  readonly #inSession = new AsyncLocalStorage<boolean>();
  readonly #statements = new Map<string, Statement>();
  readonly #session: SqlSession = { query: (sql, params) => this.#queryNow(sql, params) };
  #savepoints = 0;
  #closed = false;

  constructor(db: BetterSqlite3.Database, options: SqliteConnectionOptions) {
    this.#db = db;
    this.#options = options;
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    return this.#inSession.getStore()
      ? this.#queryNow<Row>(sql, params)
      : this.#queue.run(() => this.#queryNow<Row>(sql, params));
  }

  /**
   * Always BEGIN IMMEDIATE, whatever the isolation asked for: SQLite transactions are
   * serializable anyway, and taking the write lock up front means a busy database makes BEGIN
   * wait (busy_timeout applies), instead of a read-then-write transaction failing with
   * SQLITE_BUSY halfway through, where busy_timeout cannot help.
   */
  withTransaction<T>(fn: (session: SqlSession) => Promise<T>, _isolation?: IsolationLevel): Promise<T> {
    if (this.#inSession.getStore()) {
      // Already on the connection (nested call): BEGIN would fail, a savepoint nests.
      const name = `dbward_sp_${++this.#savepoints}`;
      return this.#transaction(
        `SAVEPOINT ${name}`,
        `RELEASE ${name}`,
        `ROLLBACK TO ${name}; RELEASE ${name}`,
        fn,
      );
    }
    return this.#hold(() => this.#transaction('BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK', fn));
  }

  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.#inSession.getStore() ? fn(this.#session) : this.#hold(() => fn(this.#session));
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async serverVersion(): Promise<string> {
    const { rows } = await this.query<{ version: string }>('SELECT sqlite_version() AS version');
    return rows[0]?.version ?? 'unknown';
  }

  poolStats(): PoolStats {
    const total = this.#closed ? 0 : 1;
    const inUse = this.#queue.held && !this.#closed ? 1 : 0;
    return { max: 1, total, idle: total - inUse, inUse, waiting: this.#queue.waiting };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#statements.clear();
      // Closing mid-transaction makes SQLite roll it back.
      this.#db.close();
    }
    return Promise.resolve();
  }

  quoteIdent(name: string): string {
    return `"${name.replace(/"/g, '""')}"`;
  }

  isRetryable(err: unknown): boolean {
    return isSqliteBusy(err);
  }

  toQueryError(err: unknown, sql: string): Error {
    return toSqliteQueryError(err, sql);
  }

  /** Hold the connection for `fn`, with everything it awaits marked as inside the session. */
  #hold<T>(fn: () => Promise<T>): Promise<T> {
    return this.#queue.run(() => this.#inSession.run(true, fn));
  }

  async #transaction<T>(
    begin: string,
    commit: string,
    rollback: string,
    fn: (session: SqlSession) => Promise<T>,
  ): Promise<T> {
    this.#exec(begin);
    try {
      const result = await this.#inSession.run(true, () => fn(this.#session));
      this.#exec(commit);
      return result;
    } catch (err) {
      this.#rollback(rollback);
      throw err;
    }
  }

  #rollback(rollback: string): void {
    if (this.#closed || !this.#db.inTransaction) return;
    try {
      this.#exec(rollback);
    } catch (rollbackErr) {
      // The original error is the one the caller needs; the failed rollback is only logged.
      this.#options.logger.warn('SQLite rollback failed', { error: String(rollbackErr) });
    }
  }

  async #queryNow<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
    this.#assertOpen();
    let statement: Statement;
    try {
      statement = this.#prepare(sql);
    } catch (err) {
      // Migration files hold many statements; run them as a script when there is nothing to bind.
      if (params.length === 0 && err instanceof RangeError && /more than one statement/.test(err.message)) {
        this.#exec(sql);
        return { rows: [], rowCount: 0 };
      }
      throw toSqliteQueryError(err, sql);
    }
    try {
      const values = params.map(toSqliteValue);
      if (statement.reader) {
        const rows = statement.all(...values) as Row[];
        return { rows, rowCount: rows.length };
      }
      return { rows: [], rowCount: statement.run(...values).changes };
    } catch (err) {
      throw toSqliteQueryError(err, sql);
    }
  }

  #prepare(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= statementCacheSize) {
        this.#statements.delete(this.#statements.keys().next().value as string);
      }
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #exec(sql: string): void {
    this.#assertOpen();
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw toSqliteQueryError(err, sql);
    }
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new DbwardError('E_CLOSED', 'This SQLite connection has been closed.', {
        hint: 'Open a new connection; close() ends a handle for good.',
        context: { engine: 'sqlite' },
      });
    }
  }
}

// better-sqlite3 binds numbers, bigints, strings, Buffers and null; map the other usual values.
function toSqliteValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  return value;
}
