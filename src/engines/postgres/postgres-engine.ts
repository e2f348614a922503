import { parseNetworkUrl } from '../../core/connection-spec.js';
import type { EngineDefinition } from '../contract.js';

/** PostgreSQL: registry entry only; the driver loads with the connection role. */
export const postgresEngine: EngineDefinition = {
  id: 'postgres',
  displayName: 'PostgreSQL',
  schemes: ['postgres', 'postgresql'],
  capabilities: {
    isSql: true,
    isKeyValue: false,
    hasSchemas: true,
    supportsTransactionalDdl: true,
    hasAdvisoryLocks: true,
    isEmbedded: false,
    hasIndexScanCounts: true,
  },
  parseUrl: parseNetworkUrl,
  roles: {
    connection: async () => (await import('./postgres-connection.js')).postgresConnectionRole,
    inspect: async () => (await import('./postgres-inspect.js')).postgresInspectRole,
    migrationStore: async () => (await import('./postgres-migration-store.js')).postgresMigrationStoreRole,
    schemaDump: async () => (await import('./postgres-schema-dump.js')).postgresSchemaDumpRole,
    scratchDatabase: async () => (await import('./postgres-scratch-database.js')).postgresScratchDatabaseRole,
    doctorFacts: async () => (await import('./postgres-doctor-facts.js')).postgresDoctorFactsRole,
    backup: async () => (await import('./postgres-backup.js')).postgresBackupRole,
  },
};
