/**
 * The PostgreSQL backup role: pg_dump in an exported snapshot (with exact row counts taken in
 * the same snapshot), pg_restore into a scratch database for verification or into the target.
 * The dump lives in postgres-backup-dump.ts, loading in postgres-backup-load.ts; this file finds
 * the tools, checks their versions, and manages the databases around a load.
 */
import { parseNetworkUrl } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import type { Target } from '../../core/target.js';
import type { BackupRole, LoadContext, LoadedCopy } from '../backup-role.js';
import type { EngineConnection, SqlConnection } from '../contract.js';
import { scratchTarget, sqlConnection } from '../scratch-target.js';
import { countRows, databaseContents, integrityFacts } from './postgres-backup-catalog.js';
import { startDump } from './postgres-backup-dump.js';
import { loadArchive } from './postgres-backup-load.js';
import {
  errorContext,
  requireTool,
  restoreError,
  toolVersionText,
  versionOutput,
} from './postgres-backup-tools.js';
import { postgresConnectionRole } from './postgres-connection.js';
import { sqlStateOf } from './postgres-errors.js';
import { postgresScratchDatabaseRole } from './postgres-scratch-database.js';
import { majorLabel, majorOf, parsePgDumpVersion } from './postgres-schema-dump.js';

export const postgresBackupRole: BackupRole = {
  async plan(conn, ctx) {
    const sql = sqlConnection(conn);
    const context = errorContext(ctx.target, 'backup');
    const serverVersion = await sql.serverVersion();
    const serverNum = await serverVersionNum(sql);
    const server = majorLabel(serverNum);
    const tool = async (name: 'pg_dump' | 'pg_restore'): Promise<{ version: string; num: number }> => {
      const file = requireTool(name, server, context);
      const output = await versionOutput(file);
      const version = toolVersionText(output);
      const num = parsePgDumpVersion(output);
      if (version === undefined || num === undefined) {
        throw new DbwardError(
          'E_BACKUP_TOOL',
          `Cannot tell the version of ${file} from "${output.trim()}".`,
          {
            hint: `Check that it is PostgreSQL's ${name}, or install postgresql-client-${server}.`,
            context,
          },
        );
      }
      if (majorOf(num) < majorOf(serverNum)) {
        throw new DbwardError(
          'E_BACKUP_TOOL',
          `${name} ${majorLabel(num)} cannot ${name === 'pg_dump' ? 'dump' : 'restore'} a PostgreSQL ${server} server (${file}).`,
          {
            hint: `Install postgresql-client-${server} (or newer) so that ${name} ${server}+ is found.`,
            context,
          },
        );
      }
      return { version, num };
    };
    const dump = await tool('pg_dump');
    await tool('pg_restore');
    return {
      serverVersion,
      tool: { name: 'pg_dump', version: dump.version },
      extension: ctx.jobs > 1 ? 'pgdir.tar' : 'pgdump',
    };
  },

  dump: startDump,

  async loadCopy(source, conn, ctx) {
    const sql = sqlConnection(conn);
    const major = majorLabel(await serverVersionNum(sql));
    const scratch = await postgresScratchDatabaseRole.createScratch(conn, {
      target: ctx.target,
      spec: ctx.spec,
    });
    const spec = parseNetworkUrl(scratch.target.url);
    try {
      await loadArchive(
        source,
        { database: spec.database!, spec, target: scratch.target, clean: false, major },
        ctx,
      );
    } catch (err) {
      await scratch.drop().catch(() => undefined);
      throw err;
    }
    let copy: SqlConnection | undefined;
    return {
      async check() {
        copy ??= sqlConnection(
          await postgresConnectionRole.connect({ target: scratch.target, spec, logger: ctx.logger }),
        );
        const db = copy;
        const { tables, facts } = await db.withTransaction(
          async (s) => ({
            tables: await countRows(s, (n) => db.quoteIdent(n)),
            facts: await integrityFacts(s),
          }),
          'repeatable read',
        );
        const checks = ['pg_restore exited 0', `${tables.length} tables counted`];
        // NOT VALID constraints are restored as they were dumped: a fact of the source, not damage.
        if (facts.notValidated.length > 0) {
          checks.push(`constraints NOT VALID as in the source: ${facts.notValidated.join(', ')}`);
        }
        checks.push(`invalid indexes: ${facts.invalidIndexes.length}`);
        return {
          tables,
          problems: facts.invalidIndexes.map((name) => `index ${name} is invalid after the restore`),
          checks,
        };
      },
      async dispose() {
        await copy?.close();
        copy = undefined;
        await scratch.drop();
      },
    } satisfies LoadedCopy;
  },

  async existingContents(conn) {
    return databaseContents(sqlConnection(conn));
  },

  /**
   * A `--tables` list, and `pg_restore -j` over existing objects (its --clean must drop foreign
   * keys before the tables they point at, so the sections cannot be split), need the custom
   * archive as a file. Into an empty database, -j streams the data instead (see loadArchive).
   */
  wantsFile: ({ extension, jobs, tables, targetEmpty }) =>
    extension === 'pgdump' && (tables !== undefined || (jobs > 1 && targetEmpty !== true)),

  async restore(source, conn, ctx) {
    const sql = sqlConnection(conn);
    const database = requireDatabase(ctx);
    const major = majorLabel(await serverVersionNum(sql));
    await loadArchive(source, { database, spec: ctx.spec, target: ctx.target, clean: true, major }, ctx);
  },

  async createDatabase(ctx) {
    const database = requireDatabase(ctx);
    // The maintenance database, with the target's credentials and settings.
    const maintenance: Target = { ...scratchTarget(ctx.target, 'postgres'), name: ctx.target.name };
    const spec = parseNetworkUrl(maintenance.url);
    const db = sqlConnection(
      await postgresConnectionRole.connect({ target: maintenance, spec, logger: ctx.logger }),
    );
    try {
      const { rows } = await db.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (rows.length > 0) return;
      await db.query(`CREATE DATABASE ${db.quoteIdent(database)}`).catch((err: unknown) => {
        if (sqlStateOf(err) === '42P04') return; // created meanwhile by someone else
        if (sqlStateOf(err) === '42501') {
          throw new DbwardError(
            'E_BACKUP_RESTORE',
            `Role ${spec.user ?? ''} may not create database ${database}.`,
            {
              hint: `Create it as a privileged user, or grant CREATEDB: ALTER ROLE ${db.quoteIdent(spec.user ?? '')} CREATEDB;`,
              context: errorContext(ctx.target, 'restore'),
              cause: err,
            },
          );
        }
        throw err;
      });
    } finally {
      await db.close();
    }
  },
};

function requireDatabase(ctx: LoadContext): string {
  if (ctx.spec.database) return ctx.spec.database;
  throw restoreError(
    `the URL of target "${ctx.target.name}" names no database.`,
    errorContext(ctx.target, 'restore'),
  );
}

async function serverVersionNum(conn: EngineConnection): Promise<number> {
  const { rows } = await sqlConnection(conn).query<{ server_version_num: string }>('SHOW server_version_num');
  return Number(rows[0]?.server_version_num ?? 0);
}
