/**
 * Loading a PostgreSQL dump into a database with pg_restore: a scratch database for
 * verification, or the target for a restore.
 *
 * `--no-owner --no-privileges`: the user restoring becomes the owner of every object and no
 * GRANTs are replayed. Roles are cluster-wide and are not in a database dump, so the source's
 * owners and grantees may not exist here, and replaying them would fail the restore (we stop on
 * the first error). Whoever needs the original owners and grants restores with pg_restore
 * directly, as a superuser.
 *
 * - `pgdump` (custom format) streams into pg_restore's stdin — from a restore, straight out of the
 *   decompressor (LoadContext.pipeSourceInto), so the raw dump never passes through node.
 *   With several jobs into an empty database, nothing is spooled: the pre-data section runs from a
 *   file of the archive's head alone (its table of contents: those entries are SQL there, which
 *   pg_restore reads from a seekable file without the data after it); the data loads N tables at
 *   once, N pg_restores each reading its own stream of the dump with a list of its share of the
 *   tables (postgres-data-shares.ts); then the post-data section (indexes, constraints, foreign
 *   keys, triggers) runs with `-j N` from the head file.
 *   With several jobs over existing objects, or only some tables, the whole dump is a file first
 *   (spooled by restore's check pass, LoadContext.file). pg_restore -j works on a custom archive
 *   pg_dump wrote to a pipe (no data offsets in its TOC; checked with PostgreSQL 15, where
 *   pg_restore scans forward for each table's data when the file is seekable).
 * - `pgdir.tar` is unpacked by GNU tar under ctx.tempDir, then restored with `-Fd -j N`.
 * - `tables`: a filtered table of contents (`pg_restore -l`, keep those tables' TABLE, TABLE DATA
 *   and own CONSTRAINT entries, `-L list`) restores only their definitions, primary/unique/check
 *   constraints and data, like `pg_restore -t` but schema-qualified. What they depend on (schema,
 *   types, sequences of serial defaults) must already exist; indexes, defaults taken from
 *   sequences and foreign keys are not restored (the TOC listing does not tie them to a table),
 *   and --clean cannot drop a table other tables' foreign keys point at.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectionSpec } from '../../core/connection-spec.js';
import { DbwardError } from '../../core/errors.js';
import type { Target } from '../../core/target.js';
import type { LoadContext } from '../backup-role.js';
import {
  dbnameArg,
  describeExit,
  errorContext,
  requireTool,
  stripSecret,
  succeeded,
  restoreError,
  toolEnv,
  watchExit,
  readToTheEnd,
  type ErrorContext,
} from './postgres-backup-tools.js';
import { mergeArchiveChunks } from './postgres-archive-chunks.js';
import { loadDataShares, planDataShares, splitsTable } from './postgres-data-shares.js';
import { dataTableOf, earlyPostData } from './postgres-post-data.js';

/**
 * Data workers of `-j N` at most: each reads and decrypts the artifact once more and holds a few
 * MiB of buffers; four keep dbward under 150 MB (measured) while the server does the loading.
 */
const maxDataStreams = 4;

/** Where a dump is loaded. */
export interface LoadDestination {
  database: string;
  spec: ConnectionSpec;
  target: Target;
  /** Drop the archive's objects first (`--clean --if-exists`): restore over existing contents. */
  clean: boolean;
  /** The server's major version, for install hints. */
  major: string;
}

