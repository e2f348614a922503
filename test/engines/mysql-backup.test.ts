/**
 * The MySQL/MariaDB backup role: the dump's row counter and --tables filter on tricky input and at
 * every chunk boundary, then against a real MariaDB — dump, load into a scratch copy, check, restore
 * — plus failing and outdated (fake) dump tools, and the password kept out of argv and errors.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { DbwardError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/logger.js';
import type { BackupContext, BackupRole, DumpOutcome, LoadContext } from '../../src/engines/backup-role.js';
import type { SqlConnection } from '../../src/engines/contract.js';
import { DumpRowCounter } from '../../src/engines/mysql/mysql-backup-row-counter.js';
import { DumpTableFilter } from '../../src/engines/mysql/mysql-backup-table-filter.js';
import { clientToolEnvVar } from '../../src/engines/mysql/mysql-backup-tools.js';
import { mysqlEngine } from '../../src/engines/mysql/mysql-engine.js';
import { dumpToolEnvVar } from '../../src/engines/mysql/mysql-schema-dump.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';
import { connectSql, testTarget } from '../helpers/engine-connect.js';

// A dump in MariaDB ≥ 10.11's layout (one row per line), with the traps: quotes, backslashes,
// `),(` and `;` inside strings, a string ending in a backslash, and an INSERT inside a routine.
const sample = [
  '/*M!999999\\- enable the sandbox mode */ ',
  '-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB',
  "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
  '',
  '--',
  '-- Table structure for table `empty`',
  '--',
  '',
  'DROP TABLE IF EXISTS `empty`;',
  'CREATE TABLE `empty` (',
  '  `x` int(11) DEFAULT NULL',
  ') ENGINE=InnoDB;',
  '',
  '--',
  '-- Table structure for table `items`',
  '--',
  '',
  'CREATE TABLE `items` (`id` int, `s` text, `b` blob);',
  '',
  '--',
  '-- Dumping data for table `items`',
  '--',
  '',
  'LOCK TABLES `items` WRITE;',
  'INSERT INTO `items` VALUES',
  "(1,'it\\'s ),( a (trap); \\\\',0x00FF27),",
  "(2,'line\\nnext ''quoted''',NULL),",
  "(3,'ends with \\\\',0x28),",
  "(4,'',NULL);",
  "INSERT INTO `items` VALUES (5,'single-line (MySQL) form',NULL),(6,NULL,0x3B);",
  'UNLOCK TABLES;',
  'DELIMITER ;;',
  '/*!50003 CREATE*/ /*!50003 TRIGGER trg BEFORE INSERT ON items FOR EACH ROW SET NEW.s = 1 */;;',
  'DELIMITER ;',
  '',
  '--',
  '-- Table structure for table `we.ird``name`',
  '--',
  '',
  'CREATE TABLE `we.ird``name` (`x` int);',
  'INSERT INTO `we.ird``name` VALUES (1),(2);',
  '',
  '--',
  "-- Dumping routines for database 'db'",
  '--',
  'DELIMITER ;;',
  'CREATE DEFINER=`root`@`%` PROCEDURE `p`()',
  'BEGIN',
  "INSERT INTO `items` VALUES (9,'x',NULL),(10,'y',NULL);",
  'END',
  ';;',
  'DELIMITER ;',
  '/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;',
  '',
  '-- Dump completed',
  '',
].join('\n');
const sampleCounts = [
  { table: 'empty', rows: 0 },
  { table: 'items', rows: 6 },
  { table: 'we.ird`name', rows: 2 },
];

function countChunks(chunks: Buffer[]): DumpRowCounter {
  const counter = new DumpRowCounter();
  for (const chunk of chunks) counter.count(chunk);
  return counter;
}

async function filterChunks(chunks: Buffer[], tables: string[]): Promise<string> {
  const filter = new DumpTableFilter((t) => tables.includes(t));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), filter, async (src: AsyncIterable<Buffer>) => {
    for await (const b of src) out.push(b);
  });
  return Buffer.concat(out).toString('utf8');
}

