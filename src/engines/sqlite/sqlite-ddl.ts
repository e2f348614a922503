/**
 * Facts SQLite keeps only in the text of CREATE statements (sqlite_schema.sql): CHECK
 * constraints, generated-column expressions, index expressions and partial-index predicates,
 * and a view's SELECT. Read over tokens (see sqlite-ddl-tokens.ts), so parentheses, quotes and
 * comments inside expressions are handled the way SQLite itself reads them.
 */
import type { CheckConstraintInfo } from '../../core/schema-model.js';
import {
  identifierValue,
  isKeyword,
  isPunct,
  matchingParen,
  sourceText,
  splitTopLevel,
  tokenize,
  type Token,
} from './sqlite-ddl-tokens.js';

export interface CreateTableFacts {
  /** Generation expression per generated column, keyed by lower-cased column name. */
  generated: Map<string, string>;
  /** Column and table CHECK constraints, in declaration order. */
  checks: CheckConstraintInfo[];
}

export interface CreateIndexFacts {
  /** Each indexed term's expression text, without ASC/DESC or COLLATE. */
  terms: string[];
  /** The WHERE clause of a partial index, or null. */
  predicate: string | null;
}

// Words that start a table constraint; SQLite reserves them, so no bare column name can be one.
const tableConstraintStarts = new Set(['CONSTRAINT', 'PRIMARY', 'UNIQUE', 'CHECK', 'FOREIGN']);
// Words that start an (unnamed) column constraint, ending the reach of a preceding CONSTRAINT name.
const columnConstraintStarts = new Set([
  'PRIMARY',
  'NOT',
  'NULL',
  'UNIQUE',
  'DEFAULT',
  'COLLATE',
  'REFERENCES',
  'FOREIGN',
]);

/** Read CHECK constraints and generated-column expressions from a CREATE TABLE statement. */
export function parseCreateTable(sql: string): CreateTableFacts {
  const facts: CreateTableFacts = { generated: new Map(), checks: [] };
  const tokens = tokenize(sql);
  const open = tokens.findIndex((t) => isPunct(t, '(') || isKeyword(t, 'AS'));
  // `CREATE TABLE t AS SELECT …` has no definitions to read.
  if (open === -1 || !isPunct(tokens[open], '(')) return facts;
  const close = matchingParen(tokens, open);
  for (const [from, to] of splitTopLevel(tokens, open + 1, close)) {
    const first = tokens[from] as Token;
    const isTableConstraint = first.kind === 'word' && tableConstraintStarts.has(first.text.toUpperCase());
    const column = isTableConstraint ? null : identifierValue(first);
    scanConstraints(sql, tokens, isTableConstraint ? from : from + 1, to, column, facts);
  }
  return facts;
}

function scanConstraints(
  sql: string,
  tokens: readonly Token[],
  from: number,
  to: number,
  column: string | null,
  facts: CreateTableFacts,
): void {
  let pendingName: string | null = null;
  for (let i = from; i < to; i++) {
    const token = tokens[i] as Token;
    const next = tokens[i + 1];
    if (isKeyword(token, 'CONSTRAINT') && next) {
      pendingName = identifierValue(next);
      i++;
    } else if ((isKeyword(token, 'CHECK') || isKeyword(token, 'AS')) && isPunct(next, '(')) {
      const close = matchingParen(tokens, i + 1);
      const expression = sourceText(sql, tokens, i + 2, close).trim();
      if (isKeyword(token, 'CHECK')) facts.checks.push({ name: pendingName, expression });
      else if (column !== null) facts.generated.set(column.toLowerCase(), expression);
      pendingName = null;
      i = close;
    } else if (isPunct(token, '(')) {
      // A type's size, a DEFAULT (…) or a REFERENCES column list: nothing to read inside.
      i = matchingParen(tokens, i);
    } else if (token.kind === 'word' && columnConstraintStarts.has(token.text.toUpperCase())) {
      pendingName = null;
    }
  }
}

/** Read the indexed terms and the partial-index predicate of a CREATE INDEX statement. */
export function parseCreateIndex(sql: string): CreateIndexFacts {
  const tokens = tokenize(sql);
  const on = tokens.findIndex((t) => isKeyword(t, 'ON'));
  const open = tokens.findIndex((t, i) => i > on && isPunct(t, '('));
  if (on === -1 || open === -1) return { terms: [], predicate: null };
  const close = matchingParen(tokens, open);
  const terms = splitTopLevel(tokens, open + 1, close).map(([from, to]) => termText(sql, tokens, from, to));
  let predicate: string | null = null;
  if (isKeyword(tokens[close + 1], 'WHERE')) {
    const end = isPunct(tokens[tokens.length - 1], ';') ? tokens.length - 1 : tokens.length;
    predicate = sourceText(sql, tokens, close + 2, end).trim() || null;
  }
  return { terms, predicate };
}

function termText(sql: string, tokens: readonly Token[], from: number, to: number): string {
  let end = to;
  if (isKeyword(tokens[end - 1], 'ASC') || isKeyword(tokens[end - 1], 'DESC')) end--;
  let depth = 0;
  for (let i = from; i < end; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) depth--;
    else if (depth === 0 && isKeyword(tokens[i], 'COLLATE')) {
      end = i;
      break;
    }
  }
  return sourceText(sql, tokens, from, end).trim();
}

/** The SELECT of a CREATE VIEW statement (what follows its top-level AS), or the whole text. */
export function viewSelectText(sql: string): string {
  const tokens = tokenize(sql);
  for (let i = 0; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) i = matchingParen(tokens, i);
    else if (isKeyword(tokens[i], 'AS') && tokens[i + 1]) {
      return sql
        .slice((tokens[i + 1] as Token).start)
        .replace(/;\s*$/, '')
        .trim();
    }
  }
  return sql;
}
