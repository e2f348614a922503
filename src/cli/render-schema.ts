import type { SchemaModel, TableInfo } from '../core/schema-model.js';
import { formatBytes, formatCount, paint, table, type Output } from './output.js';

/** The text form of `dbward inspect`: a summary line, then tables (or key patterns) at a glance. */
export function renderSchema(
  out: Output,
  model: SchemaModel,
  options: { detail: boolean; elapsedMs: number },
): string {
  const lines: string[] = [];
  lines.push(
    `${paint(out, 'bold', model.target)}  ${model.engine} ${model.serverVersion}  ${model.database}  ${paint(out, 'dim', `(${Math.round(options.elapsedMs)} ms)`)}`,
  );
  if (model.keyspaces.length > 0 || model.keyPatterns.length > 0) {
    lines.push(renderKeyspace(model));
    return lines.join('\n');
  }
  const counts = [
    plural(model.schemas.length, 'schema'),
    plural(model.tables.length, 'table'),
    plural(model.views.length, 'view'),
    plural(model.sequences.length, 'sequence'),
  ];
  lines.push(counts.join(' · '), '');
  if (model.tables.length === 0) {
    lines.push(paint(out, 'dim', 'No tables.'));
    return lines.join('\n');
  }
  const qualify = new Set(model.tables.map((t) => t.schema)).size > 1;
  lines.push(
    table(
      ['TABLE', 'ROWS', 'SIZE', 'COLUMNS', 'INDEXES', 'FKS', 'PK'],
      model.tables.map((t) => [
        qualify ? `${t.schema}.${t.name}` : t.name,
        t.rowEstimate === null ? '-' : `~${formatCount(t.rowEstimate)}`,
        formatBytes(t.totalBytes),
        t.columns.length,
        t.indexes.length,
        t.foreignKeys.length,
        t.primaryKey ? t.primaryKey.columns.join(',') : paint(out, 'yellow', 'none'),
      ]),
    ),
  );
  if (options.detail) for (const t of model.tables) lines.push('', renderTable(out, t));
  if (model.views.length > 0) {
    lines.push(
      '',
      `views: ${model.views.map((v) => `${v.name}${v.materialized ? ' (materialized)' : ''}`).join(', ')}`,
    );
  }
  return lines.join('\n');
}

function renderTable(out: Output, t: TableInfo): string {
  const lines = [
    paint(out, 'bold', `${t.schema}.${t.name}`) + (t.comment ? paint(out, 'dim', `  -- ${t.comment}`) : ''),
  ];
  lines.push(
    table(
      ['  COLUMN', 'TYPE', 'NULL', 'DEFAULT'],
      t.columns.map((c) => [
        `  ${c.name}`,
        c.type + (c.identity ? ` identity ${c.identity}` : c.autoIncrement ? ' auto' : ''),
        c.nullable ? 'yes' : 'no',
        c.generated ? `generated: ${c.generated}` : (c.default ?? ''),
      ]),
    ),
  );
  for (const ix of t.indexes) {
    const flags = [ix.primary ? 'primary' : ix.unique ? 'unique' : '', ix.method, ix.valid ? '' : 'INVALID']
      .filter(Boolean)
      .join(' ');
    lines.push(
      `  index ${ix.name} (${ix.columns.join(', ')}) ${flags}${ix.predicate ? ` where ${ix.predicate}` : ''}`,
    );
  }
  for (const fk of t.foreignKeys) {
    lines.push(
      `  fk (${fk.columns.join(', ')}) -> ${fk.referencedTable}(${fk.referencedColumns.join(', ')}) on delete ${fk.onDelete}`,
    );
  }
  return lines.join('\n');
}

function renderKeyspace(model: SchemaModel): string {
  const lines = [
    table(
      ['DB', 'KEYS', 'WITH TTL', 'AVG TTL'],
      model.keyspaces.map((k) => [
        `db${k.db}`,
        k.keys,
        k.keysWithExpiry,
        k.avgTtlMs === null ? '-' : `${Math.round(k.avgTtlMs / 1000)} s`,
      ]),
    ),
  ];
  if (model.keyPatterns.length > 0) {
    lines.push(
      '',
      table(
        ['PATTERN', 'TYPE', '~KEYS', '~MEMORY', 'TTL'],
        model.keyPatterns.map((p) => [
          p.pattern,
          p.type,
          formatCount(p.estimatedKeys),
          formatBytes(p.estimatedBytes),
          `${Math.round(p.ttlCoverage * 100)}%`,
        ]),
      ),
    );
  }
  return lines.join('\n');
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