export async function loadArchive(source: Readable, into: LoadDestination, ctx: LoadContext): Promise<void> {
  const context = errorContext(ctx.target, 'restore');
  const pgRestore = requireTool('pg_restore', into.major, context);
  const env = toolEnv(into.spec, into.target);
  const password = into.spec.password;
  const jobs = Math.max(1, Math.floor(ctx.jobs));
  const common = ['--no-owner', '--no-privileges', '--exit-on-error', dbnameArg(into.database)];
  if (into.clean) common.push('--clean', '--if-exists');
  const work = path.join(ctx.tempDir, `restore-${randomBytes(4).toString('hex')}`);
  // 'direct': restore sends the raw dump into pg_restore's stdin itself (LoadContext.pipeSourceInto).
  const restore = async (args: string[], stdin?: Readable | 'direct', through?: Transform): Promise<void> => {
    const child = spawn(pgRestore, [...common, ...args], {
      env,
      stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'],
    });
    if (stdin === 'direct' && child.stdin) ctx.pipeSourceInto?.(child.stdin);
    const fed = stdin === 'direct' ? undefined : stdin;
    await feedAndWait('pg_restore', child, fed, ctx, password, context, through);
  };
  const printed = (args: string[]): Promise<string> => printedBy(pgRestore, args, env, password, context);
  const listArgs = async (archive: string): Promise<string[]> => {
    if (!ctx.tables) return [];
    const list = `${work}.list`;
    await writeFile(list, filterToc(await printed(['--list', archive]), ctx.tables, context));
    return [`--use-list=${list}`];
  };

  try {
    if (ctx.extension === 'pgdump') {
      if (!ctx.file && !ctx.tables) {
        const feed = ctx.pipeSourceInto ? 'direct' : source;
        // One pg_restore reads the whole stream, through node so its per-row data blocks are
        // merged (postgres-archive-chunks.ts): that spares the server a CopyData message per row.
        if (jobs === 1) return await restore(['--format=custom'], source, mergeArchiveChunks());
        if (ctx.openSourceAgain && ctx.targetEmpty === true) {
          // Into an empty database, without a spooled copy of the whole dump: definitions, indexes,
          // constraints and foreign keys come from a file of the archive's head (they are SQL in
          // its TOC, not data); the data streams in, N tables at once when the caller allows.
          // (With tables in place, --clean would have to drop foreign keys, which are post-data,
          // before the tables they point at: that needs one pg_restore over the whole file.)
          const toc = `${work}.toc.pgdump`;
          const streams = Math.min(jobs, maxDataStreams);
          // A big table will be split (planDataShares): every share then reads one shared stream,
          // so the head comes from that stream itself and is put back, instead of from a second
          // decryption and decompression of the artifact.
          const held =
            ctx.pipeSourceInto && ctx.pipeSourceAgainInto && splitsTable(ctx.tableRows ?? [], streams)
              ? []
              : undefined;
          await saveToc(
            pgRestore,
            held ? source : await ctx.openSourceAgain(),
            toc,
            env,
            password,
            context,
            held,
          );
          let sharedSource: Readable | undefined;
          if (held) {
            // The head back in front of the rest (a dump that fits in its head is only the head).
            if (source.readableEnded) sharedSource = Readable.from(held);
            else source.unshift(Buffer.concat(held));
            sharedSource ??= source;
          }
          const { pipeSourceInto, pipeSourceAgainInto } = ctx;
          if (pipeSourceInto && pipeSourceAgainInto) {
            // The data, too, loads N tables at once: N pg_restores each read their own stream.
            await restore(['--format=custom', '--section=pre-data', toc]);
            const data = tocEntries(await printed(['--list', '--section=data', toc]));
            const post = await printed(['--list', '--section=post-data', toc]);
            // The same entries' SQL, which names each index's and constraint's table.
            const postSql = await printed([
              '--file=-',
              '--no-owner',
              '--no-privileges',
              '--section=post-data',
              toc,
            ]);
            const shares = planDataShares(data, streams, ctx.tableRows);
            const split = shares[0]?.split;
            if (split) {
              const table = shares[0]!.lines.find((l) => l.startsWith(`${split.dumpId};`));
              ctx.logger.info(
                `restore: ${dataTableOf(table ?? '') ?? 'one table'} loads in ${split.parts} parts at once`,
              );
            }
            const built = await loadDataShares(shares, {
              pgRestore,
              args: [...common, '--format=custom'],
              env,
              password,
              context,
              listBase: work,
              ctx: { ...ctx, pipeSourceInto, pipeSourceAgainInto },
              ...(sharedSource ? { sharedSource } : {}),
              early: { toc, entries: earlyPostData(post, postSql) },
            });
            if (built.size > 0) {
              // The rest of the post-data section, as pg_restore -j would order it.
              const rest = `${work}.post.list`;
              const left = tocEntries(post).filter((line) => !built.has(line));
              await writeFile(rest, `${left.join('\n')}\n`);
              return await restore(['--format=custom', `--use-list=${rest}`, `--jobs=${jobs}`, toc]);
            }
          } else {
            await restore(['--format=custom', '--section=pre-data', '--section=data'], feed);
          }
          return await restore(['--format=custom', '--section=post-data', `--jobs=${jobs}`, toc]);
        }
      }
      // Restore spooled the checked dump already (LoadContext.file): pg_restore reads it there.
      const file = ctx.file ?? `${work}.pgdump`;
      if (!ctx.file) await pipeline(source, progress(ctx), createWriteStream(file, { mode: 0o600 }));
      const parallel = jobs > 1 ? [`--jobs=${jobs}`] : [];
      return await restore(['--format=custom', ...parallel, ...(await listArgs(file)), file]);
    }
    if (ctx.extension === 'pgdir.tar') {
      await mkdir(work, { recursive: true, mode: 0o700 });
      // --ignore-zeros: read to the end of input. Without it GNU tar stops at the end-of-archive
      // marker and leaves the zero padding after it unread, which fails our side of the pipe.
      const tar = spawn('tar', ['-C', work, '-xf', '-', '--no-same-owner', '--ignore-zeros'], {
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      await feedAndWait('tar', tar, source, ctx, password, context);
      return await restore(['--format=directory', `--jobs=${jobs}`, ...(await listArgs(work)), work]);
    }
    throw restoreError(`unknown dump format "${ctx.extension}" (expected pgdump or pgdir.tar).`, context);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(`${work}.pgdump`, { force: true });
    await rm(`${work}.list`, { force: true });
    await rm(`${work}.toc.pgdump`, { force: true });
    await rm(`${work}.post.list`, { force: true });
    for (let i = 0; i < jobs; i++) {
      await rm(`${work}.data-${i}.list`, { force: true });
      await rm(`${work}.early-${i}.list`, { force: true });
    }
  }
}

/**
 * Write the head of the custom-format dump `source` to `file`: everything up to the point where
 * `pg_restore --list`, fed the same bytes, has read the whole table of contents and exited.
 * pg_restore can then restore the archive's post-data section from that file (in parallel, since
 * it is a seekable file) without any of the data.
 */
async function saveToc(
  pgRestore: string,
  source: Readable,
  file: string,
  env: NodeJS.ProcessEnv,
  password: string | undefined,
  context: ErrorContext,
  hold?: Buffer[],
): Promise<void> {
  const list = spawn(pgRestore, ['--list'], { env, stdio: ['pipe', 'ignore', 'pipe'] });
  const exited = watchExit(list, password);
  const stdin = list.stdin!;
  stdin.on('error', () => undefined); // writes after it exited: it has read what it needs
  let listing = true;
  const stopped = exited.then(() => {
    listing = false;
  });
  const out = await open(file, 'w', 0o600);
  try {
    for await (const chunk of hold ? readKeepingOpen(source) : (source as AsyncIterable<Buffer>)) {
      hold?.push(chunk);
      await out.write(chunk);
      if (!stdin.write(chunk)) await Promise.race([once(stdin, 'drain').catch(() => undefined), stopped]);
      if (!listing) break;
    }
  } finally {
    stdin.end();
    if (!hold) source.destroy();
    await out.close();
  }
  const exit = await exited;
  if (!succeeded(exit)) {
    throw restoreError(
      `cannot read the table of contents: ${describeExit('pg_restore --list', exit)}`,
      context,
    );
  }
}

/**
 * The chunks of `source` as they come, without destroying it when the reader stops early (as a
 * `for await` over the stream itself would): the rest stays readable.
 */
async function* readKeepingOpen(source: Readable): AsyncGenerator<Buffer> {
  for (;;) {
    const chunk = source.read() as Buffer | null;
    if (chunk !== null) {
      yield chunk;
      continue;
    }
    if (source.readableEnded || source.destroyed) return;
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown): void => {
        source.off('readable', settle);
        source.off('end', settle);
        source.off('close', settle);
        source.off('error', settle);
        if (err instanceof Error) reject(err);
        else resolve();
      };
      source.on('readable', settle);
      source.on('end', settle);
      source.on('close', settle);
      source.on('error', settle);
    });
  }
}

