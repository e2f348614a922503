/**
 * Redis inspect role: keyspaces from INFO, key patterns from a SCAN sample of the target's own
 * database. Other databases appear in `keyspaces` (INFO covers them all) but are not sampled:
 * that would need SELECT on a connection other callers share, or a client per database.
 */
import { parseNetworkUrl } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import type { InspectRole } from '../contract.js';
import { parseKeyspaces, parseRedisInfo } from './redis-info.js';
import { sampleKeys } from './redis-key-sampler.js';
import { redisDbIndex } from './redis-options.js';
import { keyPatternStats } from './redis-pattern-stats.js';

const defaultSampleKeys = 10_000;

/** Inspects one Redis database: `keyspaces` and `keyPatterns`; the SQL collections are empty. */
export const redisInspectRole: InspectRole = {
  async inspect(conn, target, options) {
    if (conn.kind !== 'keyvalue') {
      throw new DbwardError('E_INTERNAL', 'Redis inspect needs a key-value connection.', {
        context: { engine: 'redis', target: target.name, operation: 'inspect' },
      });
    }
    const db = redisDbIndex(parseNetworkUrl(target.url));
    const [server, keyspace] = await Promise.all([
      conn.command('INFO', 'server'),
      conn.command('INFO', 'keyspace'),
    ]);
    const keyspaces = parseKeyspaces(String(keyspace));
    const dbKeys = keyspaces.find((k) => k.db === db)?.keys ?? 0;
    const limit = Math.max(0, options.sampleKeys ?? defaultSampleKeys);
    const sampled = dbKeys > 0 && limit > 0 ? await sampleKeys(conn, limit) : { samples: [], complete: true };
    return {
      engine: 'redis',
      target: target.name,
      serverVersion: parseRedisInfo(String(server)).get('redis_version') ?? 'unknown',
      database: `db${db}`,
      inspectedAt: new Date().toISOString(),
      schemas: [],
      tables: [],
      views: [],
      sequences: [],
      keyspaces,
      keyPatterns: keyPatternStats(db, sampled, dbKeys),
    };
  },
};
