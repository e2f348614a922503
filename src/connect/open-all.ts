import { loadConfig, type LoadConfigOptions, type ResolvedConfig } from '../config/load-config.js';
import type { Database } from './database-handle.js';
import { open, type OpenOptions } from './open.js';
import { forEachTarget, type TargetResult } from './per-target.js';

export interface OpenAllResult {
  /** Handles of the targets that could be opened, by target name. */
  handles: Map<string, Database>;
  /** One result per configured target, in config order (failures included). */
  results: TargetResult<Database>[];
  /** Close every handle opened here. */
  close(): Promise<void>;
}

/**
 * Open every configured target at once. Targets that cannot be reached are reported in
 * `results` with their diagnosis; the others open normally.
 */
export async function openAll(
  config?: ResolvedConfig | LoadConfigOptions,
  options: OpenOptions = {},
): Promise<OpenAllResult> {
  const resolved = config && 'targets' in config ? config : await loadConfig(config);
  const results = await forEachTarget(resolved.targets, (t) => open(t, options));
  const handles = new Map<string, Database>();
  for (const r of results) if (r.ok) handles.set(r.target, r.value);
  return {
    handles,
    results,
    close: async () => {
      await Promise.allSettled([...handles.values()].map((h) => h.close()));
    },
  };
}
