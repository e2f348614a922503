/**
 * The MySQL/MariaDB scratch-database role: an empty database on the target's server, made with
 * the target's own credentials and with the target database's character set and collation (so
 * tables created in it get the same defaults), for a short job such as building a squashed
 * baseline; dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { DbwardError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { ScratchDatabase, ScratchDatabaseRole, SqlConnection } from '../contract.js';
import { scratchTarget, sqlConnection } from '../scratch-target.js';
import { mysqlErrno } from './mysql-errors.js';

/** Every scratch database's name starts with this, so a leftover one is easy to recognise. */
export const scratchDatabasePrefix = 'dbward_scratch_';

// ER_DBACCESS_DENIED_ERROR (no CREATE on that database), ER_SPECIFIC_ACCESS_DENIED_ERROR,
// ER_TABLEACCESS_DENIED_ERROR.
const accessDenied = new Set([1044, 1227, 1142]);

export const mysqlScratchDatabaseRole: ScratchDatabaseRole = {
  async createScratch(conn, { target }) {
    const sql = sqlConnection(conn);
    const name = `${scratchDatabasePrefix}${randomBytes(6).toString('hex')}`;
    const { rows } = await sql.query<{ cs: string | null; co: string | null }>(
      'SELECT @@character_set_database AS cs, @@collation_database AS co',
    );
    const charset = rows[0]?.cs ? ` CHARACTER SET ${rows[0].cs}` : '';
    const collation = rows[0]?.co ? ` COLLATE ${rows[0].co}` : '';
    try {
      await sql.query(`CREATE DATABASE ${sql.quoteIdent(name)}${charset}${collation}`);
    } catch (err) {
      const errno = mysqlErrno(err);
      if (errno === undefined || !accessDenied.has(errno)) throw err;
      const user = await currentUser(sql);
      throw new DbwardError(
        'E_SCRATCH_DATABASE',
        `Cannot create a scratch database on the server of target "${target.name}": ${user} may not create databases named ${scratchDatabasePrefix}….`,
        {
          hint: `dbward builds the result in a temporary database and drops it afterwards. Grant it: GRANT ALL PRIVILEGES ON \`${scratchDatabasePrefix}%\`.* TO ${user}; (CREATE and DROP make and remove it; the rest lets migrations run in it).`,
          exitCode: ExitCode.failed,
          cause: err,
          context: { engine: 'mysql', target: target.name, operation: 'create scratch database' },
        },
      );
    }
    let dropped = false;
    return {
      target: scratchTarget(target, name),
      async drop() {
        if (dropped) return;
        await sql.query(`DROP DATABASE IF EXISTS ${sql.quoteIdent(name)}`);
        dropped = true;
      },
    } satisfies ScratchDatabase;
  },
};

/** `'user'@'host'` as a GRANT names it. */
async function currentUser(conn: SqlConnection): Promise<string> {
  const { rows } = await conn.query<{ u: string }>('SELECT CURRENT_USER() AS u');
  const value = rows[0]?.u ?? '';
  const at = value.lastIndexOf('@');
  if (at < 0) return "'<user>'@'<host>'";
  const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  return `${quote(value.slice(0, at))}@${quote(value.slice(at + 1))}`;
}
