/**
 * Sampled keys to per-pattern statistics, extrapolated to the whole database. Pure.
 */
import type { KeyPatternInfo } from '../../core/schema-model.js';
import { keyPattern } from './redis-key-patterns.js';
import type { KeySampleSet } from './redis-key-sampler.js';

/**
 * Group samples by (pattern, type). When the sample is the whole keyspace the counts are exact;
 * otherwise each group is scaled by `dbKeys / samples`. SCAN visits hash buckets in an order
 * unrelated to key names, so the sample is close to uniform. Sorted by estimated bytes, largest first.
 */
export function keyPatternStats(db: number, sampled: KeySampleSet, dbKeys: number): KeyPatternInfo[] {
  const { samples, complete } = sampled;
  const scale = complete || samples.length === 0 ? 1 : dbKeys / samples.length;
  const groups = new Map<
    string,
    { pattern: string; type: string; keys: number; withTtl: number; bytes: number }
  >();
  for (const sample of samples) {
    const pattern = keyPattern(sample.key);
    const id = `${sample.type}\u0000${pattern}`;
    let group = groups.get(id);
    if (!group) {
      group = { pattern, type: sample.type, keys: 0, withTtl: 0, bytes: 0 };
      groups.set(id, group);
    }
    group.keys++;
    if (sample.hasTtl) group.withTtl++;
    group.bytes += sample.bytes;
  }
  return [...groups.values()]
    .map((g) => ({
      db,
      pattern: g.pattern,
      type: g.type,
      sampledKeys: g.keys,
      estimatedKeys: Math.round(g.keys * scale),
      estimatedBytes: Math.round(g.bytes * scale),
      ttlCoverage: g.withTtl / g.keys,
    }))
    .sort(
      (a, b) =>
        b.estimatedBytes - a.estimatedBytes ||
        b.estimatedKeys - a.estimatedKeys ||
        a.pattern.localeCompare(b.pattern) ||
        a.type.localeCompare(b.type),
    );
}
