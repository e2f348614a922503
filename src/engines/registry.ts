import { ConfigError, NotAvailableError } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';
import type { EngineDefinition, EngineId } from './contract.js';
import { mongodbEngine } from './mongodb/mongodb-engine.js';
import { mysqlEngine } from './mysql/mysql-engine.js';
import { postgresEngine } from './postgres/postgres-engine.js';
import { redisEngine } from './redis/redis-engine.js';
import { sqliteEngine } from './sqlite/sqlite-engine.js';
import { looksLikeSqliteLocation } from './sqlite/sqlite-url.js';

/** Every engine dbward knows, in the order help texts list them. */
export const engines: readonly EngineDefinition[] = [
  postgresEngine,
  mysqlEngine,
  sqliteEngine,
  redisEngine,
  mongodbEngine,
];

const bySchemeMap = new Map<string, EngineDefinition>(
  engines.flatMap((e) => e.schemes.map((s) => [s, e] as const)),
);

export function engineById(id: EngineId): EngineDefinition {
  const engine = engines.find((e) => e.id === id);
  if (!engine) throw new Error(`unknown engine id ${id}`);
  return engine;
}

/** Every scheme accepted, for error messages and docs. */
export function knownSchemes(): string[] {
  return [...bySchemeMap.keys()];
}

/**
 * Find the engine for a URL by its scheme (with aliases). Bare file paths and `:memory:` are
 * SQLite. Throws a ConfigError naming the accepted schemes for anything else.
 */
export function engineForUrl(url: string): EngineDefinition {
  const trimmed = url.trim();
  if (trimmed === '') {
    throw new ConfigError('The database URL is empty.', {
      hint: 'Set DATABASE_URL, pass --url, or name a target from dbward.config.* with --target.',
    });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  const engine = scheme ? bySchemeMap.get(scheme) : undefined;
  if (engine) return engine;
  if (looksLikeSqliteLocation(trimmed)) return sqliteEngine;
  throw new ConfigError(
    scheme
      ? `Unknown URL scheme "${scheme}:" in ${redactUrl(trimmed)}.`
      : `Not a database URL: ${redactUrl(trimmed)}.`,
    {
      hint: `Use one of: ${knownSchemes().join(', ')} (e.g. postgres://user@host:5432/db or sqlite:./app.db).`,
    },
  );
}

/** The engine for a URL, or a NotAvailableError if it is registered but cannot be used yet. */
export function usableEngineForUrl(url: string): EngineDefinition {
  const engine = engineForUrl(url);
  if (engine.unavailable) {
    throw new NotAvailableError(engine.unavailable.reason, engine.unavailable.hint, { engine: engine.id });
  }
  return engine;
}
