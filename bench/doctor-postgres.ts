/**
 * `dbward doctor --json` on a large PostgreSQL database: 5,000 tables (id bigint primary key, a
 * text, b int, c timestamptz, 20 rows, two secondary indexes each), so 15,000 indexes, ANALYZEd —
 * the same schema as bench/inspect-postgres.ts.
 *
 * Target: dbward doctor's mean ≤ 3 s, with a bounded number of catalog queries (never one per table).
 * Reference, same run, same server: psql running the catalog queries of PgHero's overview page
 * (connections, long-running queries, invalid indexes and constraints, unused indexes, sequences
 * near overflow, transaction-ID age, the index list its duplicate check reads) — PgHero itself is a
 * Rails app that cannot be installed here, so this is the SQL floor of its overview, without its
 * Ruby-side duplicate check and rendering. Peak RSS is the client process's.
 *
 * Sizes: BENCH_PG_TABLES (5000), BENCH_PG_SECONDARY_INDEXES (2 per table, at most 3).
 *
 *   node --import tsx bench/doctor-postgres.ts
 */
import path from 'node:path';
import { findPostgresBin, start } from '../test/harness/servers/postgres-server.js';
import { isSkipped } from '../test/harness/servers/server-process.js';
import type { StartedServer } from '../test/harness/servers/server-process.js';
import { createSchema, withClient } from './lib/pg-schema-fixture.js';
import { dbwardBin, measure, pick, report, runBenchmark, runToJson } from './lib/bench-kit.js';

const tableCount = Number(process.env.BENCH_PG_TABLES ?? 5000);
const secondaryIndexes = Number(process.env.BENCH_PG_SECONDARY_INDEXES ?? 2);
const targetSeconds = 3;

/** PgHero's overview checks, as SQL (from its source, abridged: see ../shared/research/monitoring.md §1.2). */
const pgheroOverviewSql = `
SELECT state, count(*) FROM pg_stat_activity GROUP BY 1;
SELECT pid, state, query FROM pg_stat_activity
 WHERE state <> 'idle' AND pid <> pg_backend_pid() AND datname = current_database()
   AND now() - coalesce(query_start, xact_start) > interval '60 seconds';
SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid;
SELECT conname FROM pg_constraint WHERE NOT convalidated;
SELECT s.relname, s.indexrelname, pg_relation_size(s.indexrelid) FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
 WHERE NOT i.indisunique AND s.idx_scan = 0 AND pg_relation_size(s.indexrelid) >= 10485760;
SELECT schemaname, sequencename, last_value, max_value FROM pg_sequences;
SELECT c.relname, greatest(age(c.relfrozenxid), age(t.relfrozenxid)) FROM pg_class c
  LEFT JOIN pg_class t ON c.reltoastrelid = t.oid WHERE c.relkind = 'r';
SELECT n.nspname, t.relname, ix.relname, i.indkey, i.indisunique, i.indisprimary, am.amname,
       pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid), pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class ix ON ix.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = ix.relam
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND i.indisvalid;
`;

let server: StartedServer | undefined;

runBenchmark(
  async () => {
    const bin = findPostgresBin();
    const result = await start();
    if (isSkipped(result)) throw new Error(result.skip);
    server = result;
    const pgBin = path.dirname(bin!.postgres);
    console.log(`${server.version} on port ${server.port}; binaries in ${pgBin}`);

    const url = new URL(server.adminUrl);
    await withClient(url.href, (c) => c.query('create database bench'));
    url.pathname = '/bench';
    await createSchema(url.href, tableCount, secondaryIndexes);

    // Passwords only in the environment: DATABASE_URL for dbward, PGPASSWORD for psql.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: url.href,
      PGHOST: url.hostname,
      PGPORT: url.port,
      PGUSER: decodeURIComponent(url.username),
      PGPASSWORD: decodeURIComponent(url.password),
      PGDATABASE: 'bench',
    };
    const dbward = [process.execPath, dbwardBin, 'doctor', '--json', '--fail-on', 'never'];
    sanityCheck(dbward, env);

    const results = measure(
      [
        { name: 'dbward doctor --json', argv: dbward },
        {
          name: 'psql: PgHero overview SQL',
          argv: [path.join(pgBin, 'psql'), '-X', '-q', '-o', '/dev/null', '-c', pgheroOverviewSql],
        },
      ],
      { warmup: 2, runs: 10, env },
    );
    const subject = pick(results, 'dbward doctor --json');
    report(results, {
      benchmark: 'doctor-postgres',
      subject,
      reference: pick(results, 'psql: PgHero overview SQL'),
      target: `dbward doctor ≤ ${targetSeconds} s (measured ${subject.mean.toFixed(3)} s)`,
      pass: subject.mean <= targetSeconds,
    });
  },
  () => server?.stop(),
);

/** Run doctor once and check it judged the whole schema, so a fast but empty answer cannot pass. */
function sanityCheck(argv: string[], env: NodeJS.ProcessEnv): void {
  const [report] = runToJson(argv, env) as {
    findings: { id: string; severity: string; title: string }[];
  }[];
  if (!report) throw new Error('doctor printed no report');
  const ids = new Set(report.findings.map((f) => f.id));
  for (const id of ['indexes.duplicate', 'indexes.foreign-key-without-index', 'tables.no-primary-key']) {
    if (!ids.has(id)) throw new Error(`doctor did not run ${id}`);
  }
  const problems = report.findings.filter((f) => f.severity === 'warning' || f.severity === 'critical');
  console.log(
    `dbward doctor ran ${report.findings.length} checks; warnings/criticals: ${
      problems.map((f) => `${f.id} (${f.title})`).join('; ') || 'none'
    }`,
  );
}
