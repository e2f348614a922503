import type { TargetConfigInput } from '../config/config-schema.js';
import { targetFromInput } from '../config/load-config.js';
import { NotAvailableError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import { usableEngineForUrl } from '../engines/registry.js';
import { createHandle, type Database, type KeyValueDatabase, type SqlDatabase } from './database-handle.js';

export interface OpenOptions {
  /** Where warnings (leaks, dropped idle connections) go. Default: nowhere. */
  logger?: Logger;
}

/** A URL, a target object as written in config (`{ url, pool, connectTimeout, … }`), or a resolved Target. */
export type OpenInput = string | (TargetConfigInput & { name?: string }) | Target;

const openHandles = new Set<Database>();

/**
 * Open a verified, pooled handle on one database. Resolves once a first connection succeeded;
 * rejects with a diagnosed ConnectionError (exit code 3) otherwise, or a ConfigError for a bad URL.
 *
 * ```ts
 * const db = await open(process.env.DATABASE_URL!);
 * if (db.kind === 'sql') await db.query('SELECT 1');
 * ```
 */
export async function open(input: OpenInput, options: OpenOptions = {}): Promise<Database> {
  const target = isTarget(input) ? input : targetFromInput(input);
  const engine = usableEngineForUrl(target.url);
  const load = engine.roles.connection;
  if (!load) throw new NotAvailableError(`${engine.displayName} connections are not available yet.`);
  const role = await load();
  const logger = options.logger ?? silentLogger;
  const connection = await role.connect({ target, spec: engine.parseUrl(target.url), logger });
  const handle = createHandle({
    engine,
    target,
    connection,
    logger,
    onClose: () => openHandles.delete(handle),
  });
  openHandles.add(handle);
  return handle;
}

/** Like {@link open}, but only for SQL engines (rejects Redis URLs with a clear error). */
export async function openSql(input: OpenInput, options: OpenOptions = {}): Promise<SqlDatabase> {
  const db = await open(input, options);
  if (db.kind !== 'sql') {
    await db.close();
    throw new NotAvailableError(
      `${db.engine.displayName} is not a SQL database.`,
      'Use open() and command().',
    );
  }
  return db;
}

/** Like {@link open}, but only for key-value engines (Redis). */
export async function openKeyValue(input: OpenInput, options: OpenOptions = {}): Promise<KeyValueDatabase> {
  const db = await open(input, options);
  if (db.kind !== 'keyvalue') {
    await db.close();
    throw new NotAvailableError(
      `${db.engine.displayName} is not a key-value store.`,
      'Use open() and query().',
    );
  }
  return db;
}

/**
 * Close every handle this process opened and has not closed: call it on SIGTERM for a graceful
 * shutdown. Failures to close one handle do not stop the others.
 */
export async function closeAll(): Promise<void> {
  await Promise.allSettled([...openHandles].map((h) => h.close()));
}

function isTarget(input: OpenInput): input is Target {
  return typeof input === 'object' && 'displayUrl' in input && 'options' in input && 'name' in input;
}
