/**
 * The MySQL/MariaDB backup role: `mariadb-dump` (or `mysqldump`) of one database as SQL, rows
 * counted from the dump itself; verified by loading it with the client into a scratch database
 * and counting there; restored by loading it into the target (the dump drops and recreates each
 * table, view and routine it holds).
 */
import path from 'node:path';
import { DbwardError } from '../../core/errors.js';
import { redactUrl } from '../../core/redact.js';
import type { BackupRole, CheckOutcome, LoadedCopy } from '../backup-role.js';
import { backupRoleErrors } from '../backup-role.js';
import type { ScratchDatabase, SqlConnection } from '../contract.js';
import { sqlConnection } from '../scratch-target.js';
import { startDump } from './mysql-backup-dump.js';
import { loadDump } from './mysql-backup-load.js';
import { DumpTableFilter } from './mysql-backup-table-filter.js';
import {
  backupError,
  databaseArg,
  findBackupDumpTool,
  findClientTool,
  toolVersion,
} from './mysql-backup-tools.js';
import { mysqlConnectionRole } from './mysql-connection.js';
import { mysqlScratchDatabaseRole } from './mysql-scratch-database.js';

const restoreHint =
  "The message above is the client's. Check that the user may create tables, views, triggers, routines and events (and SET USER/SUPER when their DEFINER is another user), and that the server's max_allowed_packet fits the largest row.";

export const mysqlBackupRole: BackupRole = {
  async plan(conn, ctx) {
    const serverVersion = await conn.serverVersion();
    const tool = await findBackupDumpTool(serverVersion);
    // Verification and restore need the client; say so now rather than after a long dump.
    try {
      const client = await findClientTool();
      ctx.logger.debug('MySQL client for loading backups', {
        tool: path.basename(client.command),
        version: toolVersion(client),
      });
    } catch (err) {
      ctx.logger.warn(`${(err as Error).message} Verifying and restoring this backup will need it.`);
    }
    return {
      serverVersion,
      tool: { name: path.basename(tool.command), version: toolVersion(tool) },
      extension: 'sql',
    };
  },

  async dump(_conn, ctx, plan) {
    const tool = await findBackupDumpTool(plan.serverVersion);
    return startDump(tool, ctx.spec, ctx.tempDir);
  },

  async loadCopy(source, conn, ctx) {
    const sql = sqlConnection(conn);
    const client = await findClientTool();
    let scratch: ScratchDatabase;
    try {
      scratch = await mysqlScratchDatabaseRole.createScratch(conn, { target: ctx.target, spec: ctx.spec });
    } catch (err) {
      if (!(err instanceof DbwardError)) throw err;
      throw backupError(backupRoleErrors.restore, err.message, err.hint ?? restoreHint, err);
    }
    const database = decodeURIComponent(new URL(scratch.target.url).pathname.slice(1));
    try {
      await loadDump(source, {
        tool: client,
        spec: { ...ctx.spec, database },
        database,
        tempDir: ctx.tempDir,
        ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
        what: `the backup into scratch database "${database}"`,
        hint: restoreHint,
      });
      await disableEvents(sql, database);
    } catch (err) {
      await scratch.drop().catch((dropErr: unknown) => {
        ctx.logger.warn(`Could not drop scratch database "${database}": ${(dropErr as Error).message}`);
      });
      throw err;
    }
    const copy: LoadedCopy = {
      check: () => checkCopy(sql, database, ctx.spec.database ?? database),
      dispose: () => scratch.drop(),
    };
    return copy;
  },

  async existingContents(conn) {
    const sql = sqlConnection(conn);
    const { rows } = await sql.query<{ kind: string; name: string }>(
      `SELECT LOWER(CASE TABLE_TYPE WHEN 'BASE TABLE' THEN 'table' ELSE TABLE_TYPE END) AS kind, TABLE_NAME AS name
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
       UNION ALL
       SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()
       UNION ALL
       SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()
       ORDER BY 1, 2`,
    );
    return rows.map((r) => `${r.kind} ${r.name}`);
  },

  async restore(source, _conn, ctx) {
    const database = databaseArg(ctx.spec.database, 'restore');
    const client = await findClientTool();
    const wanted = ctx.tables && tableMatcher(ctx.tables);
    const filter = wanted && new DumpTableFilter(wanted.matches);
    await loadDump(source, {
      tool: client,
      spec: ctx.spec,
      database,
      tempDir: ctx.tempDir,
      ...(filter ? { filter } : {}),
      ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
      what: `the backup into database "${database}"`,
      hint: restoreHint,
    });
    if (wanted && filter) {
      const missing = wanted.unmatched(filter.kept);
      if (missing.length > 0) {
        throw backupError(
          backupRoleErrors.restore,
          `The backup holds no table ${missing.map((t) => `"${t}"`).join(', ')}; the other tables were restored.`,
          'List the tables in the backup with `dbward backup show`, and pass their names as printed there.',
        );
      }
    }
  },

  async createDatabase(ctx) {
    const database = databaseArg(ctx.spec.database, 'restore');
    const url = new URL(ctx.target.url);
    url.pathname = '';
    const text = url.toString();
    const conn = sqlConnection(
      await mysqlConnectionRole.connect({
        target: { ...ctx.target, url: text, displayUrl: redactUrl(text) },
        spec: { ...ctx.spec, database: undefined },
        logger: ctx.logger,
      }),
    );
    try {
      await conn.query(`CREATE DATABASE IF NOT EXISTS ${conn.quoteIdent(database)}`);
    } catch (err) {
      throw backupError(
        backupRoleErrors.restore,
        `Could not create database "${database}": ${(err as Error).message}`,
        'Create it yourself (CREATE DATABASE …), or grant the user CREATE on it.',
        err,
      );
    } finally {
      await conn.close();
    }
  },
};

