/**
 * The large PostgreSQL schema the inspect and doctor benchmarks share: `tableCount` tables
 * (id bigint primary key, a text, b int, c timestamptz, 20 rows, up to three secondary indexes
 * each), created in batches on two connections, then ANALYZEd.
 */
import pg from 'pg';

const batchSize = 250; // tables per transaction: keeps the lock table well within its default size

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function tableSql(i: number, secondaryIndexes: number): string {
  const t = `t${String(i).padStart(5, '0')}`;
  const indexes = [`(a)`, `(b, c)`, `(c desc)`].slice(0, secondaryIndexes);
  return [
    `create table ${t} (id bigint primary key, a text not null, b int, c timestamptz default now());`,
    ...indexes.map((cols, k) => `create index ${t}_i${k} on ${t} ${cols};`),
    `insert into ${t} select g, 'row ' || g, g % 7, now() - g * interval '1 hour' from generate_series(1, 20) g;`,
  ].join('\n');
}

/** The tables in batches of `batchSize` per transaction, on two connections (one per CPU here). */
export async function createSchema(url: string, tableCount: number, secondaryIndexes: number): Promise<void> {
  const started = Date.now();
  const batches: string[] = [];
  for (let first = 1; first <= tableCount; first += batchSize) {
    const last = Math.min(tableCount, first + batchSize - 1);
    const body = Array.from({ length: last - first + 1 }, (_, k) =>
      tableSql(first + k, secondaryIndexes),
    ).join('\n');
    batches.push(`begin;\n${body}\ncommit;`);
  }
  const worker = (): Promise<void> =>
    withClient(url, async (c) => {
      for (let sql = batches.shift(); sql; sql = batches.shift()) await c.query(sql);
    });
  await Promise.all([worker(), worker()]);
  await withClient(url, (c) => c.query('analyze'));
  const counts = await withClient(url, (c) =>
    c.query<{ tables: number; indexes: number }>(
      `select count(*) filter (where relkind = 'r')::int as tables, count(*) filter (where relkind = 'i')::int as indexes
       from pg_class where relnamespace = 'public'::regnamespace`,
    ),
  );
  const { tables, indexes } = counts.rows[0]!;
  console.log(
    `created ${tables} tables and ${indexes} indexes in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}
