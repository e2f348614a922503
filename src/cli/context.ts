import type { ResolvedConfig } from '../config/load-config.js';
import { stderrLogger, type Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import { stackWithCauses } from './error-stack.js';
import { createOutput, type Output } from './output.js';

/** The global options every command accepts. */
export interface GlobalFlags {
  config?: string;
  url?: string;
  target?: string;
  env?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
}

/** What a command gets: output, logger, and lazy access to the configured targets. */
export interface CliContext {
  flags: GlobalFlags;
  out: Output;
  logger: Logger;
  config(): Promise<ResolvedConfig>;
  /** For forEachTarget's onError: under --verbose, print the failed target's stack to stderr. */
  onTargetError(target: Target, err: unknown): void;
  /** The targets named on the command line (positional or --target), or the default one / all. */
  targets(names: string[], options?: { all?: boolean }): Promise<Target[]>;
}

export function createContext(flags: GlobalFlags): CliContext {
  const out = createOutput(flags);
  let loaded: Promise<ResolvedConfig> | undefined;
  // Config loading pulls in zod and the registry: import it only when a command needs targets.
  const config = (): Promise<ResolvedConfig> =>
    (loaded ??= import('../config/load-config.js').then(({ loadConfig }) =>
      loadConfig({
        ...(flags.config !== undefined ? { configFile: flags.config } : {}),
        ...(flags.url !== undefined ? { url: flags.url } : {}),
        ...(flags.env !== undefined ? { envName: flags.env } : {}),
      }),
    ));
  return {
    flags,
    out,
    logger: stderrLogger({ verbose: !!flags.verbose }),
    config,
    onTargetError(target, err) {
      if (flags.verbose) process.stderr.write(`${target.name}: ${stackWithCauses(err)}\n`);
    },
    async targets(names, options = {}) {
      const wanted = names.length > 0 ? names : flags.target ? [flags.target] : [];
      const { selectTargets } = await import('../config/select-targets.js');
      return selectTargets(await config(), wanted, options.all);
    },
  };
}
