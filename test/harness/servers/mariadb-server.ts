/**
 * A throwaway MariaDB for the test run: `mariadb-install-db` into a private temp dir, then
 * `mariadbd --no-defaults` (so /etc/mysql and the system server on 3306 play no part) on a free
 * port, bound to 127.0.0.1, with its socket in the temp dir, running as the `mysql` system user
 * when we are root.
 *
 * The root password is random per run and is set by an `--init-file` (0600, in the 0700 temp dir,
 * deleted once the server is up) that the server runs before it accepts any connection, so there
 * is no moment with a password-less root on TCP and no password in any process's arguments.
 * Accounts afterwards: root@localhost (socket), root@127.0.0.1 and root@'%', all with that
 * password and ALL PRIVILEGES WITH GRANT OPTION.
 *
 * Speed over safety: no binary log, innodb_flush_log_at_trx_commit=0, no doublewrite buffer.
 * performance_schema is ON (the doctor and query stats read it); utf8mb4 is the default charset,
 * as Debian's own config makes it.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import {
  discardDir,
  errorMessage,
  findBinary,
  isSkipped,
  makeServerDir,
  randomPassword,
  runAsFor,
  runToCompletion,
  ServerProcess,
  withPortRetry,
  writePrivateFile,
} from './server-process.js';
import type { StartResult } from './server-process.js';

function initSql(password: string): string {
  // One statement per line: that is what --init-file reads. `password` is hex, so no quoting issues.
  return [
    // install-db made root@localhost, root@<hostname>, root@127.0.0.1 and root@::1 without passwords.
    "DELETE FROM mysql.global_priv WHERE Host <> 'localhost' OR User = '';",
    "DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';",
    'FLUSH PRIVILEGES;',
    `ALTER USER 'root'@'localhost' IDENTIFIED BY '${password}';`,
    `CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '${password}';`,
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;",
    `CREATE USER 'root'@'%' IDENTIFIED BY '${password}';`,
    "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;",
    '',
  ].join('\n');
}

export async function start(): Promise<StartResult> {
  const installDb = findBinary('mariadb-install-db') ?? findBinary('mysql_install_db');
  const mariadbd = findBinary('mariadbd', ['/usr/sbin']) ?? findBinary('mysqld', ['/usr/sbin']);
  if (!installDb || !mariadbd) {
    const missing = installDb ? 'mariadbd' : 'mariadb-install-db';
    return { skip: `mysql: ${missing} not found; run scripts/install-deps.sh` };
  }
  const runAs = runAsFor('mysql');
  if (runAs && isSkipped(runAs)) return { skip: `mysql: ${runAs.skip}` };

  const dir = makeServerDir('dbward-mariadb-', runAs);
  try {
    const password = randomPassword();
    const data = path.join(dir, 'data');
    await runToCompletion(
      installDb,
      [
        '--no-defaults',
        `--datadir=${data}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
      ],
      { dir, runAs, logFile: path.join(dir, 'install-db.log') },
    );
    const initFile = path.join(dir, 'init.sql');
    writePrivateFile(initFile, initSql(password), runAs);

    const logFile = path.join(dir, 'mariadb.log');
    const { proc, port, version } = await withPortRetry(async (port) => {
      const proc = new ServerProcess(
        'mariadbd',
        mariadbd,
        // prettier-ignore
        [
          '--no-defaults', // must come first
          `--datadir=${data}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--socket=${path.join(dir, 'mysqld.sock')}`,
          `--pid-file=${path.join(dir, 'mysqld.pid')}`,
          `--tmpdir=${dir}`,
          `--init-file=${initFile}`,
          '--skip-name-resolve',
          '--skip-log-bin',
          '--innodb-flush-log-at-trx-commit=0',
          '--innodb-doublewrite=0',
          '--performance-schema=ON',
          '--character-set-server=utf8mb4',
          '--collation-server=utf8mb4_general_ci',
          '--max-connections=200',
        ],
        { dir, runAs, logFile },
      );
      try {
        const version = await proc.waitUntilReady(() => serverVersion(port, password));
        return { proc, port, version };
      } catch (error) {
        await proc.stop({ keepDir: true });
        throw error;
      }
    });
    rmSync(initFile, { force: true });

    return {
      version: version.replace(/^(\d+\.\d+\.\d+)-MariaDB.*$/, 'MariaDB $1'),
      port,
      adminUrl: `mysql://root:${password}@127.0.0.1:${port}/`,
      env: {},
      notes: [],
      stop: () => proc.stop(),
    };
  } catch (error) {
    discardDir(dir);
    return { skip: `mysql: failed to start: ${errorMessage(error)}` };
  }
}

async function serverVersion(port: number, password: string): Promise<string> {
  const conn = await mysql.createConnection({
    host: '127.0.0.1',
    port,
    user: 'root',
    password,
    connectTimeout: 2000,
  });
  try {
    const [rows] = await conn.query('SELECT VERSION() AS v');
    return (rows as { v: string }[])[0]?.v ?? '?';
  } finally {
    await conn.end().catch(() => {});
  }
}
