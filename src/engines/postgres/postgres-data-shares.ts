/**
 * The data section of a custom-format dump, loaded by several pg_restore processes at once, each
 * reading the dump from its own stream.
 *
 * `pg_restore -j N` loads several tables at once only from a seekable file, and spooling a
 * gigabyte-sized dump to disk first costs more than the parallelism wins on a small machine. A
 * pg_restore reading stdin with a list of entries (`-L`) instead loads only those and skips the
 * other tables' data blocks at pipe speed. So each worker gets a share of the TABLE DATA entries
 * (balanced by the manifest's row counts) and its own decompressed read of the artifact; a worker
 * exits after its last entry, leaving the rest of its stream unread (its feed is then stopped).
 * Lists keep the archive's order: a reader of a pipe cannot go back.
 */
import { spawn } from 'node:child_process';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeFile } from 'node:fs/promises';
import type { BackupTableCount, LoadContext, SourceFeed } from '../backup-role.js';
import { distributeArchive, mergeArchiveChunks, type RowSplit } from './postgres-archive-chunks.js';
import { dataTableOf, type EarlyEntries } from './postgres-post-data.js';
import { firstCause } from '../../backup/pipeline-errors.js';
import { DbwardError } from '../../core/errors.js';
import {
  describeExit,
  restoreError,
  succeeded,
  watchExit,
  readToTheEnd,
  type ErrorContext,
} from './postgres-backup-tools.js';

/** One `pg_restore --list` line of the data section, and how much work loading it is. */
interface DataEntry {
  line: string;
  index: number;
  weight: number;
}

/**
 * Split the data section's TOC lines (in the archive's order) into at most `workers` shares of
 * about equal rows (heaviest first, each to the lightest share), each in the archive's order.
 * Empty shares are dropped; the share holding the last line comes last.
 */
export function shareDataEntries(
  lines: readonly string[],
  workers: number,
  tableRows: readonly BackupTableCount[] = [],
): string[][] {
  const shares = Array.from({ length: Math.max(1, workers) }, () => ({
    load: 0,
    entries: [] as DataEntry[],
  }));
  return balance(weighed(lines, tableRows), shares).map((entries) => entries.map((e) => e.line));
}

/** The TOC lines with their archive position and weight. */
function weighed(lines: readonly string[], tableRows: readonly BackupTableCount[]): DataEntry[] {
  const rows = rowsByTocName(tableRows);
  return lines.map((line, index) => ({ line, index, weight: weightOf(line, rows) }));
}

/**
 * Add `entries` to `shares` (which may start loaded), heaviest first, each to the lightest share;
 * return the non-empty shares, each in the archive's order, the one holding the last line last.
 */
function balance(entries: DataEntry[], shares: { load: number; entries: DataEntry[] }[]): DataEntry[][] {
  for (const entry of [...entries].sort((a, b) => b.weight - a.weight || a.index - b.index)) {
    const lightest = shares.reduce((min, share) => (share.load < min.load ? share : min));
    lightest.load += entry.weight;
    lightest.entries.push(entry);
  }
  const last = (list: DataEntry[]): number => list[list.length - 1]?.index ?? -1;
  return shares
    .filter((share) => share.entries.length > 0)
    .map((share) => share.entries.sort((a, b) => a.index - b.index))
    .sort((a, b) => last(a) - last(b));
}

/** What one pg_restore of the data section loads: its TOC lines, and maybe its part of a big table. */
export interface DataShare {
  lines: string[];
  /** This share's part of the table that is loaded by every share at once (see planDataShares). */
  split?: RowSplit;
}

/**
 * A table with at least this many rows, and more than a fair share of all rows, is loaded by
 * every share at once, each with its own COPY of a part of its rows: one COPY runs on one core of
 * the server, so a dump that is mostly one table would otherwise load no faster with -j N (two
 * COPYs of halves of 5.3 M rows: 8.3 s against 13.6–14.3 s for one, on two cores).
 */
