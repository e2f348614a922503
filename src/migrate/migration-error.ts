import { DbwardError, QueryError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import type { MigrationFile, MigrationSection } from './migration-file.js';

/**
 * A migration that failed on the server. The message starts with `file:line:column` in the
 * user's own file — the server's error position mapped through the section's place in the file —
 * then the server's message; detail and hint follow as the server gave them. Nothing of the
 * migration is recorded as applied.
 */
export class MigrationError extends DbwardError {
  readonly file: string;
  readonly line: number | undefined;

  constructor(
    file: MigrationFile,
    section: MigrationSection | null,
    err: unknown,
    rolledBack: boolean,
    statement?: { index: number; total: number; direction: 'up' | 'down' },
  ) {
    const query = err instanceof QueryError ? err : undefined;
    const at = query?.position !== undefined && section ? positionInFile(section, query.position) : undefined;
    const where = at ? `${file.path}:${at.line}:${at.column}` : file.path;
    // With a file position, the engine's "(line L, column C)" of the query text would only confuse.
    const raw = err instanceof Error ? err.message : String(err);
    const said = at ? raw.replace(/\s*\(line \d+, column \d+\)$/, '') : raw;
    const detail = query?.detail ? `\n  detail: ${query.detail}` : '';
    const which = statement ? ` at statement ${statement.index + 1} of ${statement.total}` : '';
    super(
      'E_MIGRATION_FAILED',
      `${where}: migration ${file.version}_${file.name} failed${which}: ${said}${detail}`,
      {
        exitCode: ExitCode.failed,
        cause: err,
        // The server's own hint first (it is about the SQL), then what to do about the run.
        hint: [query?.hint, recovery(rolledBack, statement)].filter(Boolean).join(' '),
      },
    );
    this.file = file.path;
    this.line = at?.line;
  }
}

/** Map a 1-based character position in the section's SQL to a line and column of the file. */
export function positionInFile(
  section: MigrationSection,
  position: number,
): { line: number; column: number } {
  const before = section.sql.slice(0, Math.max(0, position - 1));
  const newlines = before.split('\n').length - 1;
  const column = before.length - before.lastIndexOf('\n');
  return { line: section.firstLine + newlines, column };
}

function recovery(rolledBack: boolean, statement?: { index: number; direction: 'up' | 'down' }): string {
  if (rolledBack) {
    return 'Fix the migration file and run `dbward migrate up` again: its transaction was rolled back and nothing was recorded.';
  }
  if (statement && statement.direction === 'up') {
    return `Statements 1 to ${statement.index} stay applied and are recorded (status partial). Fix statement ${statement.index + 1} in the file and run \`dbward migrate up\` to resume there, or \`dbward migrate down\` to undo.`;
  }
  return 'It ran outside a transaction, so statements before the failing one stay applied: check the database, fix the file, then run again.';
}
