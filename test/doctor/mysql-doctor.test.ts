/**
 * `doctor` on a real MariaDB (the test runner's throwaway server): each scenario plants one kind
 * of problem in a fresh database and asserts the finding's id and severity; a healthy database must
 * yield no warning or critical at all. Server-wide facts (sessions, status counters) are shared
 * with test files running at the same time, so assertions on them look for our own sessions only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { targetFromInput } from '../../src/config/load-config.js';
import { open, openSql } from '../../src/connect/open.js';
import { withDoctorSession } from '../../src/engines/mysql/mysql-doctor-queries.js';
import type { DoctorReport, Finding } from '../../src/doctor/finding.js';
import { doctor, type DoctorOptions } from '../../src/doctor/run-doctor.js';
import { mysqlErrno } from '../../src/engines/mysql/mysql-errors.js';
import { adminUrl, freshDatabase, skipReason, type TestDatabase } from '../harness/test-databases.js';

const skip = skipReason('mysql');

async function run(url: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const db = await open(url);
  try {
    return await doctor(db, targetFromInput(url), options);
  } finally {
    await db.close();
  }
}

const found = (report: DoctorReport, id: string): Finding[] => report.findings.filter((f) => f.id === id);

function one(report: DoctorReport, id: string, severity: Finding['severity']): Finding {
  const list = found(report, id).filter((f) => f.severity === severity);
  assert.equal(
    list.length,
    1,
    `expected one ${severity} ${id}, got: ${JSON.stringify(found(report, id), null, 1)}`,
  );
  return list[0] as Finding;
}

const problems = (report: DoctorReport): Finding[] =>
  report.findings.filter((f) => f.severity === 'warning' || f.severity === 'critical');

async function exec(url: string, statements: string[]): Promise<void> {
  const conn = await mysql.createConnection(url);
  try {
    for (const sql of statements) await conn.query(sql);
  } finally {
    await conn.end();
  }
}

const withUser = (url: string, user: string, password: string): string => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('mysql doctor', { skip }, () => {
  const databases: TestDatabase[] = [];
  let performanceSchema = false;

  const fresh = async (statements: string[] = []): Promise<TestDatabase> => {
    const db = await freshDatabase('mysql');
    databases.push(db);
    await exec(db.url, statements);
    return db;
  };

  before(async () => {
    const conn = await mysql.createConnection(adminUrl('mysql') as string);
    const [rows] = await conn.query('SELECT @@performance_schema AS ps');
    performanceSchema = Number((rows as { ps: number }[])[0]?.ps) === 1;
    await conn.end();
  });

  after(async () => {
    for (const db of databases) await db.cleanup();
  });

  it('finds no warning or critical in a freshly created, empty database', async () => {
    const db = await fresh();
    const report = await run(db.url);
    assert.deepEqual(problems(report), []);
    assert.deepEqual(report.skipped, []);
    assert.equal(report.engine, 'mysql');
    assert.match(report.serverVersion ?? '', /MariaDB|^\d+\.\d+/);
    // The shared sections were filled: their checks ran.
    for (const id of [
      'server.version',
      'connections.usage',
      'activity.long-running',
      'tables.no-primary-key',
    ]) {
      assert.ok(found(report, id).length > 0, `${id} ran`);
    }
    // The test server runs without binlog and slow log: reported, but only as info.
    one(report, 'mysql.binlog', 'info');
    one(report, 'mysql.slow-query-log', 'info');
  });

  it('finds no warning or critical in a healthy schema with data and indexed queries', async () => {
    const db = await fresh([
      `CREATE TABLE authors (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, email VARCHAR(200) NOT NULL,
         name VARCHAR(100) NOT NULL, UNIQUE KEY authors_email (email), KEY authors_name (name))`,
      `CREATE TABLE books (id BIGINT AUTO_INCREMENT PRIMARY KEY, author_id INT UNSIGNED NOT NULL,
         title VARCHAR(200) NOT NULL, CONSTRAINT books_author FOREIGN KEY (author_id) REFERENCES authors (id))`,
      `CREATE TABLE tags (book_id BIGINT NOT NULL, tag VARCHAR(50) NOT NULL, PRIMARY KEY (book_id, tag),
         KEY tags_tag (tag), CONSTRAINT tags_book FOREIGN KEY (book_id) REFERENCES books (id))`,
      `CREATE VIEW author_books AS SELECT a.name, b.title FROM authors a JOIN books b ON b.author_id = a.id`,
      `INSERT INTO authors (email, name) VALUES ('a@x', 'Ann'), ('b@x', 'Bob')`,
      `INSERT INTO books (author_id, title) VALUES (1, 'One'), (1, 'Two'), (2, 'Three')`,
      `INSERT INTO tags VALUES (1, 'x'), (2, 'y')`,
      `SELECT * FROM authors WHERE email = 'a@x'`,
      `SELECT * FROM books WHERE author_id = 1`,
      `ANALYZE TABLE authors, books, tags`,
    ]);
    const report = await run(db.url);
    assert.deepEqual(problems(report), []);
    assert.deepEqual(report.skipped, []);
    for (const id of [
      'indexes.duplicate',
      'mysql.utf8mb3',
      'mysql.non-innodb-tables',
      'mysql.auto-increment',
    ]) {
      assert.equal(found(report, id)[0]?.severity, 'ok', `${id} ok`);
    }
  });

  it('reports tables without a primary key, duplicate, prefix and InnoDB-suffix redundant indexes', async () => {
    const db = await fresh([
      `CREATE TABLE no_pk (a INT, b INT)`,
      `CREATE TABLE dup (id INT PRIMARY KEY, a INT, KEY dup_a (a), KEY dup_b (a))`,
      `CREATE TABLE pre (id INT PRIMARY KEY, a INT, b INT, KEY pre_a (a), KEY pre_ab (a, b))`,
      `CREATE TABLE suf (id INT PRIMARY KEY, a INT, KEY suf_a (a), KEY suf_a_id (a, id))`,
    ]);
    const report = await run(db.url);
    const noPk = one(report, 'tables.no-primary-key', 'warning');
    assert.deepEqual(
      noPk.evidence.map((e) => e.split(' ')[0]),
      ['no_pk'],
    );
    const dup = one(report, 'indexes.duplicate', 'warning');
    const lines = dup.evidence.join('\n');
    assert.match(lines, /dup_b \(a\) on dup is covered by dup_a \(a\)/);
    assert.doesNotMatch(lines, /dup_a \(a\) on dup is covered/);
    assert.match(lines, /pre_a \(a\) on pre is covered by pre_ab \(a, b\)/);
    // InnoDB keeps the primary key in every secondary index: (a) is (a, id) already.
    assert.match(lines, /suf_a_id \(a, id\) on suf is covered by suf_a \(a\)/);
    assert.doesNotMatch(lines, /suf_a \(a\) on suf is covered/);
    assert.equal(dup.evidence.length, 3);
    assert.match(dup.fix ?? '', /^ALTER TABLE `dup` DROP INDEX `dup_b`, ALGORITHM=INPLACE, LOCK=NONE;$/m);
    assert.match(dup.fix ?? '', /^ALTER TABLE `suf` DROP INDEX `suf_a_id`, ALGORITHM=INPLACE, LOCK=NONE;$/m);
  });

  it('never suggests dropping the index a foreign key needs', async () => {
    const db = await fresh([
      `CREATE TABLE parent (id INT PRIMARY KEY)`,
      // fk_only is the only index on pid: InnoDB refuses to drop it (error 1553).
      `CREATE TABLE child (id INT PRIMARY KEY, pid INT, KEY fk_only (pid), CONSTRAINT child_parent FOREIGN KEY (pid) REFERENCES parent (id))`,
      // Two candidates: child2_p (pid) is covered by child2_px (pid, x), which keeps the foreign key.
      `CREATE TABLE child2 (id INT PRIMARY KEY, pid INT, x INT, KEY child2_p (pid), KEY child2_px (pid, x),
         CONSTRAINT child2_parent FOREIGN KEY (pid) REFERENCES parent (id))`,
      `ANALYZE TABLE parent, child, child2`,
    ]);
    const report = await run(db.url, { thresholds: { 'indexes.unusedMinBytes': 0 } });
    const dup = one(report, 'indexes.duplicate', 'warning');
    assert.deepEqual(dup.evidence, ['child2_p (pid) on child2 is covered by child2_px (pid, x)']);
    if (performanceSchema) {
      const unused = one(report, 'indexes.unused', 'warning');
      const text = unused.evidence.join('\n');
      assert.match(text, /child2_p on child2/);
      assert.doesNotMatch(text, /fk_only|child2_px/);
    }
    // Prove the premise: the server really refuses to drop the one index a foreign key needs.
    const conn = await mysql.createConnection(db.url);
    try {
      await assert.rejects(conn.query('ALTER TABLE child DROP INDEX fk_only'), (err: unknown) => {
        assert.equal(mysqlErrno(err), 1553);
        return true;
      });
    } finally {
      await conn.end();
    }
  });

  it('reports an index no query used since the server started', async () => {
    const db = await fresh([
      `CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT, KEY t_a (a), KEY t_b (b))`,
      `INSERT INTO t VALUES (1, 1, 1), (2, 2, 2), (3, 3, 3)`,
      `ANALYZE TABLE t`,
      `SELECT id FROM t FORCE INDEX (t_a) WHERE a = 2`,
    ]);
    const report = await run(db.url, { thresholds: { 'indexes.unusedMinBytes': 0 } });
    if (!performanceSchema) {
      // The harness runs MariaDB with performance_schema=ON; without it the check must say how to enable it.
      assert.ok(
        report.skipped.some(
          (s) => s.id === 'indexes.unused' && /performance_schema=ON/.test(s.enableWith ?? ''),
        ),
      );
      return;
    }
    const unused = one(report, 'indexes.unused', 'warning');
    assert.deepEqual(
      unused.evidence.map((e) => e.replace(/, [\d.]+ \w?B$/, '')),
      ['t_b on t: 0 scans'],
    );
    assert.equal(unused.fix, 'ALTER TABLE `t` DROP INDEX `t_b`, ALGORITHM=INPLACE, LOCK=NONE;');
    // With the default 10 MB floor these tiny indexes are not worth a finding.
    const quiet = await run(db.url);
    assert.equal(found(quiet, 'indexes.unused')[0]?.severity, 'ok');
  });

  it('reports MyISAM/Aria tables, utf8mb3 next to utf8mb4 and an AUTO_INCREMENT near its maximum', async () => {
    const db = await fresh([
      `CREATE TABLE legacy_isam (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=MyISAM`,
      `CREATE TABLE legacy_aria (id INT PRIMARY KEY) ENGINE=Aria`,
      `CREATE TABLE modern (id INT PRIMARY KEY, v VARCHAR(10)) CHARACTER SET utf8mb4`,
      `CREATE TABLE old_text (id INT PRIMARY KEY, v VARCHAR(10)) CHARACTER SET utf8mb3`,
      `CREATE TABLE tiny_ids (id TINYINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v INT)`,
      // 242 of 255 values used: 94.9 %.
      `INSERT INTO tiny_ids (id, v) VALUES (242, 1)`,
      `CREATE TABLE small_ids (id SMALLINT AUTO_INCREMENT PRIMARY KEY, v INT)`,
      `INSERT INTO small_ids (v) VALUES (1)`,
    ]);
    const report = await run(db.url);
    const engines = one(report, 'mysql.non-innodb-tables', 'warning');
    assert.deepEqual(engines.evidence.map((e) => e.replace(/, ~.*$/, '')).sort(), [
      'legacy_aria: Aria',
      'legacy_isam: MyISAM',
    ]);
    assert.match(engines.fix ?? '', /^ALTER TABLE `legacy_isam` ENGINE=InnoDB;$/m);

    const charset = one(report, 'mysql.utf8mb3', 'warning');
    assert.equal(charset.evidence.length, 1);
    assert.match(
      charset.evidence[0] ?? '',
      /^old_text: table default utf8(mb3)?_general_ci; utf8mb3 columns: v$/,
    );
    assert.match(
      charset.fix ?? '',
      /^ALTER TABLE `old_text` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;$/m,
    );

    const counter = one(report, 'mysql.auto-increment', 'warning');
    assert.equal(counter.evidence.length, 1);
    assert.match(
      counter.evidence[0] ?? '',
      /^tiny_ids\.id \(tinyint\(3\) unsigned\): next value 243 of 255 \(94\.9 %\)$/,
    );
    assert.match(
      counter.fix ?? '',
      /^ALTER TABLE `tiny_ids` MODIFY `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT;$/m,
    );

    // Raise the warning threshold above 95 %: nothing left to report.
    const relaxed = await run(db.url, { thresholds: { 'mysql.autoIncrementWarnPercent': 96 } });
    assert.equal(found(relaxed, 'mysql.auto-increment')[0]?.severity, 'ok');
  });

  it('reports statements that read without an index', async () => {
    const db = await fresh([
      `CREATE TABLE big (id INT PRIMARY KEY, b INT)`,
      `INSERT INTO big (id, b)
         WITH d (i) AS (SELECT 0 UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
           UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)
         SELECT a.i * 1000 + b.i * 100 + c.i * 10 + e.i, (a.i + b.i + c.i + e.i) % 7
         FROM d a, d b, d c, d e WHERE a.i < 3`,
    ]);
    const conn = await mysql.createConnection(db.url);
    for (let i = 0; i < 4; i++) await conn.query('SELECT COUNT(*) FROM big WHERE b = ?', [i]);
    await conn.end();
    const thresholds = { 'mysql.fullScanMinExecutions': 4, 'mysql.fullScanMinRowsExamined': 1000 };
    const report = await run(db.url, { thresholds });
    if (!performanceSchema) {
      assert.ok(report.skipped.some((s) => s.id === 'mysql.full-table-scans'));
      return;
    }
    const heavy = one(report, 'mysql.full-table-scans', 'warning');
    assert.equal(heavy.evidence.length, 1);
    assert.match(
      heavy.evidence[0] ?? '',
      /^4 of 4 runs without an index, ~3,000 rows examined per run: SELECT COUNT/,
    );
    assert.match(heavy.evidence[0] ?? '', /`big` WHERE `b` = \?/);
    // Under the default thresholds (1,000 runs, 10,000 rows) the same statement is only info.
    const light = await run(db.url);
    one(light, 'mysql.full-table-scans', 'info');
    assert.equal(problems(light).filter((f) => f.id === 'mysql.full-table-scans').length, 0);
  });

  it('reports idle-in-transaction, blocked and long-running sessions with KILL fixes', async () => {
    const db = await fresh([
      `CREATE TABLE acct (id INT PRIMARY KEY, v INT)`,
      `INSERT INTO acct VALUES (1, 0)`,
    ]);
    const holder = await mysql.createConnection(db.url);
    const waiter = await mysql.createConnection(db.url);
    const sleeper = await mysql.createConnection(db.url);
    const idOf = async (c: mysql.Connection): Promise<number> =>
      Number(((await c.query('SELECT CONNECTION_ID() AS id'))[0] as { id: number }[])[0]?.id);
    const [holderId, waiterId, sleeperId] = [await idOf(holder), await idOf(waiter), await idOf(sleeper)];
    try {
      await holder.query('START TRANSACTION');
      await holder.query('UPDATE acct SET v = v + 1 WHERE id = 1');
      await waiter.query('SET SESSION innodb_lock_wait_timeout = 30');
      const blocked = waiter.query('UPDATE acct SET v = v + 10 WHERE id = 1');
      // Handled from the start: the KILL QUERY below can reject it before that KILL's own reply.
      const sleeping = sleeper.query('SELECT SLEEP(30)').catch(() => undefined);
      await sleep(2500);

      const report = await run(db.url, {
        thresholds: {
          'activity.longRunningSeconds': 1,
          'activity.idleInTransactionSeconds': 1,
          'activity.lockWaitSeconds': 1,
        },
      });
      const idle = one(report, 'activity.idle-in-transaction', 'warning');
      assert.ok(
        idle.evidence.some((e) => e.startsWith(`session ${holderId} (`)),
        JSON.stringify(idle.evidence),
      );
      assert.match(idle.fix ?? '', new RegExp(`^KILL ${holderId};$`, 'm'));

      const waits = one(report, 'activity.lock-waits', 'warning');
      assert.match(waits.title, new RegExp(`blocked by session\\(s\\) .*\\b${holderId}\\b`));
      assert.ok(
        waits.evidence.some(
          (e) => e.startsWith(`session ${waiterId} waits`) && e.includes(`for ${holderId}:`),
        ),
        JSON.stringify(waits.evidence),
      );
      assert.match(waits.fix ?? '', new RegExp(`^KILL ${holderId};$`, 'm'));

      const slow = one(report, 'activity.long-running', 'warning');
      assert.ok(
        slow.evidence.some((e) => e.startsWith(`session ${sleeperId} (`) && e.includes('SELECT SLEEP(30)')),
        JSON.stringify(slow.evidence),
      );
      assert.match(slow.fix ?? '', new RegExp(`^KILL QUERY ${sleeperId};$`, 'm'));

      // Under the default thresholds (60 s, 5 s) a 2-second-old problem is not one yet.
      const calm = await run(db.url);
      for (const id of ['activity.idle-in-transaction', 'activity.long-running']) {
        assert.ok(
          !found(calm, id).some((f) =>
            f.evidence.some(
              (e) => e.startsWith(`session ${holderId} `) || e.startsWith(`session ${sleeperId} `),
            ),
          ),
          id,
        );
      }

      await holder.query('ROLLBACK');
      await blocked;
      await holder.query(`KILL QUERY ${sleeperId}`);
      await sleeping;
    } finally {
      await Promise.all([holder.end(), waiter.end(), sleeper.end()].map((p) => p.catch(() => undefined)));
    }
  });

  it('works under a least-privilege login and lists what it cannot read as skipped, with the GRANT', async () => {
    const db = await fresh([
      `CREATE TABLE t (id INT PRIMARY KEY, a INT, KEY t_a1 (a), KEY t_a2 (a))`,
      `CREATE TABLE no_pk (a INT)`,
    ]);
    const monitor = `dbw_mon_${db.name.slice(-10)}`;
    const bare = `dbw_bare_${db.name.slice(-10)}`;
    const admin = adminUrl('mysql') as string;
    await exec(admin, [
      `CREATE USER '${monitor}'@'%' IDENTIFIED BY 'mon-pw'`,
      `GRANT PROCESS ON *.* TO '${monitor}'@'%'`,
      `GRANT SELECT ON ${db.name}.* TO '${monitor}'@'%'`,
      `GRANT SELECT ON performance_schema.* TO '${monitor}'@'%'`,
      `CREATE USER '${bare}'@'%' IDENTIFIED BY 'bare-pw'`,
      `GRANT SELECT ON ${db.name}.* TO '${bare}'@'%'`,
    ]);
    try {
      const report = await run(withUser(db.url, monitor, 'mon-pw'));
      one(report, 'tables.no-primary-key', 'warning');
      one(report, 'indexes.duplicate', 'warning');
      assert.ok(found(report, 'activity.lock-waits').length > 0, 'sessions readable with PROCESS');
      const skipped = new Map(report.skipped.map((s) => [s.id, s]));
      assert.deepEqual([...skipped.keys()].sort(), ['indexes.unused', 'replication.lag']);
      assert.equal(
        skipped.get('replication.lag')?.enableWith,
        `GRANT SLAVE MONITOR ON *.* TO '${monitor}'@'%';`,
      );
      assert.equal(
        skipped.get('indexes.unused')?.enableWith,
        `GRANT SELECT ON mysql.innodb_index_stats TO '${monitor}'@'%';`,
      );
      assert.ok(!report.findings.some((f) => skipped.has(f.id)), 'skipped checks report no findings');

      const bareReport = await run(withUser(db.url, bare, 'bare-pw'));
      one(bareReport, 'tables.no-primary-key', 'warning');
      const bareSkipped = new Map(bareReport.skipped.map((s) => [s.id, s]));
      for (const id of ['activity.long-running', 'activity.idle-in-transaction', 'activity.lock-waits']) {
        assert.equal(bareSkipped.get(id)?.enableWith, `GRANT PROCESS ON *.* TO '${bare}'@'%';`, id);
      }
      if (performanceSchema) {
        assert.equal(
          bareSkipped.get('mysql.full-table-scans')?.enableWith,
          `GRANT SELECT ON performance_schema.* TO '${bare}'@'%';`,
        );
      }
    } finally {
      await exec(admin, [`DROP USER IF EXISTS '${monitor}'@'%'`, `DROP USER IF EXISTS '${bare}'@'%'`]);
    }
  });

  it('reads the server when the URL names no database, and skips the schema checks', async () => {
    const report = await run(adminUrl('mysql') as string);
    assert.ok(found(report, 'connections.usage').length > 0);
    assert.ok(found(report, 'mysql.binlog').length > 0);
    const noDb = report.skipped.find((s) => s.id === 'tables.no-primary-key');
    assert.match(noDb?.reason ?? '', /names no database/);
    assert.equal(found(report, 'tables.no-primary-key').length, 0);
  });

  it('runs read-only under a statement timeout and gives the connection back as it was', async () => {
    const db = await fresh([`CREATE TABLE t (id INT PRIMARY KEY)`]);
    const handle = await openSql({ url: db.url, pool: { max: 1 } });
    try {
      await withDoctorSession(handle.connection, 750, async (session) => {
        const { rows } = await session.query<{ t: number | string; ro: number }>(
          'SELECT @@SESSION.max_statement_time AS t, @@SESSION.tx_read_only AS ro',
        );
        assert.equal(Number(rows[0]?.t), 0.75);
        assert.equal(Number(rows[0]?.ro), 1);
        const started = Date.now();
        await assert.rejects(session.query('SELECT SLEEP(5)'), (err: unknown) => {
          assert.equal(mysqlErrno(err), 1969);
          return true;
        });
        assert.ok(Date.now() - started < 3000);
        await assert.rejects(session.query('INSERT INTO t VALUES (1)'), (err: unknown) => {
          assert.equal(mysqlErrno(err), 1792);
          return true;
        });
      });
      await doctor(handle, targetFromInput(db.url), { statementTimeoutMs: 2000 });
      const { rows } = await handle.query<{ t: number | string; ro: number }>(
        'SELECT @@SESSION.max_statement_time AS t, @@SESSION.tx_read_only AS ro',
      );
      assert.equal(Number(rows[0]?.t), 0);
      assert.equal(Number(rows[0]?.ro), 0);
      await handle.query('INSERT INTO t VALUES (2)');
    } finally {
      await handle.close();
    }
  });
});
