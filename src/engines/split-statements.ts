/**
 * Statement splitting for migrations, through dbgate-query-splitter (a maintained splitter that
 * knows each dialect's quoting, comments, PostgreSQL dollar quotes and MySQL's DELIMITER).
 * Engines pick the dialect; this wraps the call and the result shape.
 */
import splitter from 'dbgate-query-splitter';
import type { SplitStatement } from './contract.js';

export type SplitDialect = 'postgres' | 'mysql' | 'sqlite';

interface RichStatement {
  text: string;
  trimStart?: { line: number };
}

const dialectOptions = {
  postgres: splitter.postgreSplitterOptions,
  mysql: splitter.mysqlSplitterOptions,
  sqlite: splitter.sqliteSplitterOptions,
};

/** Split `sql` into statements with the 0-based line each starts on. Empty statements are dropped. */
export function splitSqlStatements(sql: string, dialect: SplitDialect): SplitStatement[] {
  const parts = splitter.splitQuery(sql, {
    ...dialectOptions[dialect],
    returnRichInfo: true,
  }) as unknown as RichStatement[];
  return parts
    .map((p) => ({ text: p.text.trim(), line: p.trimStart?.line ?? 0 }))
    .filter((p) => p.text !== '' && !/^(--[^\n]*\n?|\/\*[\s\S]*?\*\/|\s)*$/.test(p.text));
}
