/**
 * Small helpers every engine's inspect uses to turn catalog rows into the schema model, kept in
 * one place so engines agree on how values are normalized.
 */
import type { ReferentialAction } from './schema-model.js';

/** Group rows by a key, keeping their order inside each group. */
export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/**
 * Catalog numbers arrive as numbers, strings (bigint, numeric, DECIMAL) or bigint; the model
 * wants numbers (precision beyond 2^53 is lost). null, undefined, '' and non-numbers become null.
 */
export function toNumberOrNull(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

const actionWords: Record<string, ReferentialAction> = {
  'NO ACTION': 'no action',
  RESTRICT: 'restrict',
  CASCADE: 'cascade',
  'SET NULL': 'set null',
  'SET DEFAULT': 'set default',
};

/** A foreign-key action as SQL spells it (`ON DELETE SET NULL` → `set null`); unknown → `no action`. */
export function referentialActionFromSql(words: string): ReferentialAction {
  return actionWords[words.trim().toUpperCase()] ?? 'no action';
}
