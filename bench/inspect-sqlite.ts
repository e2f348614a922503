/**
 * `dbward inspect --json` on a SQLite file with 500 tables: each with two foreign keys, a UNIQUE
 * and a CHECK constraint, three indexes (one partial) and 50 rows; ANALYZEd.
 *
 * Target: dbward inspect's mean ≤ 0.5 s.
 * Competitors, same run: the sqlite3 shell's `.schema` (the DDL text) and `.tables` (names only).
 * Peak RSS is each process's own. The file lives in a temp dir, removed at the end.
 *
 *   node --import tsx bench/inspect-sqlite.ts
 */
import path from 'node:path';
import { dbwardBin, measure, pick, report, runBenchmark, runToJson, scratchDir } from './lib/bench-kit.js';
import { loadSqliteDriver } from '../src/engines/sqlite/sqlite-driver.js';

// The build of better-sqlite3 that is safe on this Node version (see sqlite-driver.ts).
const { Database } = await loadSqliteDriver();

const tableCount = 500;
const indexesPerTable = 3;
const targetSeconds = 0.5;
const work = scratchDir('dbward-bench-sqlite-');

const name = (i: number): string => `t${String(Math.max(1, i)).padStart(4, '0')}`;

function createDatabase(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = wal');
  db.transaction(() => {
    for (let i = 1; i <= tableCount; i++) {
      const t = name(i);
      db.exec(`
        create table ${t} (
          id integer primary key,
          parent_id integer references ${name(i - 1)}(id) on delete cascade,
          owner_id integer references ${name(i - 2)}(id) on delete set null,
          code text not null unique,
          name text not null collate nocase,
          qty integer not null default 0 check (qty >= 0),
          price real,
          created_at text not null default current_timestamp
        );
        create index ${t}_parent on ${t} (parent_id);
        create index ${t}_name_qty on ${t} (name, qty desc);
        create index ${t}_recent on ${t} (created_at) where qty > 0;`);
      db.prepare(
        `with recursive n(v) as (select 1 union all select v + 1 from n where v < 50)
         insert into ${t} (id, parent_id, owner_id, code, name, qty, price)
         select v, v, v, '${t}-' || v, 'item ' || v, v % 5, v * 1.5 from n`,
      ).run();
    }
  })();
  db.exec('analyze');
  db.close();
}

runBenchmark(
  async () => {
    const file = path.join(work.dir, 'bench.db');
    createDatabase(file);
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const dbward = [process.execPath, dbwardBin, 'inspect', '--json', '--url', `sqlite:${file}`];

    // Sanity: a fast but empty answer must not pass.
    const model = runToJson(dbward, env) as { tables: { indexes: unknown[]; foreignKeys: unknown[] }[] };
    const indexes = model.tables.reduce((n, t) => n + t.indexes.length, 0);
    const foreignKeys = model.tables.reduce((n, t) => n + t.foreignKeys.length, 0);
    console.log(
      `dbward reported ${model.tables.length} tables, ${indexes} indexes, ${foreignKeys} foreign keys`,
    );
    if (
      model.tables.length !== tableCount ||
      indexes < tableCount * indexesPerTable ||
      foreignKeys !== 2 * tableCount
    ) {
      throw new Error(
        `expected ${tableCount} tables, ≥ ${tableCount * indexesPerTable} indexes, ${2 * tableCount} foreign keys`,
      );
    }

    const results = measure(
      [
        { name: 'dbward inspect --json', argv: dbward },
        { name: 'sqlite3 .schema', argv: ['sqlite3', file, '.schema'] },
        { name: 'sqlite3 .tables', argv: ['sqlite3', file, '.tables'] },
      ],
      { warmup: 3, runs: 20, env },
    );
    const subject = pick(results, 'dbward inspect --json');
    report(results, {
      benchmark: 'inspect-sqlite',
      subject,
      reference: pick(results, 'sqlite3 .schema'),
      target: `dbward inspect ≤ ${targetSeconds} s (measured ${subject.mean.toFixed(3)} s)`,
      pass: subject.mean <= targetSeconds,
    });
  },
  () => work.cleanup(),
);
