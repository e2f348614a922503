import { DbwardError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';

/**
 * A migration file or directory that cannot be used as it is: a broken section marker, a
 * duplicated version, a misnamed file. Names the file (and line) so it can be fixed. Exit 2:
 * nothing was attempted.
 */
export class MigrationFileError extends DbwardError {
  readonly file: string;
  readonly line: number | undefined;

  constructor(file: string, message: string, options: { line?: number; hint?: string } = {}) {
    super('E_MIGRATION_FILE', `${file}${options.line ? `:${options.line}` : ''}: ${message}`, {
      exitCode: ExitCode.usage,
      ...(options.hint ? { hint: options.hint } : {}),
    });
    this.file = file;
    this.line = options.line;
  }
}
