/**
 * What the backup benchmarks share: a generated database of realistic rows, made server-side so
 * 1.6 GB takes minutes, not hours; and a timing loop that alternates the commands round by round.
 *
 * The data: `customers` (id, email, name, country, created_at, balance) and `orders` (id,
 * customer_id, status, amount, quantity, created_at, updated_at, note, token), twenty orders per
 * customer. `note` is three random slices of a text of English-like words (compressible as real
 * prose is), `token` an md5 of a random number (hard to compress, like ids and hashes). Secondary
 * indexes — orders(customer_id), orders(created_at), orders(status, created_at),
 * customers(email) — are built after the load, then the tables are vacuumed / analyzed, so the
 * timed runs find the data in its steady state (hint bits set, statistics present).
 *
 * Timing: `measureRounds` runs every command once per round through hyperfine (`--runs 1`, with
 * each command's own `--prepare`), so the sides alternate A B A B … and a machine that slows down
 * mid-run slows both. Each command runs under `/usr/bin/time -f %M` (the max RSS Linux reports for
 * the waited-for process, which includes its waited-for children: pg_dump, zstd, gzip); a node
 * command also runs with a preload that records node's own `process.resourceUsage().maxRSS`, so the
 * dbward process itself is measured apart from the tools it spawns.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { formatKb, requireProgram } from './bench-kit.js';

/** Target size of the generated database, in GB (1e9 bytes, data and indexes). */
export const fixtureGb = Number(process.env.BENCH_BACKUP_GB ?? 1.6);

/** On-disk bytes per order (with its share of customers and of the indexes), measured at 0.1 GB. */
const bytesPerOrder = { postgres: 300, mariadb: 330 };
const customersPerOrder = 1 / 20;
const chunkRows = 250_000;

export function orderCount(engine: 'postgres' | 'mariadb', gb = fixtureGb): number {
  return Math.max(chunkRows, Math.round((gb * 1e9) / bytesPerOrder[engine]));
}

/** A deterministic "prose" of ~6,000 characters from a few hundred words (the notes' source). */
export function proseText(): string {
  const words = (
    'account address after again against agent almost already amount another answer around ' +
    'article attention available balance basket before behind below benefit better between ' +
    'billing bottom branch budget business button cancel capital careful carrier catalog center ' +
    'change charge check choice client closed coffee color common company complete contact ' +
    'contract corner correct country coupon course credit current customer damage delay delivery ' +
    'deposit detail device direct discount dispatch double during early easily effect either email ' +
    'energy enough entire evening exact example express extra factory family feature figure final ' +
    'finance follow forward freight friday garden general gift glass group guarantee handle heavy ' +
    'holiday import include invoice issue item kitchen label large later leather letter light ' +
    'limit linen little local lunch machine manual market matter medium member message method ' +
    'middle minute mobile monday month morning museum native nearly network normal notice number ' +
    'office online option order origin outside package paper parcel partner payment people period ' +
    'person phone picture pickup plastic please pocket policy portal postal premium price printed ' +
    'private product profile promise public purchase quality quarter question quick receipt record ' +
    'refund region regular release remote repair replace report request return review rubber ' +
    'saturday schedule second secure select service session shipping short signal silver simple ' +
    'single small social special standard station steel stock storage street strong summer sunday ' +
    'supply support surface system table tax thank thursday ticket today total tracking transfer ' +
    'travel tuesday update urgent usual value vendor version voucher waiting warehouse weekend ' +
    'weight wednesday window winter wooden yellow'
  ).split(' ');
  let seed = 12345;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const out: string[] = [];
  let length = 0;
  while (length < 6000) {
    const word = words[Math.floor(next() * words.length)]!;
    const sentenceEnd = next() < 0.08;
    out.push(sentenceEnd ? `${word}.` : word);
    length += word.length + 1;
  }
  return out.join(' ');
}

const statuses = ['new', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'];
const countries = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'PL', 'IT', 'ES', 'JP', 'BR', 'CA'];

