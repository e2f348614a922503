/**
 * SQLite inspect role: read the catalog in a fixed number of queries (sqlite-catalog.ts), then
 * assemble the SchemaModel (sqlite-schema-builder.ts).
 */
import { DbwardError } from '../../core/errors.js';
import type { InspectRole } from '../contract.js';
import { readSqliteCatalog } from './sqlite-catalog.js';
import { buildSqliteSchema } from './sqlite-schema-builder.js';

/** Inspects one SQLite database (`main`); the query count does not grow with the table count. */
export const sqliteInspectRole: InspectRole = {
  async inspect(conn, target) {
    if (conn.kind !== 'sql') {
      throw new DbwardError('E_INTERNAL', 'SQLite inspect needs a SQL connection.', {
        context: { engine: 'sqlite', target: target.name, operation: 'inspect' },
      });
    }
    return buildSqliteSchema(await readSqliteCatalog(conn), target.name);
  },
};
