import type { EngineDefinition } from '../contract.js';
import { parseSqliteUrl } from './sqlite-url.js';

/** SQLite through better-sqlite3: registry entry only; the driver loads with the connection role. */
export const sqliteEngine: EngineDefinition = {
  id: 'sqlite',
  displayName: 'SQLite',
  schemes: ['sqlite', 'sqlite3', 'file'],
  capabilities: {
    isSql: true,
    isKeyValue: false,
    hasSchemas: false,
    supportsTransactionalDdl: true,
    hasAdvisoryLocks: false,
    isEmbedded: true,
    hasIndexScanCounts: false,
  },
  parseUrl: parseSqliteUrl,
  roles: {
    connection: async () => (await import('./sqlite-connection.js')).sqliteConnectionRole,
    inspect: async () => (await import('./sqlite-inspect.js')).sqliteInspectRole,
    schemaDump: async () => (await import('./sqlite-schema-dump.js')).sqliteSchemaDumpRole,
    migrationStore: async () => (await import('./sqlite-migration-store.js')).sqliteMigrationStoreRole,
    scratchDatabase: async () => (await import('./sqlite-scratch-database.js')).sqliteScratchDatabaseRole,
    doctorFacts: async () => (await import('./sqlite-doctor-facts.js')).sqliteDoctorFactsRole,
    backup: async () => (await import('./sqlite-backup.js')).sqliteBackupRole,
  },
};
