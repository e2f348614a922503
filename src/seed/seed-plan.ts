/**
 * What a seed run does with each seed, decided from the files and the tracking rows alone (no
 * database, no clock), so the rules can be tested without a server:
 *
 * - never ran                                → run
 * - ran, same checksum                       → skip (unchanged)
 * - ran, changed, marked repeatable          → rerun
 * - ran, changed, not repeatable             → the whole run is refused (SeedChangedError)
 *
 * Tracking rows without a file (a deleted seed, another environment's seed) are left alone.
 */
import type { AppliedMigration } from '../engines/contract.js';
import type { SeedFile } from './discover-seeds.js';
import { SeedChangedError } from './seed-errors.js';

export type SeedAction = 'run' | 'rerun' | 'skip';

export interface PlannedSeed {
  seed: SeedFile;
  action: SeedAction;
  /** Why: `new` (never ran), `changed` (repeatable, content changed), `unchanged`. */
  reason: 'new' | 'changed' | 'unchanged';
}

/** Decide every seed, in the files' order; throws SeedChangedError before deciding anything to run. */
export function planSeeds(seeds: readonly SeedFile[], applied: readonly AppliedMigration[]): PlannedSeed[] {
  const byId = new Map(applied.map((row) => [row.version, row]));
  const plan: PlannedSeed[] = [];
  const refused: SeedFile[] = [];
  for (const seed of seeds) {
    const row = byId.get(seed.id);
    if (!row) plan.push({ seed, action: 'run', reason: 'new' });
    else if (row.checksum === seed.checksum) plan.push({ seed, action: 'skip', reason: 'unchanged' });
    else if (seed.repeatable) plan.push({ seed, action: 'rerun', reason: 'changed' });
    else refused.push(seed);
  }
  if (refused.length > 0) throw new SeedChangedError(refused);
  return plan;
}
