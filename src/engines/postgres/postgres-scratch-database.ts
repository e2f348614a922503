/**
 * The PostgreSQL scratch-database role: an empty database on the target's server, made with
 * the target's own credentials (CREATE DATABASE) for a short job such as building a squashed
 * baseline, and dropped afterwards even if sessions are still connected to it.
 */
import { randomBytes } from 'node:crypto';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { ScratchDatabase, ScratchDatabaseRole, SqlConnection } from '../contract.js';
import { scratchTarget, sqlConnection } from '../scratch-target.js';
import { sqlStateOf } from './postgres-errors.js';

/** Every scratch database's name starts with this, so a leftover one is easy to recognise. */
export const scratchDatabasePrefix = 'dbward_scratch_';

export const postgresScratchDatabaseRole: ScratchDatabaseRole = {
  async createScratch(conn, { target }) {
    const sql = sqlConnection(conn);
    const name = `${scratchDatabasePrefix}${randomBytes(6).toString('hex')}`;
    const context = { engine: 'postgres', target: target.name, operation: 'create scratch database' };
    try {
      await sql.query(`CREATE DATABASE ${sql.quoteIdent(name)}`);
    } catch (err) {
      if (sqlStateOf(err) !== '42501') throw err;
      const role = await currentRole(sql);
      throw new DbwardError(
        'E_SCRATCH_DATABASE',
        `Cannot create a scratch database on the server of target "${target.name}": role ${role} may not create databases.`,
        {
          hint: `dbward builds the result in a temporary database (${scratchDatabasePrefix}…) and drops it afterwards. Let the role create databases: ALTER ROLE ${sql.quoteIdent(role)} CREATEDB;`,
          exitCode: ExitCode.failed,
          cause: err,
          context,
        },
      );
    }
    // DROP … WITH (FORCE) ends sessions still connected (PostgreSQL 13+); older servers need
    // them ended first.
    const force = (await serverVersionNum(sql)) >= 130000;
    let dropped = false;
    return {
      target: scratchTarget(target, name),
      async drop() {
        if (dropped) return;
        await sessionsGone(sql, name);
        if (force) {
          await sql.query(`DROP DATABASE IF EXISTS ${sql.quoteIdent(name)} WITH (FORCE)`);
        } else {
          await sql.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [name],
          );
          await sql.query(`DROP DATABASE IF EXISTS ${sql.quoteIdent(name)}`);
        }
        dropped = true;
      },
    } satisfies ScratchDatabase;
  },
};

async function currentRole(conn: SqlConnection): Promise<string> {
  const { rows } = await conn.query<{ role: string }>('SELECT current_user AS role');
  return rows[0]?.role ?? '<role>';
}

/**
 * Give sessions of a pool that was just closed a moment to end by themselves (node-postgres'
 * pool.end() does not wait for its sockets to close): ending them by force makes their pool
 * report "terminating connection due to administrator command". Up to about a second.
 */
async function sessionsGone(conn: SqlConnection, database: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const { rows } = await conn.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database],
    );
    if (Number(rows[0]?.n ?? 0) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function serverVersionNum(conn: SqlConnection): Promise<number> {
  const { rows } = await conn.query<{ server_version_num: string }>('SHOW server_version_num');
  return Number(rows[0]?.server_version_num ?? 0);
}
