/**
 * `dbward inspect --json` on a large PostgreSQL schema: 5,000 tables (id bigint primary key, a text,
 * b int, c timestamptz, 20 rows, two secondary indexes each), so 15,000 indexes, ANALYZEd.
 *
 * Target: dbward inspect's mean ≤ 1.5 s.
 * Competitors, same run, same server: `pg_dump --schema-only` (what users run to see a schema) and
 * psql's `\d+` (the catalog listing with sizes), both from the server's own PostgreSQL installation.
 * Peak RSS is the client process's; the server backends are not counted.
 *
 * The server is a throwaway one (test/harness/servers/postgres-server.ts), stopped and removed at
 * the end. Sizes: BENCH_PG_TABLES (5000), BENCH_PG_SECONDARY_INDEXES (2 per table, at most 3).
 *
 *   node --import tsx bench/inspect-postgres.ts
 */
import path from 'node:path';
import { findPostgresBin, start } from '../test/harness/servers/postgres-server.js';
import { isSkipped } from '../test/harness/servers/server-process.js';
import type { StartedServer } from '../test/harness/servers/server-process.js';
import { createSchema, withClient } from './lib/pg-schema-fixture.js';
import { dbwardBin, measure, pick, report, runBenchmark, runToJson } from './lib/bench-kit.js';

const tableCount = Number(process.env.BENCH_PG_TABLES ?? 5000);
const secondaryIndexes = Number(process.env.BENCH_PG_SECONDARY_INDEXES ?? 2);
const targetSeconds = 1.5;

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

    // Passwords only in the environment: DATABASE_URL for dbward, PGPASSWORD for the libpq tools.
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
    const dbward = [process.execPath, dbwardBin, 'inspect', '--json'];
    sanityCheck(dbward, env);

    const results = measure(
      [
        { name: 'dbward inspect --json', argv: dbward },
        { name: 'pg_dump --schema-only', argv: [path.join(pgBin, 'pg_dump'), '--schema-only'] },
        { name: 'psql \\d+', argv: [path.join(pgBin, 'psql'), '-X', '-q', '-c', '\\d+'] },
      ],
      { warmup: 2, runs: 10, env },
    );
    const subject = pick(results, 'dbward inspect --json');
    report(results, {
      benchmark: 'inspect-postgres',
      subject,
      reference: pick(results, 'pg_dump --schema-only'),
      target: `dbward inspect ≤ ${targetSeconds} s (measured ${subject.mean.toFixed(3)} s)`,
      pass: subject.mean <= targetSeconds,
    });
  },
  () => server?.stop(),
);

/** Run dbward once and count what its JSON reports, so a fast but empty answer cannot pass. */
function sanityCheck(argv: string[], env: NodeJS.ProcessEnv): void {
  const model = runToJson(argv, env) as { tables: { indexes: { primary: boolean }[] }[] };
  const indexes = model.tables.flatMap((t) => t.indexes);
  const primary = indexes.filter((i) => i.primary).length;
  console.log(
    `dbward reported ${model.tables.length} tables, ${indexes.length} indexes ` +
      `(${primary} primary keys + ${indexes.length - primary} secondary)`,
  );
  if (model.tables.length !== tableCount || indexes.length !== tableCount * (1 + secondaryIndexes)) {
    throw new Error(`expected ${tableCount} tables and ${tableCount * (1 + secondaryIndexes)} indexes`);
  }
}
