/**
 * The process exit codes dbward documents (docs/cli.md). Library code never exits; it throws a
 * {@link DbwardError} carrying one of these, and `src/cli/main.ts` turns it into the exit status.
 */
export const ExitCode = {
  /** Everything worked. */
  ok: 0,
  /** The operation ran and failed, or found problems (findings, failed targets). */
  failed: 1,
  /** The command line or the configuration is wrong; nothing was attempted. */
  usage: 2,
  /** A database could not be reached or refused us. */
  cannotConnect: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
