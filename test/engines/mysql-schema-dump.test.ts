import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DbwardError } from '../../src/core/errors.js';
import type { SchemaDumpRole, SqlConnection } from '../../src/engines/contract.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import {
  buildDumpInvocation,
  checkToolVersion,
  dumpToolEnvVar,
  mysqlSchemaDumpRole,
  normalizeMysqlDump,
  optionValue,
  parseToolVersion,
} from '../../src/engines/mysql/mysql-schema-dump.js';
import { freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

const skip = skipReason('mysql');

const secret = 'pa"ss\\w#rd \'x';
const spec = {
  scheme: 'mysql',
  host: 'db.example',
  port: 3307,
  user: 'app',
  password: secret,
  database: 'shop',
  params: {},
};

describe('mysql schema dump: invocation (pure)', () => {
  it('puts credentials only in the option file, with --defaults-extra-file first', () => {
    const { args, optionFile } = buildDumpInvocation(spec, '/tmp/x/client.cnf', { mariadb: true });
    assert.equal(args[0], '--defaults-extra-file=/tmp/x/client.cnf');
    assert.equal(args.at(-1), 'shop');
    for (const flag of ['--no-data', '--skip-comments', '--routines', '--triggers', '--events']) {
      assert.ok(args.includes(flag), flag);
    }
    assert.ok(!args.some((a) => a.includes('pa"ss') || a.includes('app') || a.includes('db.example')));
    assert.equal(
      optionFile,
      [
        '[client]',
        'user="app"',
        `password="pa\\"ss\\\\w#rd \\'x"`,
        'host="db.example"',
        'port="3307"',
        'protocol=tcp',
        '',
      ].join('\n'),
    );
  });

  it('uses the socket from the URL instead of host and port', () => {
    const { optionFile } = buildDumpInvocation(
      { ...spec, params: { socket: '/run/mysqld/mysqld.sock' } },
      '/f',
      { mariadb: true },
    );
    assert.match(optionFile, /^socket="\/run\/mysqld\/mysqld.sock"$/m);
    assert.doesNotMatch(optionFile, /^(host|port)=/m);
  });

  it('escapes control characters and quotes in option values', () => {
    assert.equal(optionValue('a\nb\tc"d'), '"a\\nb\\tc\\"d"');
  });

  it('adds --set-gtid-purged=OFF for Oracle mysqldump only', () => {
    assert.ok(buildDumpInvocation(spec, '/f', { mariadb: false }).args.includes('--set-gtid-purged=OFF'));
    assert.ok(!buildDumpInvocation(spec, '/f', { mariadb: true }).args.includes('--set-gtid-purged=OFF'));
  });

  it('reads tool versions and refuses a tool older than a same-flavor server', () => {
    assert.deepEqual(
      parseToolVersion('mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu'),
      {
        mariadb: true,
        version: [10, 11],
      },
    );
    assert.deepEqual(
      parseToolVersion('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'),
      {
        mariadb: false,
        version: [8, 0],
      },
    );
    const old = { command: 'mariadb-dump', mariadb: true, version: [10, 6] as [number, number] };
    assert.throws(
      () => checkToolVersion(old, '10.11.19-MariaDB'),
      (err: unknown) =>
        err instanceof DbwardError &&
        err.code === 'E_SCHEMA_DUMP' &&
        err.message.includes('10.6') &&
        err.message.includes('10.11.19-MariaDB'),
    );
    checkToolVersion(old, '10.6.2-MariaDB');
    checkToolVersion(old, '8.0.36'); // cross-flavor: not compared
  });

  it('normalizes counters, definers and blank lines', () => {
    const raw = [
      'CREATE TABLE `t` (',
      '  `id` int(11) NOT NULL AUTO_INCREMENT,',
      '  PRIMARY KEY (`id`)',
      ') ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4;',
      '',
      '',
      '',
      '',
      '/*!50001 CREATE ALGORITHM=UNDEFINED */',
      '/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */',
      '/*!50001 VIEW `v` AS select 1 */;',
      '/*!50013 DEFINER=`root`@`%` SQL SECURITY INVOKER */',
      'CREATE DEFINER=`root`@`%` PROCEDURE `p`()',
      '/*!50003 CREATE*/ /*!50017 DEFINER=`a``b`@`localhost`*/ /*!50003 TRIGGER `tr` ...',
      '-- Dump completed on 2024-01-01 10:00:00',
      '',
    ].join('\n');
    const out = normalizeMysqlDump(raw);
    assert.doesNotMatch(out, /AUTO_INCREMENT=|DEFINER=|Dump completed/);
    assert.match(out, /NOT NULL AUTO_INCREMENT,/);
    assert.match(out, /\/\*!50013 SQL SECURITY INVOKER \*\//);
    assert.match(out, /^CREATE PROCEDURE `p`\(\)$/m);
    assert.match(out, /^\/\*!50003 CREATE\*\/ \/\*!50003 TRIGGER/m);
    assert.doesNotMatch(out, /\n{4}/);
    assert.ok(out.endsWith('\n') && !out.endsWith('\n\n'));
  });
});

describe('mysql schema dump: against the server', { skip }, () => {
  let db: TestDatabase;
  let conn: SqlConnection;
  let role: SchemaDumpRole;
  const dump = (): Promise<string> =>
    role.dumpSchema(conn, { target: testTarget(db.url), spec: mysqlEngine.parseUrl(db.url) });

  before(async () => {
    db = await freshDatabase('mysql');
    conn = await connectSql(mysqlEngine, db.url);
    const load = mysqlEngine.roles.schemaDump;
    assert.ok(load);
    role = await load();
    for (const sql of [
      `CREATE TABLE users (
         id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
         email VARCHAR(200) NOT NULL,
         created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
       ) ENGINE=InnoDB`,
      `CREATE INDEX users_email_idx ON users (email)`,
      `CREATE VIEW user_emails AS SELECT id, email FROM users`,
      `CREATE PROCEDURE count_users() SELECT COUNT(*) FROM users`,
      `INSERT INTO users (email) VALUES ('a@x'), ('b@x'), ('c@x')`,
    ]) {
      await conn.query(sql);
    }
  });

  after(async () => {
    await conn?.close();
    await db?.cleanup();
  });

  it('dumps tables, indexes, views and procedures without counters, definers or secrets', async () => {
    const out = await dump();
    assert.match(out, /CREATE TABLE `users`/);
    assert.match(out, /KEY `users_email_idx`/);
    assert.match(out, /VIEW `user_emails`/);
    assert.match(out, /PROCEDURE `count_users`/);
    assert.doesNotMatch(out, /AUTO_INCREMENT=/);
    assert.doesNotMatch(out, /DEFINER=/);
    assert.doesNotMatch(out, /\b\d{4}-\d{2}-\d{2}\b/);
    assert.doesNotMatch(out, /INSERT INTO/);
    const password = new URL(db.url).password;
    if (password) assert.ok(!out.includes(decodeURIComponent(password)));
    assert.ok(out.endsWith('\n') && !out.endsWith('\n\n'));
  });

  it('is byte-identical after more rows are inserted', async () => {
    const first = await dump();
    await conn.query(`INSERT INTO users (email) VALUES ('d@x'), ('e@x')`);
    assert.equal(await dump(), first);
  });

  it('reports a missing tool as E_SCHEMA_DUMP with a hint', async () => {
    const saved = process.env[dumpToolEnvVar];
    process.env[dumpToolEnvVar] = '/nonexistent/mariadb-dump';
    try {
      await assert.rejects(
        () =>
          mysqlSchemaDumpRole.dumpSchema(conn, {
            target: testTarget(db.url),
            spec: mysqlEngine.parseUrl(db.url),
          }),
        (err: unknown) =>
          err instanceof DbwardError &&
          err.code === 'E_SCHEMA_DUMP' &&
          err.hint === 'Install mariadb-client (or mysql-client), or pass --no-dump',
      );
    } finally {
      if (saved === undefined) delete process.env[dumpToolEnvVar];
      else process.env[dumpToolEnvVar] = saved;
    }
  });
});
