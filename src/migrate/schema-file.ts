import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SqlDatabase } from '../connect/database-handle.js';
import { DbwardError } from '../core/errors.js';
import type { Target } from '../core/target.js';
import type { EngineId } from '../engines/contract.js';
import { engineById } from '../engines/registry.js';

/**
 * Write the database's schema to `file` with the engine's schema-dump role, so the schema can
 * be reviewed in diffs next to the migrations. Resolves to the path written; rejects with a
 * DbwardError (E_SCHEMA_DUMP) saying why it could not dump.
 */
export async function writeSchemaFile(db: SqlDatabase, target: Target, file: string): Promise<string> {
  const engine = engineById(db.engine.id as EngineId);
  const load = engine.roles.schemaDump;
  if (!load) {
    throw new DbwardError('E_SCHEMA_DUMP', `Schema dumps of ${engine.displayName} are not available yet.`, {
      hint: 'Pass --no-dump.',
    });
  }
  const sql = await (await load()).dumpSchema(db.connection, { target, spec: engine.parseUrl(target.url) });
  const absolute = path.resolve(file);
  mkdirSync(path.dirname(absolute), { recursive: true });
  writeFileSync(absolute, sql);
  return absolute;
}