/** Run `work` on `workers` connections pulling from one queue. */
async function inParallel<T>(items: T[], workers: number, work: (item: T, worker: number) => Promise<void>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item, w);
    }),
  );
}

function chunks(total: number): [number, number][] {
  const out: [number, number][] = [];
  for (let first = 1; first <= total; first += chunkRows)
    out.push([first, Math.min(total, first + chunkRows - 1)]);
  return out;
}

const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

export interface Generated {
  orders: number;
  customers: number;
  /** The database's size on disk (data and indexes), bytes. */
  bytes: number;
}

/** Fill the (empty) PostgreSQL database at `url`; two connections, one per CPU here. */
export async function generatePostgres(url: string, gb = fixtureGb): Promise<Generated> {
  const started = Date.now();
  const orders = orderCount('postgres', gb);
  const customers = Math.ceil(orders * customersPerOrder);
  const prose = proseText();
  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`set maintenance_work_mem = '256MB'`);
    await c.query(`set synchronous_commit = off`);
    return c;
  };
  const clients = await Promise.all([connect(), connect()]);
  try {
    const [a] = clients as [pg.Client, pg.Client];
    await a.query(`
      create table customers (id bigint primary key, email text not null, name text not null,
        country char(2) not null, created_at timestamptz not null, balance numeric(12,2) not null);
      create table orders (id bigint not null, customer_id bigint not null, status text not null,
        amount numeric(12,2) not null, quantity int not null, created_at timestamptz not null,
        updated_at timestamptz, note text, token text not null);`);
    const pick = (list: string[]): string =>
      `(array[${list.map((s) => `'${s}'`).join(',')}])[1 + floor(random() * ${list.length})::int]`;
    const slice = `substr($1, 1 + floor(random() * ${prose.length - 200})::int, 15 + floor(random() * 40)::int)`;
    const work = [
      ...chunks(customers).map(([first, last]) => ({
        sql: `insert into customers
          select g, 'user' || g || '.' || substr(md5(g::text), 1, 6) || '@example.' || ${pick(['com', 'org', 'net', 'de'])},
            initcap(${slice}), ${pick(countries)}, timestamptz '2018-01-01' + random() * interval '6 years',
            round((random() * 5000)::numeric, 2)
          from generate_series(${first}, ${last}) g`,
      })),
      ...chunks(orders).map(([first, last]) => ({
        sql: `insert into orders
          select g, 1 + floor(random() * ${customers})::bigint, ${pick(statuses)},
            round((random() * 1000)::numeric, 2), 1 + floor(random() * 10)::int, ts,
            case when random() < 0.9 then ts + random() * interval '30 days' end,
            ${slice} || ' ' || ${slice} || ' ' || ${slice}, md5(random()::text)
          from (select g, timestamptz '2020-01-01' + random() * interval '5 years' as ts
                from generate_series(${first}, ${last}) g) s`,
      })),
    ];
    await inParallel(work, clients.length, async (w, i) => {
      await clients[i]!.query(w.sql, [prose]);
    });
    console.log(`loaded ${orders} orders and ${customers} customers in ${seconds(started)}`);
    await inParallel(
      [
        'alter table orders add primary key (id)',
        'create index orders_customer_id on orders (customer_id)',
        'create index orders_created_at on orders (created_at)',
        'create index orders_status_created on orders (status, created_at)',
        'create unique index customers_email on customers (email)',
      ],
      clients.length,
      async (sql, i) => void (await clients[i]!.query(sql)),
    );
    await inParallel(
      ['vacuum (freeze, analyze) orders', 'vacuum (freeze, analyze) customers'],
      2,
      async (sql, i) => {
        await clients[i]!.query(sql);
      },
    );
    await a.query('checkpoint');
    const size = await a.query<{ bytes: string }>(
      'select pg_database_size(current_database())::text as bytes',
    );
    const bytes = Number(size.rows[0]!.bytes);
    console.log(
      `indexed and vacuumed in ${seconds(started)} total; database size ${(bytes / 1e9).toFixed(2)} GB`,
    );
    return { orders, customers, bytes };
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
}

