import type { MigrationSection } from './migration-file.js';
import { MigrationFileError } from './migration-errors.js';

export interface ParsedSqlMigration {
  up: MigrationSection;
  down: MigrationSection | null;
  /** From a `-- dbward:squashed <from>..<to>` header comment: this file is a squashed baseline. */
  squashed?: { from: string; to: string };
}

// `-- migrate:up` / `-- migrate:down`, optionally followed by directives such as transaction:false.
const marker = /^--\s*migrate:(\S+)(.*)$/;
// `-- dbward:squashed 20261101000000..20261122043005 (12 migrations)`, before the first marker.
const squashedMarker = /^--\s*dbward:squashed\b(.*)$/;
const squashedRange = /^\s+(\d+)\.\.(\d+)(?:\s|$)/;

/**
 * Split a SQL migration into its up and down sections. Text before the first marker may only be
 * comments; an unknown marker, an unknown directive, a repeated section or a missing up section
 * is an error naming the line, because silently running half a file is worse than refusing it.
 */
export function parseSqlMigration(file: string, content: string): ParsedSqlMigration {
  const lines = content.replace(/\r\n?/g, '\n').split('\n');
  const sections = new Map<'up' | 'down', { transaction: boolean; markerLine: number; body: string[] }>();
  let current: { body: string[] } | null = null;
  let squashed: { from: string; to: string } | undefined;
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    const match = marker.exec(line.trim());
    if (!match) {
      const header = current ? null : squashedMarker.exec(line.trim());
      if (header) {
        const range = squashedRange.exec(header[1] ?? '');
        if (!range || squashed) {
          throw new MigrationFileError(
            file,
            squashed ? 'A second "-- dbward:squashed" header.' : 'Malformed "-- dbward:squashed" header.',
            {
              line: lineNo,
              hint: '`dbward migrate squash` writes it as "-- dbward:squashed <first version>..<last version> (<n> migrations)"; restore it from version control.',
            },
          );
        }
        squashed = { from: range[1]!, to: range[2]! };
      } else if (current) current.body.push(line);
      else if (line.trim() !== '' && !line.trim().startsWith('--')) {
        throw new MigrationFileError(file, 'SQL before the first "-- migrate:up" marker.', {
          line: lineNo,
          hint: 'Start the file with "-- migrate:up", put the SQL below it, and the rollback below "-- migrate:down".',
        });
      }
      return;
    }
    const kind = match[1];
    if (kind !== 'up' && kind !== 'down') {
      throw new MigrationFileError(file, `Unknown marker "-- migrate:${kind}".`, {
        line: lineNo,
        hint: 'The markers are "-- migrate:up" and "-- migrate:down".',
      });
    }
    if (sections.has(kind)) {
      throw new MigrationFileError(file, `A second "-- migrate:${kind}" section.`, { line: lineNo });
    }
    const section = {
      transaction: parseDirectives(file, lineNo, match[2] ?? ''),
      markerLine: lineNo,
      body: [],
    };
    sections.set(kind, section);
    current = section;
  });
  const up = sections.get('up');
  if (!up) {
    throw new MigrationFileError(file, 'No "-- migrate:up" section.', {
      hint: 'Every migration needs "-- migrate:up" followed by its SQL; "-- migrate:down" is optional.',
    });
  }
  const toSection = (s: { transaction: boolean; markerLine: number; body: string[] }): MigrationSection => ({
    sql: s.body.join('\n').trim(),
    transaction: s.transaction,
    firstLine: s.markerLine + 1 + leadingBlankLines(s.body),
  });
  const down = sections.get('down');
  return { up: toSection(up), down: down ? toSection(down) : null, ...(squashed ? { squashed } : {}) };
}

function parseDirectives(file: string, line: number, text: string): boolean {
  let transaction = true;
  for (const directive of text.trim().split(/\s+/).filter(Boolean)) {
    const [key, value] = directive.split(':');
    if (key === 'transaction' && (value === 'false' || value === 'true')) {
      transaction = value === 'true';
    } else {
      throw new MigrationFileError(file, `Unknown directive "${directive}".`, {
        line,
        hint: 'The only directive is transaction:false (run this section outside a transaction).',
      });
    }
  }
  return transaction;
}

function leadingBlankLines(body: string[]): number {
  let n = 0;
  while (n < body.length && body[n]!.trim() === '') n++;
  return n;
}
