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
import { writeFile } from 'node:fs/promises';
import type { BackupTableCount, LoadContext, SourceFeed } from '../backup-role.js';
import { mergeArchiveChunks } from './postgres-archive-chunks.js';
import { dataTableOf, type EarlyEntries } from './postgres-post-data.js';
import { firstCause } from '../../backup/pipeline-errors.js';
import {
  describeExit,
  restoreError,
  succeeded,
  watchExit,
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
  const rows = rowsByTocName(tableRows);
  const entries: DataEntry[] = lines.map((line, index) => ({ line, index, weight: weightOf(line, rows) }));
  const shares = Array.from({ length: Math.max(1, workers) }, () => ({
    load: 0,
    entries: [] as DataEntry[],
  }));
  for (const entry of [...entries].sort((a, b) => b.weight - a.weight || a.index - b.index)) {
    const lightest = shares.reduce((min, share) => (share.load < min.load ? share : min));
    lightest.load += entry.weight;
    lightest.entries.push(entry);
  }
  const last = (entries: DataEntry[]): number => entries[entries.length - 1]?.index ?? -1;
  return shares
    .filter((share) => share.entries.length > 0)
    .map((share) => share.entries.sort((a, b) => a.index - b.index))
    .sort((a, b) => last(a) - last(b))
    .map((entries) => entries.map((e) => e.line));
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
}

/**
 * Load `shares` (from {@link shareDataEntries}) with one pg_restore each, all at once. The last
 * share holds the archive's last data entry and so reads the most of its stream: it gets restore's
 * own feed, which carries the progress. The first failure stops the other workers and is reported —
 * a damaged stream before the tool's complaint about its cut-off input. Resolves with the
 * post-data TOC lines built early (see ShareRun.early).
 */
export async function loadDataShares(shares: string[][], run: ShareRun): Promise<Set<string>> {
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
  const buildEarly = async (share: string[], i: number): Promise<void> => {
    const lines = share.flatMap((line) => run.early?.entries.get(dataTableOf(line) ?? '') ?? []);
    if (!run.early || lines.length === 0 || failed) return;
    const list = `${run.listBase}.early-${i}.list`;
    await writeFile(list, `${lines.join('\n')}\n`, { mode: 0o600 });
    if (failed) return;
    const exit = await watchExit(spawnRestore([`--use-list=${list}`, run.early.toc], 'ignore'), run.password);
    if (!succeeded(exit)) throw restoreError(describeExit('pg_restore', exit), run.context);
    for (const line of lines) built.add(line);
  };

  const load = async (share: string[], i: number): Promise<void> => {
    const list = `${run.listBase}.data-${i}.list`;
    await writeFile(list, `${share.join('\n')}\n`, { mode: 0o600 });
    if (failed) return;
    const child = spawnRestore([`--use-list=${list}`], 'pipe');
    const exited = watchExit(child, run.password);
    let feed: SourceFeed;
    try {
      // Each stream's per-row data blocks are merged on the way (postgres-archive-chunks.ts).
      feed =
        i === shares.length - 1
          ? run.ctx.pipeSourceInto(child.stdin!, mergeArchiveChunks())
          : await run.ctx.pipeSourceAgainInto(child.stdin!, mergeArchiveChunks());
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
