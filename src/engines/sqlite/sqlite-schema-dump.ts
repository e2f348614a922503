import type { SchemaDumpRole } from '../contract.js';

/**
 * SQLite keeps every object's CREATE statement verbatim in sqlite_schema, so the schema dump
 * needs no external tool: each statement in a fixed order (tables, then indexes, views and
 * triggers, each by name), without SQLite's internal objects. Deterministic by construction.
 */
export const sqliteSchemaDumpRole: SchemaDumpRole = {
  async dumpSchema(conn) {
    const { rows } = await conn.query<{ sql: string }>(
      `SELECT sql FROM sqlite_schema
        WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
        ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, name`,
    );
    return rows.map((r) => `${r.sql.trim()};\n`).join('\n');
  },
};