/** Counts raw bytes for ctx.onProgress as they pass. */
function progress(ctx: LoadContext): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      ctx.onProgress?.(bytes);
      callback(null, chunk);
    },
  });
}

/** A write into a tool that has exited (it stopped reading): its exit status tells why. */
function isPipeError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET';
}

/**
 * Stream `stdin` (when given) into the tool and wait for it. A failing source (say, a backup
 * that does not decrypt) is the cause and is reported as such; otherwise the tool's exit is.
 */
async function feedAndWait(
  tool: string,
  child: ChildProcess,
  stdin: Readable | undefined,
  ctx: LoadContext,
  password: string | undefined,
  context: ErrorContext,
  through?: Transform,
): Promise<void> {
  const exited = watchExit(child, password);
  // Through a rewriting stage the source is read to its end even when the tool stops reading
  // early (pg_restore exits after its last entry, before the archive's last bytes): the source
  // finishes, and proves, the whole artifact.
  const sink = through && child.stdin ? readToTheEnd(child.stdin) : child.stdin;
  const fed =
    stdin && sink
      ? pipeline([stdin, progress(ctx), ...(through ? [through] : []), sink]).then(
          () => undefined,
          (err: unknown) => err,
        )
      : Promise.resolve(undefined);
  const [exit, feedError] = await Promise.all([exited, fed]);
  if (feedError !== undefined && !isPipeError(feedError)) {
    if (feedError instanceof DbwardError) throw feedError;
    throw restoreError(`reading the backup failed: ${(feedError as Error).message}`, context, feedError);
  }
  if (!succeeded(exit)) throw restoreError(describeExit(tool, exit), context);
}

