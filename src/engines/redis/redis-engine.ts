import { parseNetworkUrl } from '../../core/connection-spec.js';
import type { EngineDefinition } from '../contract.js';

/** Redis through ioredis: registry entry only; the driver loads with the connection role. */
export const redisEngine: EngineDefinition = {
  id: 'redis',
  displayName: 'Redis',
  schemes: ['redis', 'rediss'],
  capabilities: {
    isSql: false,
    isKeyValue: true,
    hasSchemas: false,
    supportsTransactionalDdl: false,
    hasAdvisoryLocks: false,
    isEmbedded: false,
    hasIndexScanCounts: false,
  },
  parseUrl: parseNetworkUrl,
  roles: {
    connection: async () => (await import('./redis-connection.js')).redisConnectionRole,
    inspect: async () => (await import('./redis-inspect.js')).redisInspectRole,
    keyValueMigrationStore: async () => (await import('./redis-migration-store.js')).redisMigrationStoreRole,
    doctorFacts: async () => (await import('./redis-doctor-facts.js')).redisDoctorFactsRole,
    backup: async () => (await import('./redis-backup.js')).redisBackupRole,
  },
};