describe('mysql backup: row counter and table filter (pure)', () => {
  const bytes = Buffer.from(sample);

  it('counts tuples, skipping strings, routine bodies and tables without data', () => {
    const counter = countChunks([bytes]);
    assert.deepEqual(counter.tables(), sampleCounts);
    assert.ok(counter.endsWithTrailer());
  });

  it('counts the same whatever the chunk boundaries (every split, and byte by byte)', () => {
    for (let i = 0; i <= bytes.length; i++) {
      const counter = countChunks([bytes.subarray(0, i), bytes.subarray(i)]);
      assert.deepEqual(counter.tables(), sampleCounts, `split at ${String(i)}`);
    }
    const single = countChunks([...bytes].map((b) => Buffer.from([b])));
    assert.deepEqual(single.tables(), sampleCounts);
    assert.ok(single.endsWithTrailer());
    // Three pieces around the trickiest row (escapes and `),(` in a string).
    const from = bytes.indexOf("(1,'it");
    const to = bytes.indexOf('(2,');
    for (let i = from; i < to; i++) {
      for (let j = i; j < to; j++) {
        const counter = countChunks([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
        assert.deepEqual(counter.tables(), sampleCounts, `split at ${String(i)}, ${String(j)}`);
      }
    }
  });

  it('passes bytes through unchanged and sees a missing trailer', async () => {
    const counter = new DumpRowCounter();
    const out: Buffer[] = [];
    const truncated = bytes.subarray(0, bytes.indexOf('-- Dump completed'));
    await pipeline(Readable.from([truncated]), counter, async (src: AsyncIterable<Buffer>) => {
      for await (const b of src) out.push(b);
    });
    assert.ok(Buffer.concat(out).equals(truncated));
    assert.equal(counter.endsWithTrailer(), false);
    assert.equal(
      countChunks([Buffer.from('-- Dump completed on 2024-01-01 10:00:00\n\n')]).endsWithTrailer(),
      true,
    );
  });

  it('keeps the header, the chosen tables and the trailer, whatever the chunk boundaries', async () => {
    const out = await filterChunks([bytes], ['items']);
    assert.match(out, /^\/\*M!999999/);
    assert.match(out, /SET @OLD_SQL_MODE/);
    assert.match(out, /CREATE TABLE `items`/);
    assert.match(out, /^\(3,'ends with \\\\',0x28\),$/m);
    assert.match(out, /TRIGGER trg/);
    assert.match(out, /SET SQL_MODE=@OLD_SQL_MODE/);
    assert.doesNotMatch(out, /`empty`|we\.ird|PROCEDURE|\(9,'x'/);
    assert.deepEqual(countChunks([Buffer.from(out)]).tables(), [{ table: 'items', rows: 6 }]);
    for (let i = 0; i <= bytes.length; i += 7) {
      assert.equal(await filterChunks([bytes.subarray(0, i), bytes.subarray(i)], ['items']), out);
    }
  });

  it('counts fast', { skip: process.env.DBWARD_BENCH ? false : 'set DBWARD_BENCH=1' }, () => {
    const rows = Array.from(
      { length: 200 },
      (_, i) =>
        `(${String(i)},'name ${String(i)} it\\'s \\\\ (x), ok','${'x'.repeat(i % 50)}',0x${'ab'.repeat(20)},NULL)`,
    );
    const statement = `INSERT INTO \`t\` VALUES\n${rows.join(',\n')};\n`;
    const block = Buffer.from(statement.repeat(Math.ceil(4e6 / statement.length)));
    const reps = Math.ceil(200e6 / block.length);
    const counter = new DumpRowCounter();
    const start = process.hrtime.bigint();
    // 64 KiB chunks, as a pipe delivers them.
    for (let r = 0; r < reps; r++) {
      for (let at = 0; at < block.length; at += 65536) counter.count(block.subarray(at, at + 65536));
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const perBlock = 200 * Math.ceil(4e6 / statement.length);
    assert.deepEqual(counter.tables(), [{ table: 't', rows: perBlock * reps }]);
    console.log(`row counter: ${((block.length * reps) / 1e6 / seconds).toFixed(0)} MB/s`);
  });
});

const skip = skipReason('mysql');

describe('mysql backup: against the server', { skip }, () => {
  let role: BackupRole;
  let db: TestDatabase;
  let conn: SqlConnection;
  let dir: string;
  const cleanups: (() => Promise<void>)[] = [];

  const backupContext = (url: string): BackupContext => ({
    target: testTarget(url),
    spec: mysqlEngine.parseUrl(url),
    logger: silentLogger,
    tempDir: dir,
    jobs: 1,
  });
  const loadContext = (url: string, extra: Partial<LoadContext> = {}): LoadContext => ({
    target: testTarget(url),
    spec: mysqlEngine.parseUrl(url),
    logger: silentLogger,
    tempDir: dir,
    extension: 'sql',
    jobs: 1,
    ...extra,
  });
  const password = (): string => decodeURIComponent(new URL(db.url).password);

  /** Dump `db` to a file; `during` sees each chunk before it is written. */
  async function dumpToFile(file: string, during?: (chunk: Buffer) => Promise<void>): Promise<DumpOutcome> {
    const ctx = backupContext(db.url);
    const plan = await role.plan(conn, ctx);
    const running = await role.dump(conn, ctx, plan);
    await pipeline(
      running.stream!,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          if (during) await during(chunk);
          yield chunk;
        }
      },
      createWriteStream(file),
    );
    return running.done;
  }

  async function newDatabase(): Promise<{ db: TestDatabase; conn: SqlConnection }> {
    const fresh = await freshDatabase('mysql');
    const c = await connectSql(mysqlEngine, fresh.url);
    cleanups.push(async () => {
      await c.close();
      await fresh.cleanup();
    });
    return { db: fresh, conn: c };
  }

  async function tableCounts(c: SqlConnection, database: string): Promise<{ name: string; rows: number }[]> {
    const { rows } = await c.query<{ name: string }>(
      `SELECT TABLE_NAME AS name FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`,
      [database],
    );
    const out = [];
    for (const { name } of rows) {
      const r = await c.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${c.quoteIdent(name)}`);
      out.push({ name: `${db.name}.${name}`, rows: Number(r.rows[0]?.n) });
    }
    return out;
  }

  const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : 1);

  before(async () => {
    const load = mysqlEngine.roles.backup;
    assert.ok(load);
    role = await load();
    dir = await mkdtemp(path.join(tmpdir(), 'dbward-mysql-backup-'));
    ({ db, conn } = await newDatabase());
    const statements = [
      'CREATE TABLE items (id INT PRIMARY KEY, s TEXT NULL, b BLOB NULL, n INT NULL)',
      'CREATE TABLE empty_t (x INT)',
      'CREATE TABLE `we.ird``name` (x INT)',
      'INSERT INTO `we.ird``name` VALUES (1), (2)',
      'CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(300))',
      `INSERT INTO big WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 99)
         SELECT a.n * 100 + b.n + 1, REPEAT('x', 250) FROM s a CROSS JOIN s b WHERE a.n < 60`,
      'CREATE VIEW v_items AS SELECT id, s FROM items',
      'CREATE TRIGGER items_n BEFORE INSERT ON items FOR EACH ROW SET NEW.n = COALESCE(NEW.n, -1)',
      // A routine whose body has a line that looks like dump data.
      "CREATE PROCEDURE p_add()\nBEGIN\nINSERT INTO `items` VALUES (1000,'x',NULL,NULL),(1001,'y',NULL,NULL);\nEND",
      'CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 HOUR DISABLE DO DELETE FROM items WHERE id < 0',
    ];
    for (const sql of statements) await conn.query(sql);
    const texts = [
      "it's a ),( trap; with \\ backslash",
      'line one\nline two\r\n\ttabbed',
      'ends with a backslash \\',
      "('paren') ''doubled''",
      'ünïcødé 🙂',
      '',
    ];
    const blobs = [Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from("'),(;\\"), null];
    for (let i = 0; i < 12; i++) {
      await conn.query('INSERT INTO items (id, s, b, n) VALUES (?, ?, ?, ?)', [
        i + 1,
        i % 7 === 6 ? null : texts[i % 7],
        blobs[i % 3],
        i % 2 ? i : null,
      ]);
    }
    // Rows the trigger did not touch: a restore must keep them NULL.
    await conn.query('UPDATE items SET n = NULL WHERE id IN (1, 3)');
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('plans with mariadb-dump and the server version', async () => {
    const plan = await role.plan(conn, backupContext(db.url));
    assert.equal(plan.tool.name, 'mariadb-dump');
    assert.match(plan.tool.version, /^\d+\.\d+\.\d+/);
    assert.equal(plan.extension, 'sql');
    assert.equal(plan.serverVersion, await conn.serverVersion());
  });

  it('dumps with exact counts, loads a scratch copy with the same counts, and disposes it', async () => {
    const file = path.join(dir, 'basic.sql');
    const outcome = await dumpToFile(file);
    assert.deepEqual([...outcome.tables].sort(byName), await tableCounts(conn, db.name));
    assert.ok(outcome.tables.some((t) => t.name === `${db.name}.empty_t` && t.rows === 0));
    assert.ok(outcome.tables.some((t) => t.name === `${db.name}.items` && t.rows === 12));

    let progress = 0;
    const copy = await role.loadCopy(
      createReadStream(file),
      conn,
      loadContext(db.url, { onProgress: (n) => (progress = n) }),
    );
    const checked = await copy.check();
    assert.deepEqual(checked.tables, [...outcome.tables].sort(byName));
    assert.deepEqual(checked.problems, []);
    assert.ok(checked.checks.length > 0);
    assert.equal(progress, (await readFile(file)).length);
    await copy.dispose();
  });

  it('restores into a fresh database equal to the original, and --tables restores only those', async () => {
    const file = path.join(dir, 'restore.sql');
    await dumpToFile(file);
    const target = await newDatabase();
    assert.deepEqual(await role.existingContents(target.conn, loadContext(target.db.url)), []);
    await role.restore(createReadStream(file), target.conn, loadContext(target.db.url));

    for (const table of ['items', 'big', 'empty_t', 'we.ird`name']) {
      const sql = `SELECT * FROM ${conn.quoteIdent(table)} ORDER BY 1`;
      assert.deepEqual((await target.conn.query(sql)).rows, (await conn.query(sql)).rows, table);
    }
    const contents = await role.existingContents(target.conn, loadContext(target.db.url));
    for (const thing of ['event ev_cleanup', 'procedure p_add', 'table items', 'view v_items']) {
      assert.ok(contents.includes(thing), `${thing} in ${contents.join(', ')}`);
    }
    const triggers = await target.conn.query(
      'SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ?',
      ['items_n'],
    );
    assert.equal(triggers.rows.length, 1);

    const partial = await newDatabase();
    await role.restore(
      createReadStream(file),
      partial.conn,
      loadContext(partial.db.url, { tables: [`${db.name}.items`, 'we.ird`name'] }),
    );
    assert.deepEqual(await role.existingContents(partial.conn, loadContext(partial.db.url)), [
      'table items',
      'table we.ird`name',
    ]);
    const items = 'SELECT * FROM items ORDER BY id';
    assert.deepEqual((await partial.conn.query(items)).rows, (await conn.query(items)).rows);

    await assert.rejects(
      role.restore(createReadStream(file), partial.conn, loadContext(partial.db.url, { tables: ['nope'] })),
      (err: unknown) =>
        err instanceof DbwardError && err.code === 'E_BACKUP_RESTORE' && /"nope"/.test(err.message),
    );
  });

  it('counts the snapshot, not rows written by another session during the dump', async () => {
    const before = await tableCounts(conn, db.name);
    let inserted = false;
    let seen = '';
    const file = path.join(dir, 'concurrent.sql');
    const outcome = await dumpToFile(file, async (chunk) => {
      const window = seen + chunk.toString('latin1');
      seen = window.slice(-200);
      // The snapshot is taken before any table's data; mariadb-dump is now blocked on its pipe.
      if (!inserted && window.includes('-- Dumping data for table `big`')) {
        inserted = true;
        await conn.query(`INSERT INTO big VALUES (7001, 'late'), (7002, 'late')`);
        await conn.query(`INSERT INTO items (id, s) VALUES (7001, 'late')`);
        await conn.query('DELETE FROM big WHERE id <= 10');
      }
    });
    assert.ok(inserted);
    assert.deepEqual([...outcome.tables].sort(byName), before);
    const copy = await role.loadCopy(createReadStream(file), conn, loadContext(db.url));
    try {
      assert.deepEqual((await copy.check()).tables, before);
    } finally {
      await copy.dispose();
    }
    assert.notDeepEqual(await tableCounts(conn, db.name), before);
  });

  it('rejects a dump stopped by abort()', async () => {
    const ctx = backupContext(db.url);
    const running = await role.dump(conn, ctx, await role.plan(conn, ctx));
    await new Promise((resolve) => running.stream!.once('data', resolve));
    running.abort();
    await assert.rejects(
      running.done,
      (err: unknown) => err instanceof DbwardError && err.code === 'E_BACKUP_DUMP',
    );
  });

  describe('with fake tools', () => {
    const real = { dump: 'mariadb-dump', client: 'mariadb' };
    let argsFile: string;

    async function fakeTool(name: string, body: string): Promise<string> {
      const file = path.join(dir, `${name}-${randomBytes(3).toString('hex')}`);
      const version =
        name === 'old-dump'
          ? 'mariadb-dump  Ver 10.19 Distrib 10.5.1-MariaDB, for debian-linux-gnu (x86_64)'
          : 'mariadb-dump  Ver 10.19 Distrib 99.1.0-MariaDB, for debian-linux-gnu (x86_64)';
      await writeFile(
        file,
        `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "${version}"; exit 0; fi\n${body}\n`,
      );
      await chmod(file, 0o755);
      return file;
    }

    async function withTool<T>(envVar: string, tool: string, fn: () => Promise<T>): Promise<T> {
      const saved = process.env[envVar];
      process.env[envVar] = tool;
      try {
        return await fn();
      } finally {
        if (saved === undefined) delete process.env[envVar];
        else process.env[envVar] = saved;
      }
    }

    const dumpError = (pattern: RegExp) => (err: unknown) => {
      assert.ok(err instanceof DbwardError, String(err));
      assert.equal(err.code, 'E_BACKUP_DUMP');
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes(password()), 'password in the message');
      return true;
    };

    before(() => {
      argsFile = path.join(dir, 'args.txt');
    });

    it('refuses a dump tool older than the server, naming the package', async () => {
      const tool = await fakeTool('old-dump', 'exit 0');
      await withTool(dumpToolEnvVar, tool, () =>
        assert.rejects(role.plan(conn, backupContext(db.url)), (err: unknown) => {
          assert.ok(err instanceof DbwardError);
          assert.equal(err.code, 'E_BACKUP_TOOL');
          assert.match(err.message, /10\.5/);
          assert.match(err.hint ?? '', /mariadb-client 10\.11/);
          return true;
        }),
      );
    });

    it('passes the password only through a 0600 option file, first in argv', async () => {
      const tool = await fakeTool(
        'record-dump',
        `printf '%s\\n' "$@" > "${argsFile}"\nstat -c '%a' "\${1#--defaults-extra-file=}" >> "${argsFile}"\nexec ${real.dump} "$@"`,
      );
      await withTool(dumpToolEnvVar, tool, () => dumpToFile(path.join(dir, 'recorded.sql')));
      const args = (await readFile(argsFile, 'utf8')).trim().split('\n');
      assert.match(args[0]!, /^--defaults-extra-file=/);
      assert.equal(args.at(-1), '600');
      assert.equal(args.at(-2), db.name);
      assert.ok(!args.some((a) => a.includes(password())));
      for (const flag of [
        '--single-transaction',
        '--quick',
        '--routines',
        '--triggers',
        '--events',
        '--hex-blob',
      ]) {
        assert.ok(args.includes(flag), flag);
      }
      assert.ok(!args.includes('--databases'));
    });

    it('rejects a failing tool with its stderr, password stripped', async () => {
      // Echo the option file (with the password) to stderr, as a careless tool might.
      const tool = await fakeTool(
        'fail-dump',
        'echo "-- partial"\ncat "${1#--defaults-extra-file=}" >&2\necho "mysqldump: Got error: 1044" >&2\nexit 2',
      );
      await withTool(dumpToolEnvVar, tool, () =>
        assert.rejects(dumpToFile(path.join(dir, 'fail.sql')), dumpError(/exit 2.*1044|1044.*exit 2|exit 2/)),
      );
    });

    it('rejects output without the trailer, and empty output', async () => {
      const truncated = await fakeTool('cut-dump', `${real.dump} "$@" | head -c 2000`);
      await withTool(dumpToolEnvVar, truncated, () =>
        assert.rejects(dumpToFile(path.join(dir, 'cut.sql')), dumpError(/Dump completed/)),
      );
      const empty = await fakeTool('empty-dump', 'exit 0');
      await withTool(dumpToolEnvVar, empty, () =>
        assert.rejects(dumpToFile(path.join(dir, 'empty.sql')), dumpError(/wrote nothing/)),
      );
    });

    it('drops the scratch database when loading fails, with the client message', async () => {
      const dbFile = path.join(dir, 'client-db.txt');
      const client = await fakeTool(
        'record-client',
        `eval "last=\\\${$#}"\necho "$last" > "${dbFile}"\nexec ${real.client} "$@"`,
      );
      const bad = Readable.from([Buffer.from('CREATE TABLE ok (x INT);\nTHIS IS NOT SQL;\n')]);
      await withTool(clientToolEnvVar, client, () =>
        assert.rejects(role.loadCopy(bad, conn, loadContext(db.url)), (err: unknown) => {
          assert.ok(err instanceof DbwardError);
          assert.equal(err.code, 'E_BACKUP_RESTORE');
          assert.match(err.message, /ERROR 1064/);
          return true;
        }),
      );
      const scratch = (await readFile(dbFile, 'utf8')).trim();
      assert.match(scratch, /^dbward_scratch_/);
      const left = await conn.query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
        scratch,
      ]);
      assert.equal(left.rows.length, 0);

      // A source that fails part-way: its own error comes back, and the scratch goes too.
      const failing = Readable.from(
        (async function* () {
          yield Buffer.from('CREATE TABLE ok (x INT);\nINSERT INTO ok VALUES (1),');
          throw new DbwardError('E_BACKUP_INTEGRITY', 'hash mismatch');
        })(),
      );
      await withTool(clientToolEnvVar, client, () =>
        assert.rejects(role.loadCopy(failing, conn, loadContext(db.url)), /hash mismatch/),
      );
      const scratch2 = (await readFile(dbFile, 'utf8')).trim();
      const left2 = await conn.query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [
        scratch2,
      ]);
      assert.equal(left2.rows.length, 0);
    });
  });

  it('creates the database for restore --create, and is a no-op when it exists', async () => {
    const name = `dbward_t_${randomBytes(5).toString('hex')}`;
    const url = new URL(adminUrl('mysql')!);
    url.pathname = `/${name}`;
    cleanups.push(async () => {
      await conn.query(`DROP DATABASE IF EXISTS ${conn.quoteIdent(name)}`);
    });
    const ctx = loadContext(url.toString());
    await role.createDatabase!(ctx);
    await role.createDatabase!(ctx);
    const found = await conn.query('SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [name]);
    assert.equal(found.rows.length, 1);
  });
});
