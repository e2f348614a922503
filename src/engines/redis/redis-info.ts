/**
 * Parsers for the text INFO returns: `# Section` headers and `field:value` lines.
 */
import type { KeyspaceInfo } from '../../core/schema-model.js';

/** INFO text to a map of field → value (sections flattened; later fields win). */
export function parseRedisInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/**
 * `INFO keyspace` to one entry per non-empty database, e.g. `db3:keys=10,expires=2,avg_ttl=5000`.
 * avg_ttl is 0 when no key has a TTL (or Redis has not sampled one yet); that is "unknown", null.
 */
export function parseKeyspaces(text: string): KeyspaceInfo[] {
  const keyspaces: KeyspaceInfo[] = [];
  for (const [field, value] of parseRedisInfo(text)) {
    const db = /^db(\d+)$/.exec(field)?.[1];
    if (db === undefined) continue;
    const stats = new Map(value.split(',').map((pair) => pair.split('=') as [string, string]));
    const avgTtl = Number(stats.get('avg_ttl') ?? 0);
    keyspaces.push({
      db: Number(db),
      keys: Number(stats.get('keys') ?? 0),
      keysWithExpiry: Number(stats.get('expires') ?? 0),
      avgTtlMs: avgTtl > 0 ? avgTtl : null,
    });
  }
  return keyspaces.sort((a, b) => a.db - b.db);
}