/** Fill the (empty) MariaDB database `database` through the admin URL; uses the SEQUENCE engine. */
export async function generateMariadb(
  adminUrl: string,
  database: string,
  gb = fixtureGb,
): Promise<Generated> {
  const started = Date.now();
  const orders = orderCount('mariadb', gb);
  const customers = Math.ceil(orders * customersPerOrder);
  const prose = proseText();
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const connect = () => mysql.createConnection({ uri: url.href, multipleStatements: true });
  const conns = await Promise.all([connect(), connect()]);
  try {
    const [a] = conns;
    await a!.query(`
      create table customers (id bigint primary key, email varchar(255) not null, name varchar(255) not null,
        country char(2) not null, created_at datetime(6) not null, balance decimal(12,2) not null) engine=InnoDB;
      create table orders (id bigint primary key, customer_id bigint not null, status varchar(16) not null,
        amount decimal(12,2) not null, quantity int not null, created_at datetime(6) not null,
        updated_at datetime(6), note text, token char(32) not null) engine=InnoDB;`);
    const pick = (list: string[]): string =>
      `elt(1 + floor(rand() * ${list.length}), ${list.map((s) => `'${s}'`).join(', ')})`;
    const slice = `substr(@prose, 1 + floor(rand() * ${prose.length - 200}), 15 + floor(rand() * 40))`;
    await Promise.all(conns.map((c) => c.query('set @prose = ?', [prose])));
    const work = [
      ...chunks(customers).map(([first, last]) => ({
        sql: `insert into customers
          select seq, concat('user', seq, '.', substr(md5(seq), 1, 6), '@example.', ${pick(['com', 'org', 'net', 'de'])}),
            ${slice}, ${pick(countries)}, timestamp '2018-01-01 00:00:00' + interval floor(rand() * 189216000000000) microsecond,
            round(rand() * 5000, 2)
          from seq_${first}_to_${last}`,
      })),
      ...chunks(orders).map(([first, last]) => ({
        sql: `insert into orders
          select seq, 1 + floor(rand() * ${customers}), ${pick(statuses)}, round(rand() * 1000, 2),
            1 + floor(rand() * 10), ts, if(rand() < 0.9, ts + interval floor(rand() * 2592000000000) microsecond, null),
            concat_ws(' ', ${slice}, ${slice}, ${slice}), md5(rand())
          from (select seq, timestamp '2020-01-01 00:00:00' + interval floor(rand() * 157680000000000) microsecond as ts
                from seq_${first}_to_${last}) s`,
      })),
    ];
    await inParallel(work, conns.length, async (w, i) => void (await conns[i]!.query(w.sql)));
    console.log(`loaded ${orders} orders and ${customers} customers in ${seconds(started)}`);
    await inParallel(
      [
        `alter table orders add index orders_customer_id (customer_id), add index orders_created_at (created_at),
           add index orders_status_created (status, created_at)`,
        'alter table customers add unique index customers_email (email)',
      ],
      conns.length,
      async (sql, i) => void (await conns[i]!.query(sql)),
    );
    await a!.query('analyze table orders, customers');
    const [rows] = await a!.query(
      `select sum(data_length + index_length) as bytes from information_schema.tables where table_schema = ?`,
      [database],
    );
    const bytes = Number((rows as { bytes: string }[])[0]!.bytes);
    console.log(
      `indexed and analyzed in ${seconds(started)} total; database size ${(bytes / 1e9).toFixed(2)} GB`,
    );
    return { orders, customers, bytes };
  } finally {
    await Promise.all(conns.map((c) => c.end()));
  }
}

// ---------------------------------------------------------------------------------------------
// Timing

export interface TimedCommand {
  name: string;
  argv: string[];
  /** Run (untimed) before every run of this command, e.g. recreate the restore database. */
  prepare?: string[];
}

