import { parseNetworkUrl } from '../../core/connection-spec.js';
import type { EngineDefinition } from '../contract.js';

/** MongoDB is registered so its URLs are recognised, and reported as not available until its issue. */
export const mongodbEngine: EngineDefinition = {
  id: 'mongodb',
  displayName: 'MongoDB',
  schemes: ['mongodb', 'mongodb+srv'],
  capabilities: {
    isSql: false,
    isKeyValue: false,
    hasSchemas: false,
    supportsTransactionalDdl: false,
    hasAdvisoryLocks: false,
    isEmbedded: false,
    hasIndexScanCounts: true,
  },
  unavailable: {
    reason: 'MongoDB support is not available yet in this version of dbward.',
    hint: 'Track the MongoDB issue; PostgreSQL, MySQL/MariaDB, SQLite and Redis are supported today.',
  },
  parseUrl: parseNetworkUrl,
  roles: {},
};
