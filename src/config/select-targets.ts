import { ConfigError } from '../core/errors.js';
import type { Target } from '../core/target.js';
import type { ResolvedConfig } from './load-config.js';

const nothingConfigured =
  'Set DATABASE_URL, pass --url, or create a dbward.config.ts with named targets (see docs/config.md). Try `npx dbward demo` for a sample database.';

/**
 * The targets a command works on. Named targets must exist; with none named, `all` gives every
 * target and otherwise the default target (the only one, `defaultTarget`, or `main`).
 */
export function selectTargets(config: ResolvedConfig, names: string[], all = false): Target[] {
  if (config.targets.length === 0) {
    throw new ConfigError('No database configured.', { hint: nothingConfigured });
  }
  if (names.length > 0) {
    return names.map((name) => {
      const target = config.targets.find((t) => t.name === name);
      if (!target) {
        throw new ConfigError(`Unknown target "${name}"${config.source ? ` in ${config.source}` : ''}.`, {
          key: `targets.${name}`,
          hint: `Configured targets: ${config.targets.map((t) => t.name).join(', ')}.`,
        });
      }
      return target;
    });
  }
  if (all) return config.targets;
  const fallback = config.targets.find((t) => t.name === config.defaultTarget);
  if (!fallback) {
    throw new ConfigError('Several targets are configured and none is the default.', {
      hint: `Name one (${config.targets.map((t) => t.name).join(', ')}) with --target, or set "defaultTarget" in the config.`,
    });
  }
  return [fallback];
}