export const minSplitRows = 100_000;

/** Environment override of {@link minSplitRows}: a row count, or `off` to never split a table. */
export const splitRowsEnvOverride = 'DBWARD_RESTORE_SPLIT_ROWS';

/** The smallest table that is split: $DBWARD_RESTORE_SPLIT_ROWS when valid, else the default. */
export function splitThreshold(env: NodeJS.ProcessEnv = process.env): number {
  const value = env[splitRowsEnvOverride]?.trim();
  if (value === 'off') return Number.POSITIVE_INFINITY;
  const rows = Number(value);
  return value && Number.isInteger(rows) && rows > 0 ? rows : minSplitRows;
}

/** Whether, by the manifest's row counts, planDataShares will split a table between `workers`. */
export function splitsTable(
  tableRows: readonly BackupTableCount[],
  workers: number,
  minRows = splitThreshold(),
): boolean {
  const total = tableRows.reduce((sum, t) => sum + t.rows, 0);
  const heaviest = Math.max(0, ...tableRows.map((t) => t.rows));
  return workers > 1 && heaviest >= minRows && heaviest > total / workers;
}

/**
 * {@link shareDataEntries}, except that a table heavier than a fair share (and than
 * {@link minSplitRows}) is split: every share loads a part of its rows, and the rest is balanced
 * around it. Its post-data entries must then wait until every share is done.
 */
export function planDataShares(
  lines: readonly string[],
  workers: number,
  tableRows: readonly BackupTableCount[] = [],
  minRows = splitThreshold(),
): DataShare[] {
  const entries = weighed(lines, tableRows);
  const total = entries.reduce((sum, e) => sum + e.weight, 0);
  const heaviest = entries.reduce<DataEntry | undefined>(
    (max, e) => (max && max.weight >= e.weight ? max : e),
    undefined,
  );
  const dumpId = heaviest ? Number(/^(\d+);/.exec(heaviest.line)?.[1]) : NaN;
  const splits =
    workers > 1 &&
    heaviest !== undefined &&
    dataTableOf(heaviest.line) !== undefined &&
    Number.isInteger(dumpId) &&
    heaviest.weight - 1 >= minRows &&
    heaviest.weight > total / workers;
  if (!splits) return shareDataEntries(lines, workers, tableRows).map((share) => ({ lines: share }));
  // Every share starts with its part of the heaviest table; the rest is balanced around it.
  const shares = Array.from({ length: workers }, () => ({
    load: heaviest.weight / workers,
    entries: [heaviest],
  }));
  return balance(
    entries.filter((e) => e !== heaviest),
    shares,
  ).map((list, part) => ({ lines: list.map((e) => e.line), split: { dumpId, part, parts: workers } }));
}

/** The dump ids of a share's TOC lines (`<id>; …`): the entries its pg_restore loads. */
function dumpIdsOf(lines: readonly string[]): Set<number> {
  return new Set(lines.map((line) => Number(/^(\d+);/.exec(line)?.[1])).filter(Number.isInteger));
}

/** `schema table` (as a TOC line prints it) → rows, for every split of `schema.table` at a dot. */
function rowsByTocName(tableRows: readonly BackupTableCount[]): Map<string, number> {
  const map = new Map<string, number>();
  for (const { name, rows } of tableRows) {
    for (let i = name.indexOf('.'); i > 0; i = name.indexOf('.', i + 1)) {
      map.set(`${name.slice(0, i)} ${name.slice(i + 1)}`, rows);
    }
  }
  return map;
}

/**
 * A TOC line is `<id>; <catalog oid> <oid> <desc> <schema> <tag> <owner>`. TABLE DATA weighs its
 * rows (plus one, so empty tables still spread); sequence values and the like weigh one.
 */
function weightOf(line: string, rows: Map<string, number>): number {
  const table = dataTableOf(line);
  return 1 + (table === undefined ? 0 : (rows.get(table) ?? 0));
}

