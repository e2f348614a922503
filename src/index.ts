/**
 * dbward's public library API: the only import users need.
 *
 * ```ts
 * import { open } from 'dbward';
 * const db = await open(process.env.DATABASE_URL!);
 * ```
 */
export { open, openSql, openKeyValue, closeAll, type OpenInput, type OpenOptions } from './connect/open.js';
export { openAll, type OpenAllResult } from './connect/open-all.js';
export { forEachTarget, type TargetResult } from './connect/per-target.js';
export type {
  Database,
  SqlDatabase,
  KeyValueDatabase,
  TransactionOptions,
} from './connect/database-handle.js';
export type { HealthReport } from './connect/health.js';
export { loadConfig, type LoadConfigOptions, type ResolvedConfig } from './config/load-config.js';
export { selectTargets } from './config/select-targets.js';
export { defineConfig, type DbwardConfigInput, type TargetConfigInput } from './config/config-schema.js';
export {
  DbwardError,
  ConfigError,
  ConnectionError,
  QueryError,
  UsageError,
  NotAvailableError,
  type ConnectionFailureKind,
} from './core/errors.js';
export { ExitCode } from './core/exit-codes.js';
export { redact, redactUrl, registerSecret } from './core/redact.js';
export type { Logger } from './core/logger.js';
export type { Target, TargetOptions } from './core/target.js';
export type * from './core/schema-model.js';
export type {
  EngineCapabilities,
  EngineId,
  InspectOptions,
  IsolationLevel,
  PoolStats,
  QueryResult,
  SqlSession,
} from './engines/contract.js';
export { engines, engineForUrl } from './engines/registry.js';
export {
  runSeeds,
  type SeedOptions,
  type SeedProgress,
  type SeedRunEntry,
  type SeedRunResult,
  type SeedFunction,
} from './seed/run-seeds.js';
export type { SeedAction } from './seed/seed-plan.js';
