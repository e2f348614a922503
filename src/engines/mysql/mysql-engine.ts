import { parseNetworkUrl } from '../../core/connection-spec.js';
import type { EngineDefinition } from '../contract.js';

/** MySQL and MariaDB: registry entry only; the driver loads with the connection role. */
export const mysqlEngine: EngineDefinition = {
  id: 'mysql',
  displayName: 'MySQL/MariaDB',
  schemes: ['mysql', 'mariadb'],
  capabilities: {
    isSql: true,
    isKeyValue: false,
    hasSchemas: false,
    // DDL commits implicitly: migrations must run statement by statement and record progress.
    supportsTransactionalDdl: false,
    hasAdvisoryLocks: true,
    isEmbedded: false,
    // performance_schema has per-index I/O counts, but only when it is enabled.
    hasIndexScanCounts: false,
  },
  parseUrl: parseNetworkUrl,
  roles: {
    connection: async () => (await import('./mysql-connection.js')).mysqlConnectionRole,
    inspect: async () => (await import('./mysql-inspect.js')).mysqlInspectRole,
    migrationStore: async () => (await import('./mysql-migration-store.js')).mysqlMigrationStoreRole,
    schemaDump: async () => (await import('./mysql-schema-dump.js')).mysqlSchemaDumpRole,
    scratchDatabase: async () => (await import('./mysql-scratch-database.js')).mysqlScratchDatabaseRole,
    doctorFacts: async () => (await import('./mysql-doctor-facts.js')).mysqlDoctorFactsRole,
    backup: async () => (await import('./mysql-backup.js')).mysqlBackupRole,
  },
};