export interface ShareRun {
  pgRestore: string;
  /** pg_restore's arguments before the list: connection, --no-owner, --format=custom, … */
  args: string[];
  env: NodeJS.ProcessEnv;
  password: string | undefined;
  context: ErrorContext;
  /** Where to write the list files (`<base>.data-<n>.list`, `<base>.early-<n>.list`); removed by the caller. */
  listBase: string;
  /**
   * The archive's head (table of contents) as a file, and the post-data entries that may be built
   * from it as soon as their table is loaded: when a share is in while others still load, its
   * tables' entries are built then, on the core the share leaves idle.
   */
  early?: { toc: string; entries: EarlyEntries };
  ctx: LoadContext & Required<Pick<LoadContext, 'pipeSourceInto' | 'pipeSourceAgainInto'>>;
  /**
   * The raw dump as a stream the caller has started reading (its head put back): every share reads
   * it through one shared feed, whether or not a table is split.
   */
  sharedSource?: Readable;
}

/**
 * Load `shares` (from {@link shareDataEntries}) with one pg_restore each, all at once. The last
 * share holds the archive's last data entry and so reads the most of its stream: it gets restore's
 * own feed, which carries the progress. The first failure stops the other workers and is reported —
 * a damaged stream before the tool's complaint about its cut-off input. Resolves with the
 * post-data TOC lines built early (see ShareRun.early).
 */
export async function loadDataShares(shares: DataShare[], run: ShareRun): Promise<Set<string>> {
  const stops: (() => void)[] = [];
  const built = new Set<string>();
  const early: Promise<void>[] = [];
  let running = shares.length;
  let failed = false;
  let failure: unknown;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    failure = err;
    for (const stop of stops) stop();
  };
  const spawnRestore = (args: string[], stdin: 'pipe' | 'ignore'): ReturnType<typeof spawn> => {
    const child = spawn(run.pgRestore, [...run.args, ...args], {
      env: run.env,
      stdio: [stdin, 'ignore', 'pipe'],
    });
    stops.push(() => child.kill('SIGTERM'));
    return child;
  };
  // Whatever stops the shared stream (a damaged artifact, a part that cannot be split) must stop
  // every pg_restore reading it too, or they would wait for the rest of their input forever.
  const shared =
    run.sharedSource || shares.some((share) => share.split)
      ? sharedFeed(shares, run.sharedSource ?? run.ctx, (err) =>
          fail(
            err instanceof DbwardError
              ? err
              : restoreError(`reading the backup failed: ${(err as Error).message}`, run.context),
          ),
        )
      : undefined;
  if (shared) stops.push(() => shared.stop());
  // A split table is loaded when every share is done: its indexes wait for the rest of post-data.
  const splitLines = new Set(
    shares.flatMap(({ lines, split }) =>
      split ? lines.filter((l) => l.startsWith(`${split.dumpId};`)) : [],
    ),
  );
  const buildEarly = async (share: string[], i: number): Promise<void> => {
    const lines = share
      .filter((line) => !splitLines.has(line))
      .flatMap((line) => run.early?.entries.get(dataTableOf(line) ?? '') ?? []);
    if (!run.early || lines.length === 0 || failed) return;
    const list = `${run.listBase}.early-${i}.list`;
    await writeFile(list, `${lines.join('\n')}\n`, { mode: 0o600 });
    if (failed) return;
    const exit = await watchExit(spawnRestore([`--use-list=${list}`, run.early.toc], 'ignore'), run.password);
    if (!succeeded(exit)) throw restoreError(describeExit('pg_restore', exit), run.context);
    for (const line of lines) built.add(line);
  };

  const load = async ({ lines: share, split }: DataShare, i: number): Promise<void> => {
    const list = `${run.listBase}.data-${i}.list`;
    await writeFile(list, `${share.join('\n')}\n`, { mode: 0o600 });
    if (failed) return;
    const child = spawnRestore([`--use-list=${list}`], 'pipe');
    const exited = watchExit(child, run.password);
    let feed: SourceFeed;
    try {
      // Each stream's per-row data blocks are merged on the way (postgres-archive-chunks.ts),
      // and other shares' tables left out. With a split table every share reads the one shared
      // stream (decompressed and parsed once), which hands it its tables and its part of the rows.
      feed = shared
        ? shared.attach(i, child.stdin!)
        : i === shares.length - 1
          ? run.ctx.pipeSourceInto(child.stdin!, mergeArchiveChunks(split, { only: dumpIdsOf(share) }))
          : await run.ctx.pipeSourceAgainInto(
              child.stdin!,
              mergeArchiveChunks(split, { only: dumpIdsOf(share) }),
            );
    } catch (err) {
      child.kill('SIGTERM');
      await exited;
      throw err;
    }
    const exit = await exited;
    if (succeeded(exit)) {
      feed.stop();
      await feed.done();
      // Others still loading: this share's indexes now, on the core it leaves idle.
      if (--running > 0) early.push(buildEarly(share, i).catch(fail));
      return;
    }
    const feedError = await feed.done().then(
      () => undefined,
      (err: unknown) => err,
    );
    const errors = [restoreError(describeExit('pg_restore', exit), run.context)];
    throw firstCause(feedError === undefined ? errors : [feedError, ...errors]);
  };
  await Promise.all(shares.map((share, i) => load(share, i).catch(fail)));
  await Promise.all(early);
  if (failed) throw failure;
  return built;
}