/**
 * `--tables` names as in the manifest (`app.users`, or just `users`): a dump holds one database,
 * so a table matches by its own name, with or without a database in front.
 */
function tableMatcher(names: string[]): {
  matches: (table: string) => boolean;
  unmatched: (kept: Set<string>) => string[];
} {
  const hit = (name: string, table: string): boolean => name === table || name.endsWith(`.${table}`);
  return {
    matches: (table) => names.some((name) => hit(name, table)),
    unmatched: (kept) => names.filter((name) => ![...kept].some((table) => hit(name, table))),
  };
}

/** The copy's events must not fire and change it while it is being checked. */
async function disableEvents(sql: SqlConnection, database: string): Promise<void> {
  const { rows } = await sql.query<{ name: string }>(
    'SELECT EVENT_NAME AS name FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?',
    [database],
  );
  for (const { name } of rows) {
    await sql.query(`ALTER EVENT ${sql.quoteIdent(database)}.${sql.quoteIdent(name)} DISABLE`);
  }
}

const batch = 200;

/**
 * Exact row counts of every base table in the copy (one UNION ALL query per 200 tables), named
 * as the dump named them (`<original database>.<table>`), and CHECK TABLE's complaints.
 */
async function checkCopy(sql: SqlConnection, database: string, originalName: string): Promise<CheckOutcome> {
  const { rows: tableRows } = await sql.query<{ name: string }>(
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
    [database],
  );
  const names = tableRows.map((r) => r.name);
  const qualified = (t: string): string => `${sql.quoteIdent(database)}.${sql.quoteIdent(t)}`;
  const tables: CheckOutcome['tables'] = [];
  const problems: string[] = [];
  for (let i = 0; i < names.length; i += batch) {
    const part = names.slice(i, i + batch);
    const { rows } = await sql.query<{ i: number; n: number | string }>(
      part.map((t, j) => `SELECT ${String(j)} AS i, COUNT(*) AS n FROM ${qualified(t)}`).join(' UNION ALL '),
    );
    for (const row of rows) {
      tables.push({ name: `${originalName}.${part[Number(row.i)] ?? ''}`, rows: Number(row.n) });
    }
    const { rows: checked } = await sql.query<{ Table: string; Msg_type: string; Msg_text: string }>(
      `CHECK TABLE ${part.map(qualified).join(', ')} QUICK`,
    );
    for (const r of checked) {
      const type = r.Msg_type.toLowerCase();
      if (type === 'error' || type === 'warning' || (type === 'status' && r.Msg_text !== 'OK')) {
        problems.push(`${r.Table.replace(`${database}.`, `${originalName}.`)}: ${r.Msg_type}: ${r.Msg_text}`);
      }
    }
  }
  tables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    tables,
    problems,
    checks: [
      `COUNT(*) of ${String(names.length)} tables`,
      `CHECK TABLE … QUICK: ${problems.length === 0 ? 'ok' : `${String(problems.length)} problems`}`,
    ],
  };
}
