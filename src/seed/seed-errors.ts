/**
 * The errors seeds raise on purpose. Every one names the seed file, so it can be fixed.
 */
import { DbwardError, QueryError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { positionInFile } from '../migrate/migration-error.js';

/**
 * A seed file or directory that cannot be used as it is: an unknown `-- seed:` directive, a
 * directive after the SQL started, a SQL seed on a key-value engine. Exit 2: nothing was attempted.
 */
export class SeedFileError extends DbwardError {
  readonly file: string;
  readonly line: number | undefined;

  constructor(file: string, message: string, options: { line?: number; hint?: string } = {}) {
    super('E_SEED_FILE', `${file}${options.line ? `:${options.line}` : ''}: ${message}`, {
      exitCode: ExitCode.usage,
      ...(options.hint ? { hint: options.hint } : {}),
    });
    this.file = file;
    this.line = options.line;
  }
}

/**
 * Seeds that ran before, changed since, and are not marked repeatable. The whole run is refused
 * before anything runs: running such a seed again could duplicate or clobber data.
 */
export class SeedChangedError extends DbwardError {
  /** The seed ids, e.g. `01_countries.sql`, `dev/02_demo_users.ts`. */
  readonly seeds: string[];

  constructor(seeds: { id: string; path: string }[]) {
    const list = seeds.map((s) => s.path).join(', ');
    super(
      'E_SEED_CHANGED',
      seeds.length === 1
        ? `Seed ${list} changed after it ran, and it is not marked repeatable. Nothing was run.`
        : `Seeds ${list} changed after they ran, and they are not marked repeatable. Nothing was run.`,
      {
        exitCode: ExitCode.failed,
        hint:
          'If running it again is safe (it is idempotent, e.g. INSERT … ON CONFLICT DO NOTHING), mark it ' +
          'repeatable: a first line `-- seed:repeatable` (SQL) or `export const repeatable = true` (TS/JS). ' +
          'Otherwise restore the file and put the change in a new seed file.',
      },
    );
    this.seeds = seeds.map((s) => s.id);
  }
}

/**
 * A seed that failed while running. The message starts with `file:line:column` where the server
 * gave a position in a SQL seed, then the server's (or the script's) message.
 */
export class SeedFailedError extends DbwardError {
  readonly file: string;
  readonly line: number | undefined;

  constructor(
    seed: { id: string; path: string; sql: string | null },
    err: unknown,
    /** `rolled-back`: its transaction was; `not-run`: it failed to load; `no-transaction`: Redis. */
    outcome: 'rolled-back' | 'not-run' | 'no-transaction',
  ) {
    const query = err instanceof QueryError ? err : undefined;
    const at =
      query?.position !== undefined && seed.sql !== null
        ? positionInFile({ sql: seed.sql, transaction: true, firstLine: 1 }, query.position)
        : undefined;
    const where = at ? `${seed.path}:${at.line}:${at.column}` : seed.path;
    const raw = err instanceof Error ? err.message : String(err);
    const said = at ? raw.replace(/\s*\(line \d+, column \d+\)$/, '') : raw;
    const detail = query?.detail ? `\n  detail: ${query.detail}` : '';
    const recovery = {
      'rolled-back':
        'Fix the seed and run `dbward seed` again: its transaction was rolled back and nothing of it was recorded; the seeds before it stay applied.',
      'not-run':
        'Fix the file and run `dbward seed` again: it could not be loaded, so it did not run; the seeds before it stay applied.',
      'no-transaction':
        'This engine has no transactions: whatever the seed wrote before it failed stays, and it is not recorded. Fix the seed (make it idempotent) and run `dbward seed` again; the seeds before it stay applied.',
    }[outcome];
    super('E_SEED_FAILED', `${where}: seed ${seed.id} failed: ${said}${detail}`, {
      exitCode: ExitCode.failed,
      cause: err,
      hint: [query?.hint, recovery].filter(Boolean).join(' '),
    });
    this.file = seed.path;
    this.line = at?.line;
  }
}
