/**
 * The MySQL doctor rules from hand-written facts, through judge() with every rule doctor has
 * (engine-neutral ones included), so what the collector fills is judged exactly as in a real run.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DoctorFacts, IndexFact } from '../../src/doctor/facts.js';
import type { MysqlFacts } from '../../src/doctor/facts/mysql-facts.js';
import type { Finding } from '../../src/doctor/finding.js';
import { formatBytes } from '../../src/doctor/rule.js';
import { allRules, judge } from '../../src/doctor/run-doctor.js';
import { resolveThresholds } from '../../src/doctor/thresholds.js';
import { endOfLifeFor, mysqlDoctorFactsRole } from '../../src/engines/mysql/mysql-doctor-facts.js';

const healthyMysql = (): MysqlFacts => ({
  database: 'app',
  status: {
    connections: 50_000,
    abortedConnects: 12,
    questions: 2_000_000,
    slowQueries: 40,
    bufferPoolReadRequests: 90_000_000,
    bufferPoolReads: 120_000,
    createdTmpTables: 80_000,
    createdTmpDiskTables: 900,
  },
  settings: {
    slowQueryLog: true,
    longQueryTimeSeconds: 1,
    binlog: true,
    performanceSchema: true,
    bufferPoolBytes: 8e9,
  },
  innodbBytes: 2e9,
  fullScans: [],
  nonInnodbTables: [],
  charsets: {
    databaseCharset: 'utf8mb4',
    databaseCollation: 'utf8mb4_unicode_ci',
    utf8mb4Tables: 12,
    utf8mb4Columns: 40,
    utf8mb3Tables: [],
  },
  autoIncrement: [
    {
      table: 'orders',
      column: 'id',
      dataType: 'int',
      columnType: 'int(10) unsigned',
      unsigned: true,
      nullable: false,
      nextValue: 1_000_001,
      maxValue: 4294967295,
    },
  ],
});

const index = (table: string, name: string, columns: string[], more: Partial<IndexFact> = {}): IndexFact => ({
  table,
  name,
  columns,
  method: 'BTREE',
  unique: false,
  primary: false,
  predicate: null,
  valid: true,
  scans: 100,
  sizeBytes: 50_000_000,
  constraint: null,
  ...more,
});

function facts(mysql: Partial<MysqlFacts> = {}, more: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    server: {
      engine: 'mysql',
      version: '10.11.19-MariaDB',
      flavor: 'mariadb',
      uptimeSeconds: 30 * 86_400,
      endOfLife: '2028-02-16',
    },
    connections: { max: 151, current: 12 },
    activity: { longRunning: [], idleInTransaction: [], blocked: [] },
    tables: [{ name: 'orders', hasPrimaryKey: true, rows: 1000, totalBytes: 1e6 }],
    indexes: [
      index('orders', 'PRIMARY', ['id'], { unique: true, primary: true, constraint: 'PRIMARY' }),
      index('orders', 'orders_customer', ['customer_id'], {
        implicitSuffix: ['id'],
        constraint: 'orders_customer_fk',
      }),
    ],
    foreignKeys: [
      { table: 'orders', name: 'orders_customer_fk', columns: ['customer_id'], referencedTable: 'customers' },
    ],
    statsSince: '2026-01-01T00:00:00.000Z',
    replication: { role: 'standalone', replicas: 0 },
    mysql: { ...healthyMysql(), ...mysql },
    skipped: [],
    ...more,
  };
}

function run(f: DoctorFacts, thresholds: Record<string, number> = {}): Finding[] {
  return judge(f, allRules, { thresholds: resolveThresholds(thresholds), fixes: mysqlDoctorFactsRole.fixes })
    .findings;
}

const of = (findings: Finding[], id: string): Finding[] => findings.filter((f) => f.id === id);
const problems = (findings: Finding[]): Finding[] =>
  findings.filter((f) => f.severity === 'warning' || f.severity === 'critical');

function only(findings: Finding[], id: string): Finding {
  const list = of(findings, id);
  assert.equal(list.length, 1, `${id}: ${JSON.stringify(list)}`);
  return list[0] as Finding;
}

const mysqlIds = [
  'mysql.aborted-connects',
  'mysql.slow-query-log',
  'mysql.slow-queries',
  'mysql.buffer-pool-hit-rate',
  'mysql.buffer-pool-size',
  'mysql.tmp-disk-tables',
  'mysql.full-table-scans',
  'mysql.non-innodb-tables',
  'mysql.utf8mb3',
  'mysql.auto-increment',
  'mysql.binlog',
];

describe('mysql doctor rules', () => {
  it('a healthy server passes every check', () => {
    const findings = run(facts());
    assert.deepEqual(problems(findings), []);
    for (const id of mysqlIds) assert.equal(only(findings, id).severity, 'ok', id);
  });

  it('a fresh server with small counters, binlog and slow log off gets info only', () => {
    const findings = run(
      facts({
        status: {
          connections: 20,
          abortedConnects: 5,
          questions: 300,
          slowQueries: 100,
          bufferPoolReadRequests: 5_000,
          bufferPoolReads: 2_000,
          createdTmpTables: 40,
          createdTmpDiskTables: 40,
        },
        settings: {
          slowQueryLog: false,
          longQueryTimeSeconds: 10,
          binlog: false,
          performanceSchema: true,
          bufferPoolBytes: 134_217_728,
        },
        innodbBytes: 0,
        autoIncrement: [],
      }),
    );
    assert.deepEqual(problems(findings), []);
    assert.equal(only(findings, 'mysql.binlog').severity, 'info');
    const slowLog = only(findings, 'mysql.slow-query-log');
    assert.equal(slowLog.severity, 'info');
    assert.match(slowLog.fix ?? '', /SET GLOBAL slow_query_log = ON;\nSET GLOBAL long_query_time = 1;/);
  });

  it('aborted connects above 3 % of enough attempts are a warning', () => {
    const status = { ...healthyMysql().status!, connections: 10_000, abortedConnects: 500 };
    const f = only(run(facts({ status })), 'mysql.aborted-connects');
    assert.equal(f.severity, 'warning');
    assert.equal(f.title, '5.0 % of connection attempts failed');
    assert.deepEqual(f.evidence, ['Aborted_connects: 500', 'Connections: 10,000']);
    const few = { ...status, connections: 999, abortedConnects: 500 };
    assert.equal(only(run(facts({ status: few })), 'mysql.aborted-connects').severity, 'ok');
    assert.equal(
      only(run(facts({ status }), { 'mysql.abortedConnectsPercent': 6 }), 'mysql.aborted-connects').severity,
      'ok',
    );
  });

  it('slow statements above 5 % of enough questions are a warning', () => {
    const status = { ...healthyMysql().status!, questions: 20_000, slowQueries: 1_500 };
    const f = only(run(facts({ status })), 'mysql.slow-queries');
    assert.equal(f.severity, 'warning');
    assert.match(f.title, /^7\.5 % of statements took longer than long_query_time \(1 s\)$/);
    const few = { ...status, questions: 9_999 };
    assert.equal(only(run(facts({ status: few })), 'mysql.slow-queries').severity, 'ok');
  });

  it('a buffer pool hit rate under 90 % after 100,000 reads is a warning', () => {
    const status = { ...healthyMysql().status!, bufferPoolReadRequests: 200_000, bufferPoolReads: 40_000 };
    const f = only(run(facts({ status })), 'mysql.buffer-pool-hit-rate');
    assert.equal(f.severity, 'warning');
    assert.equal(f.title, 'Only 80.0 % of InnoDB reads are served from the buffer pool');
    const fresh = { ...status, bufferPoolReadRequests: 99_999 };
    assert.equal(only(run(facts({ status: fresh })), 'mysql.buffer-pool-hit-rate').severity, 'ok');
  });

  it('data larger than the buffer pool is info', () => {
    const f = only(run(facts({ innodbBytes: 20e9 })), 'mysql.buffer-pool-size');
    assert.equal(f.severity, 'info');
    assert.ok(
      f.title.endsWith(`(${formatBytes(20e9)}) is larger than the buffer pool (${formatBytes(8e9)})`),
      f.title,
    );
  });

  it('temporary tables on disk above 25 % of enough tables are a warning', () => {
    const status = { ...healthyMysql().status!, createdTmpTables: 20_000, createdTmpDiskTables: 6_000 };
    assert.equal(only(run(facts({ status })), 'mysql.tmp-disk-tables').severity, 'warning');
    const few = { ...status, createdTmpTables: 9_000, createdTmpDiskTables: 9_000 };
    assert.equal(only(run(facts({ status: few })), 'mysql.tmp-disk-tables').severity, 'ok');
  });

  it('frequent full scans of big tables are a warning, the rest info', () => {
    const findings = run(
      facts({
        fullScans: [
          {
            statement: 'SELECT * FROM `orders` WHERE `note` = ?',
            calls: 5_000,
            noIndexUsed: 5_000,
            noGoodIndexUsed: 0,
            rowsExamined: 5e8,
            rowsSent: 5_000,
          },
          {
            statement: 'SELECT * FROM `countries` WHERE `name` = ?',
            calls: 90_000,
            noIndexUsed: 90_000,
            noGoodIndexUsed: 0,
            rowsExamined: 90_000 * 250,
            rowsSent: 90_000,
          },
        ],
      }),
    );
    const list = of(findings, 'mysql.full-table-scans');
    assert.deepEqual(
      list.map((f) => f.severity),
      ['warning', 'info'],
    );
    assert.deepEqual(list[0]?.evidence, [
      '5,000 of 5,000 runs without an index, ~100,000 rows examined per run: SELECT * FROM `orders` WHERE `note` = ?',
    ]);
    assert.match(list[1]?.evidence[0] ?? '', /countries/);
    assert.match(list[0]?.fix ?? '', /ADD INDEX .* ALGORITHM=INPLACE, LOCK=NONE;/);
  });

  it('MyISAM and Aria tables are a warning, other engines info', () => {
    const findings = run(
      facts({
        nonInnodbTables: [
          { table: 'legacy', engine: 'MyISAM', rows: 10 },
          { table: 'cache', engine: 'MEMORY', rows: 0 },
        ],
      }),
    );
    const list = of(findings, 'mysql.non-innodb-tables');
    assert.deepEqual(
      list.map((f) => [f.severity, f.evidence]),
      [
        ['warning', ['legacy: MyISAM, ~10 rows']],
        ['info', ['cache: MEMORY, ~0 rows']],
      ],
    );
    assert.match(list[0]?.fix ?? '', /^ALTER TABLE `legacy` ENGINE=InnoDB;$/m);
  });

  it('utf8mb3 next to utf8mb4 is a warning; a database all in utf8mb3 is info', () => {
    const legacy = [{ table: 'old', tableCollation: 'utf8mb3_general_ci', columns: ['name'] }];
    const mixed = only(
      run(facts({ charsets: { ...healthyMysql().charsets!, utf8mb3Tables: legacy } })),
      'mysql.utf8mb3',
    );
    assert.equal(mixed.severity, 'warning');
    assert.deepEqual(mixed.evidence, ['old: table default utf8mb3_general_ci; utf8mb3 columns: name']);
    assert.match(
      mixed.fix ?? '',
      /^ALTER TABLE `old` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;$/m,
    );
    const allOld = only(
      run(
        facts({
          charsets: {
            databaseCharset: 'utf8mb3',
            databaseCollation: 'utf8mb3_general_ci',
            utf8mb4Tables: 0,
            utf8mb4Columns: 0,
            utf8mb3Tables: legacy,
          },
        }),
      ),
      'mysql.utf8mb3',
    );
    assert.equal(allOld.severity, 'info');
    // Without a utf8mb4 default to follow, the table keeps its own collation rules.
    assert.match(allOld.fix ?? '', /COLLATE utf8mb4_general_ci;/);
  });

  it('AUTO_INCREMENT past 90 % of the type is a warning, past 98 % critical', () => {
    const column = {
      table: 'tiny',
      column: 'id',
      dataType: 'tinyint',
      columnType: 'tinyint(3) unsigned',
      unsigned: true,
      nullable: false,
      nextValue: 243,
      maxValue: 255,
    };
    const warn = only(run(facts({ autoIncrement: [column] })), 'mysql.auto-increment');
    assert.equal(warn.severity, 'warning');
    assert.deepEqual(warn.evidence, ['tiny.id (tinyint(3) unsigned): next value 243 of 255 (94.9 %)']);
    assert.match(
      warn.fix ?? '',
      /^ALTER TABLE `tiny` MODIFY `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT;$/m,
    );
    const signed = {
      ...column,
      table: 'small',
      dataType: 'smallint',
      columnType: 'smallint(6)',
      unsigned: false,
    };
    const crit = only(
      run(facts({ autoIncrement: [{ ...signed, nextValue: 32_700, maxValue: 32_767 }] })),
      'mysql.auto-increment',
    );
    assert.equal(crit.severity, 'critical');
    assert.match(crit.fix ?? '', /MODIFY `id` BIGINT NOT NULL AUTO_INCREMENT;/);
    assert.equal(
      only(run(facts({ autoIncrement: [{ ...column, nextValue: 200 }] })), 'mysql.auto-increment').severity,
      'ok',
    );
  });

  it('rules whose facts were not collected do not run', () => {
    const findings = run(facts({}, { mysql: { database: 'app' } }));
    for (const id of mysqlIds) assert.deepEqual(of(findings, id), [], id);
  });

  it('skipped checks are reported as skipped, not judged', () => {
    const f = facts(
      {},
      {
        skipped: [{ id: 'indexes.unused', reason: 'no privilege', enableWith: 'GRANT …' }],
      },
    );
    const result = judge(f, allRules, { thresholds: resolveThresholds(), fixes: mysqlDoctorFactsRole.fixes });
    assert.deepEqual(result.skipped, [
      { id: 'indexes.unused', reason: 'no privilege', enableWith: 'GRANT …' },
    ]);
    assert.deepEqual(of(result.findings, 'indexes.unused'), []);
  });

  it('fixes are MySQL statements with quoted names and online DDL', () => {
    const { fixes } = mysqlDoctorFactsRole;
    assert.equal(
      fixes.dropIndex(index('we`ird', 'i`x', ['a'])),
      'ALTER TABLE `we``ird` DROP INDEX `i``x`, ALGORITHM=INPLACE, LOCK=NONE;',
    );
    assert.equal(
      fixes.createIndexFor({ table: 'orders', name: 'fk', columns: ['a', 'b'], referencedTable: 'x' }),
      'ALTER TABLE `orders` ADD INDEX (`a`, `b`), ALGORITHM=INPLACE, LOCK=NONE;',
    );
    const s = { id: 42, user: 'app', application: null, client: null, seconds: 1, query: null };
    assert.equal(fixes.cancel(s), 'KILL QUERY 42;');
    assert.equal(fixes.terminate(s), 'KILL 42;');
  });

  it('the FK-backing index (constraint set) is neither duplicate nor unused', () => {
    const findings = run(
      facts(
        {},
        {
          indexes: [
            index('orders', 'PRIMARY', ['id'], { unique: true, primary: true, constraint: 'PRIMARY' }),
            index('orders', 'fk_idx', ['customer_id'], {
              scans: 0,
              implicitSuffix: ['id'],
              constraint: 'orders_customer_fk',
            }),
            index('orders', 'fk_idx2', ['customer_id'], { scans: 0, implicitSuffix: ['id'] }),
          ],
        },
      ),
    );
    assert.deepEqual(only(findings, 'indexes.duplicate').evidence, [
      'fk_idx2 (customer_id) on orders is covered by fk_idx (customer_id)',
    ]);
    assert.deepEqual(only(findings, 'indexes.unused').evidence, [
      `fk_idx2 on orders: 0 scans, ${formatBytes(50_000_000)}`,
    ]);
  });

  it('InnoDB implicit primary-key suffix: (a, id) is redundant next to (a)', () => {
    const findings = run(
      facts(
        {},
        {
          indexes: [
            index('t', 'PRIMARY', ['id'], { unique: true, primary: true, constraint: 'PRIMARY' }),
            index('t', 't_a_id', ['a', 'id'], { implicitSuffix: ['id'] }),
            index('t', 't_b', ['b'], { implicitSuffix: ['id'] }),
            index('t', 't_b_id', ['b', 'id'], { implicitSuffix: ['id'] }),
            index('t', 'x_a', ['a'], { implicitSuffix: ['id'] }),
          ],
        },
      ),
    );
    const evidence = only(findings, 'indexes.duplicate').evidence;
    // Whatever the names, the shorter declaration of the same key is kept.
    assert.deepEqual(evidence, [
      't_a_id (a, id) on t is covered by x_a (a)',
      't_b_id (b, id) on t is covered by t_b (b)',
    ]);
  });

  it('InnoDB implicit primary-key suffix: only one of (a) and (a, id) is reported', () => {
    const findings = run(
      facts(
        {},
        {
          indexes: [
            index('t', 'PRIMARY', ['id'], { unique: true, primary: true, constraint: 'PRIMARY' }),
            index('t', 't_b', ['b'], { implicitSuffix: ['id'] }),
            index('t', 't_b_id', ['b', 'id'], { implicitSuffix: ['id'] }),
          ],
        },
      ),
    );
    assert.deepEqual(only(findings, 'indexes.duplicate').evidence, [
      't_b_id (b, id) on t is covered by t_b (b)',
    ]);
  });

  it('knows the end of life of MariaDB and MySQL releases', () => {
    assert.equal(endOfLifeFor('10.11.19-MariaDB-0+deb12u1', 'mariadb'), '2028-02-16');
    assert.equal(endOfLifeFor('10.6.21-MariaDB', 'mariadb'), '2026-07-06');
    assert.equal(endOfLifeFor('11.4.5-MariaDB', 'mariadb'), '2029-05-29');
    assert.equal(endOfLifeFor('10.5.27-MariaDB', 'mariadb'), '2025-06-24');
    assert.equal(endOfLifeFor('8.0.36', 'mysql'), '2026-04-30');
    assert.equal(endOfLifeFor('8.4.3', 'mysql'), '2032-04-30');
    assert.equal(endOfLifeFor('9.1.0', 'mysql'), null);
    assert.equal(endOfLifeFor('garbage', 'mysql'), null);
    const old = only(
      run(
        facts(
          {},
          { server: { engine: 'mysql', version: '5.7.44', flavor: 'mysql', endOfLife: '2023-10-31' } },
        ),
      ),
      'server.version',
    );
    assert.equal(old.severity, 'warning');
  });
});