export interface RoundsResult {
  name: string;
  /** Seconds, one per round. */
  times: number[];
  mean: number;
  stddev: number;
  median: number;
  min: number;
  max: number;
  /** /usr/bin/time's %M over all rounds, KiB: the process, or its largest waited-for child. */
  treeRssKb: number;
  /** node's own maxRSS (KiB) for node commands; undefined for the others. */
  nodeRssKb: number | undefined;
}

const quote = (arg: string): string =>
  /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;

const rssProbe = `import { appendFileSync } from 'node:fs';
process.on('exit', () => {
  const file = process.env.BENCH_NODE_RSS_FILE;
  if (file) appendFileSync(file, process.argv.slice(1).join(' ') + '\\t' + process.resourceUsage().maxRSS + '\\n');
});
`;

/**
 * Run every command once per round, `rounds` times, alternating; `cwd` is a scratch directory
 * (no config of the checkout applies there, and the timing files go there).
 */
export function measureRounds(
  commands: TimedCommand[],
  opts: {
    rounds: number;
    env: NodeJS.ProcessEnv;
    cwd: string;
    afterEach?: (name: string) => void;
    /**
     * Run these once each (with their prepare), untimed, before round 1: whichever command runs
     * first after a quiet spell pays for the server's first big write (restores ran ~3 s slower
     * in round 1 than later, whichever tool went first).
     */
    warmup?: TimedCommand[];
  },
): RoundsResult[] {
  for (const program of ['hyperfine', '/usr/bin/time', ...commands.map((c) => c.argv[0]!)]) {
    requireProgram(program, opts.env);
  }
  const probe = path.join(opts.cwd, 'rss-probe.mjs');
  writeFileSync(probe, rssProbe);
  const nodeRssFile = path.join(opts.cwd, 'node-rss.tsv');
  const env = { ...opts.env, BENCH_NODE_RSS_FILE: nodeRssFile };
  const wrapped = commands.map((c, i) => {
    const argv = c.argv[0] === process.execPath ? [c.argv[0], '--import', probe, ...c.argv.slice(1)] : c.argv;
    return ['/usr/bin/time', '-a', '-o', path.join(opts.cwd, `rss-${i}.txt`), '-f', '%M', ...argv];
  });
  for (const w of opts.warmup ?? []) {
    console.log(`-- warm-up: ${w.name} (untimed)`);
    for (const argv of [w.prepare, w.argv]) {
      if (!argv) continue;
      const done = spawnSync(argv[0]!, argv.slice(1), { cwd: opts.cwd, env, stdio: 'inherit' });
      if (done.status !== 0) throw new Error(`warm-up ${w.name} failed (exit ${done.status ?? done.signal})`);
    }
  }
  const times: number[][] = commands.map(() => []);
  for (let round = 1; round <= opts.rounds; round++) {
    console.log(`-- round ${round} of ${opts.rounds}`);
    // One hyperfine run per command, so a check can run between them (afterEach).
    commands.forEach((c, i) => {
      const json = path.join(opts.cwd, 'hyperfine.json');
      const args = ['-N', '--style', 'basic', '--runs', '1', '--export-json', json];
      // Then sync: the previous command's dirty pages (a 400 MB artifact or dump file) are written
      // back before this run starts, not during it — that landed on whichever command ran next
      // (the first dbward restore after the backups took ~5 s longer than the rest).
      const prepare = (c.prepare ?? ['true']).map(quote).join(' ');
      args.push('--prepare', ['sh', '-c', `${prepare} && sync`].map(quote).join(' '));
      args.push('--command-name', c.name, wrapped[i]!.map(quote).join(' '));
      const run = spawnSync('hyperfine', args, { cwd: opts.cwd, env, stdio: 'inherit' });
      if (run.error) throw new Error(`hyperfine could not run: ${run.error.message}`);
      if (run.status !== 0)
        throw new Error(`hyperfine failed on ${c.name} (exit ${run.status ?? run.signal})`);
      const result = (JSON.parse(readFileSync(json, 'utf8')) as { results: { times: number[] }[] })
        .results[0];
      times[i]!.push(...(result?.times ?? []));
      opts.afterEach?.(c.name);
    });
  }
  const nodeLines = existsSync(nodeRssFile)
    ? readFileSync(nodeRssFile, 'utf8').split('\n').filter(Boolean)
    : [];
  return commands.map((c, i) => {
    const t = [...times[i]!].sort((x, y) => x - y);
    const mean = t.reduce((s, x) => s + x, 0) / t.length;
    const stddev = t.length > 1 ? Math.sqrt(t.reduce((s, x) => s + (x - mean) ** 2, 0) / (t.length - 1)) : 0;
    const rssLines = readFileSync(path.join(opts.cwd, `rss-${i}.txt`), 'utf8').split('\n');
    const treeRssKb = Math.max(...rssLines.filter((l) => /^\d+$/.test(l.trim())).map(Number));
    const own = c.argv.slice(1).join(' ');
    const nodeRss = nodeLines
      .filter((l) => l.slice(0, l.lastIndexOf('\t')) === own)
      .map((l) => Number(l.split('\t').pop()));
    return {
      name: c.name,
      times: times[i]!,
      mean,
      stddev,
      median: t.length % 2 ? t[(t.length - 1) / 2]! : (t[t.length / 2 - 1]! + t[t.length / 2]!) / 2,
      min: t[0]!,
      max: t[t.length - 1]!,
      treeRssKb,
      nodeRssKb: nodeRss.length > 0 ? Math.max(...nodeRss) : undefined,
    };
  });
}

