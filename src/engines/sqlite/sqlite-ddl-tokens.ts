/**
 * A tokenizer for SQLite's lexical grammar (https://sqlite.org/lang_keywords.html and
 * tokenize.c): strings, the four identifier quotings, comments, numbers, words and punctuation.
 * SQLite keeps CHECK constraints, generated-column expressions and index expressions only as
 * the text of the original CREATE statement, so inspect has to read that text; doing it over
 * tokens (never regexes over raw SQL) is what keeps a `)` inside a string or a comment from
 * ending an expression early.
 */

export type TokenKind = 'word' | 'identifier' | 'string' | 'number' | 'punct';

export interface Token {
  kind: TokenKind;
  /** The token as written (quotes included). */
  text: string;
  /** Offsets into the source, so callers can slice the original text (whitespace and all). */
  start: number;
  end: number;
}

/** Split SQL into tokens, dropping whitespace and comments. Linear: one pass over char codes. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  const push = (kind: TokenKind, start: number): void => {
    tokens.push({ kind, text: sql.slice(start, i), start, end: i });
  };
  while (i < n) {
    const start = i;
    const c = sql.charCodeAt(i);
    if (c <= 32) {
      i++;
    } else if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      i = until(sql, '\n', i + 2);
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      i = until(sql, '*/', i + 2) + 2;
    } else if (c === 39 /* ' */ || ((c | 32) === 120 /* x */ && sql.charCodeAt(i + 1) === 39)) {
      i = afterQuoted(sql, "'", c === 39 ? i + 1 : i + 2);
      push('string', start);
    } else if (c === 34 /* " */ || c === 96 /* ` */) {
      // "…" and `…` escape their quote by doubling it.
      i = afterQuoted(sql, sql[i] as string, i + 1);
      push('identifier', start);
    } else if (c === 91 /* [ */) {
      // […] has no escape: it ends at the first `]`.
      i = until(sql, ']', i + 1) + 1;
      push('identifier', start);
    } else if (isDigit(c) || (c === 46 /* . */ && isDigit(sql.charCodeAt(i + 1)))) {
      // Digits, a decimal point, hex digits, an exponent: precision does not matter here,
      // only where the number ends.
      i++;
      while (i < n && (isWordChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46)) {
        const e = sql.charCodeAt(i) | 32;
        i += e === 101 /* e */ && /[+-]/.test(sql[i + 1] ?? '') && !/^0x/i.test(sql.slice(start, i)) ? 2 : 1;
      }
      push('number', start);
    } else if (isWordChar(c)) {
      while (i < n && (isWordChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 36) /* $ */) i++;
      push('word', start);
    } else {
      i++;
      push('punct', start);
    }
  }
  return tokens;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

// Letters, digits, `_` and anything beyond ASCII, as SQLite's tokenizer treats them.
function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95 || c >= 128;
}

/** Index of `needle` at or after `from`, or the end of the text. */
function until(sql: string, needle: string, from: number): number {
  const at = sql.indexOf(needle, from);
  return at === -1 ? sql.length : at;
}

/** Index just past the closing `quote`, where a doubled quote is part of the text. */
function afterQuoted(sql: string, quote: string, from: number): number {
  let i = from;
  for (;;) {
    const at = sql.indexOf(quote, i);
    if (at === -1) return sql.length;
    if (sql[at + 1] !== quote) return at + 1;
    i = at + 2;
  }
}

/** The name an identifier or word token stands for, unquoted (`"a""b"` → `a"b`). */
export function identifierValue(token: Token): string {
  if (token.kind !== 'identifier' && token.kind !== 'string') return token.text;
  const text = token.kind === 'string' ? token.text.replace(/^[xX]/, '') : token.text;
  const open = text[0] as string;
  const close = open === '[' ? ']' : open;
  const inner = text.slice(1, text.length > 1 && text.endsWith(close) ? -1 : undefined);
  return open === '[' ? inner : inner.split(close + close).join(close);
}

/** True when the token is the keyword `word` (case-insensitive); quoted identifiers never are. */
export function isKeyword(token: Token | undefined, word: string): boolean {
  return token?.kind === 'word' && token.text.toUpperCase() === word;
}

export function isPunct(token: Token | undefined, ch: string): boolean {
  return token?.kind === 'punct' && token.text === ch;
}

/** Index of the `)` matching the `(` at `open`, or the last token if it is unbalanced. */
export function matchingParen(tokens: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')') && --depth === 0) return i;
  }
  return tokens.length - 1;
}

/** Split tokens[from, to) at commas outside parentheses: the items of a column or argument list. */
export function splitTopLevel(tokens: readonly Token[], from: number, to: number): [number, number][] {
  const parts: [number, number][] = [];
  let depth = 0;
  let partStart = from;
  for (let i = from; i < to; i++) {
    if (isPunct(tokens[i], '(')) depth++;
    else if (isPunct(tokens[i], ')')) depth--;
    else if (depth === 0 && isPunct(tokens[i], ',')) {
      parts.push([partStart, i]);
      partStart = i + 1;
    }
  }
  if (partStart < to) parts.push([partStart, to]);
  return parts;
}

/** The source text covered by tokens[from, to), exactly as written. */
export function sourceText(sql: string, tokens: readonly Token[], from: number, to: number): string {
  const first = tokens[from];
  const last = tokens[to - 1];
  return first && last && to > from ? sql.slice(first.start, last.end) : '';
}