/**
 * One stream of the raw dump for every share (a split table needs every share to read all of its
 * rows, and decompressing the artifact once per share would cost more CPU than a second COPY
 * wins): restore's own feed, through node, into one distributor (distributeArchive) that parses
 * the archive once and gives each share's pg_restore its own data and its part of the split
 * table. A share whose pg_restore is done is dropped; the stream goes on to its end (which also
 * proves the artifact) at the pace of the slowest share still reading.
 */
function sharedFeed(
  shares: DataShare[],
  from: Readable | Required<Pick<LoadContext, 'pipeSourceInto'>>,
  onFailure: (err: unknown) => void,
): { attach(i: number, stdin: Writable): SourceFeed; stop(): void } {
  const distributor = distributeArchive(
    shares.find((share) => share.split)?.split,
    shares.map((share) => dumpIdsOf(share.lines)),
  );
  const outputs = distributor.outputs;
  let attached = 0;
  let halted = false;
  let raw: SourceFeed | undefined;
  let ready!: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  distributor.on('error', onFailure);
  distributor.on('close', () => {
    if (!distributor.writableFinished) onFailure(new Error('the stream of the dump stopped early.'));
  });
  return {
    attach(i, stdin) {
      const output = outputs[i]!;
      const sunk = pipeline(output, readToTheEnd(stdin));
      sunk.catch(() => undefined);
      if (++attached === shares.length && !halted) {
        raw =
          from instanceof Readable
            ? streamFeed(from, distributor)
            : from.pipeSourceInto(distributor, new PassThrough());
        ready();
      }
      let stopped = false;
      return {
        stop() {
          stopped = true;
          output.destroy();
        },
        async done() {
          await started;
          if (stopped || raw === undefined) {
            await Promise.allSettled([sunk]);
            return;
          }
          await Promise.all([sunk, raw.done()]);
        },
      };
    },
    stop() {
      halted = true;
      raw?.stop();
      distributor.destroy();
      for (const output of outputs) output.destroy();
      // A share that failed before every share attached: nobody waits for a start that never comes.
      ready();
    },
  };
}

/** `source` into `sink` as a SourceFeed (stop: destroy the source; done: the pipeline). */
function streamFeed(source: Readable, sink: Writable): SourceFeed {
  let stopped = false;
  const flowing = pipeline(source, sink);
  flowing.catch(() => undefined);
  return {
    stop() {
      stopped = true;
      source.destroy();
    },
    async done() {
      if (stopped) await Promise.allSettled([flowing]);
      else await flowing;
    },
  };
}