/** The entry lines of a `pg_restore --list` (not its comments). */
function tocEntries(list: string): string[] {
  return list.split('\n').filter((line) => /^\d+;/.test(line));
}

/**
 * What pg_restore prints for `args` without a database: `--list` (the TOC, small next to the
 * dump) or `--file=-` (the SQL of entries that are SQL in the TOC, like the post-data section).
 */
function printedBy(
  pgRestore: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  password: string | undefined,
  context: ErrorContext,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(pgRestore, args, { env, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const detail = stripSecret(String(stderr).trim(), password) || err.message;
      reject(restoreError(`cannot read the table of contents: ${detail}`, context, err));
    });
  });
}

/**
 * The TOC lines of the TABLE, TABLE DATA and CONSTRAINT (tag `<table> <constraint>`) entries of
 * `tables` (`schema.table`). A TOC line is
 * `<id>; <catalog oid> <oid> <desc> <schema> <tag> <owner>`; names are printed unquoted, so a
 * name is matched by trying every split of `schema.table` at a dot.
 */
export function filterToc(toc: string, tables: string[], context: ErrorContext): string {
  const entries = toc.split('\n').map((line) => ({ line, rest: /^\d+; \d+ \d+ (.*)$/.exec(line)?.[1] }));
  const kept = new Set<string>();
  const missing: string[] = [];
  for (const name of tables) {
    const prefixes = splits(name).flatMap(([schema, table]) => [
      `TABLE ${schema} ${table} `,
      `TABLE DATA ${schema} ${table} `,
      `CONSTRAINT ${schema} ${table} `,
    ]);
    const lines = entries.filter(
      (e) => e.rest !== undefined && prefixes.some((p) => `${e.rest} `.startsWith(p)),
    );
    if (!lines.some((e) => e.rest!.startsWith('TABLE ') && !e.rest!.startsWith('TABLE DATA ')))
      missing.push(name);
    for (const e of lines) kept.add(e.line);
  }
  if (missing.length > 0) {
    throw new DbwardError('E_BACKUP_RESTORE', `Not in this backup: ${missing.join(', ')}.`, {
      hint: 'Name tables as schema.table, as the backup’s manifest lists them.',
      context,
    });
  }
  return entries
    .filter((e) => kept.has(e.line))
    .map((e) => e.line)
    .join('\n')
    .concat('\n');
}

function splits(name: string): [string, string][] {
  const out: [string, string][] = [];
  for (let i = name.indexOf('.'); i > 0; i = name.indexOf('.', i + 1)) {
    out.push([name.slice(0, i), name.slice(i + 1)]);
  }
  return out;
}