/**
 * Run a command in `cwd` (where the benchmark's dbward.config.json is) with its stdout going to a
 * file, and parse that as JSON (not through a pipe: see bench-kit's runToJson).
 */
export function jsonOf(argv: string[], env: NodeJS.ProcessEnv, cwd: string): unknown {
  const file = path.join(cwd, 'out.json');
  const fd = openSync(file, 'w');
  try {
    const run = spawnSync(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', fd, 'inherit'] });
    if (run.error || run.status !== 0)
      throw new Error(`${argv.slice(1).join(' ')} failed (${run.error?.message ?? run.status})`);
  } finally {
    closeSync(fd);
  }
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Print rows as an aligned table. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
}

/** Append the figures to BENCH_BACKUP_LOG (JSON lines) when set: for the docs. */
export function logFigures(record: unknown): void {
  const file = process.env.BENCH_BACKUP_LOG;
  if (file) appendFileSync(file, `${JSON.stringify(record)}\n`);
}

/** `url` with another database in its path. */
export function withDatabase(url: URL, database: string): string {
  const copy = new URL(url.href);
  copy.pathname = `/${database}`;
  return copy.href;
}

/** Run a command to completion (untimed setup); its stdout. */
export function run(argv: string[], env: NodeJS.ProcessEnv): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8' });
  if (r.error || r.status !== 0)
    throw new Error(`${argv.slice(0, 2).join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** The size of the one artifact under `dir` (the manifest is beside it). */
export function artifactSize(dir: string): number {
  const artifacts = readdirSync(dir).filter((f) => f.endsWith('.enc') || f.endsWith('.zst'));
  if (artifacts.length !== 1)
    throw new Error(`expected one artifact in ${dir}, found ${artifacts.join(', ')}`);
  return statSync(path.join(dir, artifacts[0]!)).size;
}

export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
export const gb = (bytes: number): string => `${(bytes / 1e9).toFixed(2)} GB`;

/** One row of the results table: name, mean ± sd (runs), ratio, artifact, RSS, targets. */
export function line(
  r: RoundsResult,
  reference: RoundsResult,
  artifact: string,
  targets: string[],
): string[] {
  const sd = r.times.length > 1 ? ` ± ${r.stddev.toFixed(2)}` : '';
  return [
    r.name,
    `${r.mean.toFixed(2)} s${sd} (${r.times.length})`,
    `${(r.mean / reference.mean).toFixed(2)}×`,
    artifact,
    r.nodeRssKb === undefined ? '-' : formatKb(r.nodeRssKb),
    formatKb(r.treeRssKb),
    targets.join('; '),
  ];
}
