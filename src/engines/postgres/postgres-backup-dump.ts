/**
 * A running PostgreSQL dump: pg_dump in the exported snapshot, its output as the RunningDump
 * stream, and the proof it is complete — exit code 0, some output, and a table of contents that
 * pg_restore can read.
 *
 * - jobs = 1: `pg_dump -Fc -Z0` (custom format, uncompressed: dbward compresses with zstd)
 *   writes straight into zstd when the pipeline offers that (BackupContext.directOutput), the
 *   TOC check reading the head decompressed again; otherwise it streams through node, and the
 *   head of the stream is fed to `pg_restore -l` on its stdin. Either way that side consumer
 *   never slows the main stream (it is fed without waiting, up to a cap) and stops being fed
 *   when it exits, which it does as soon as it has read the TOC.
 * - jobs > 1: `pg_dump -Fd -j N` must write a directory, so the whole dump lands under
 *   ctx.tempDir first (this needs free temporary disk space about the size of the uncompressed
 *   dump), is checked with `pg_restore -l <dir>`, then streamed as a tar by GNU tar and removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { finished } from 'node:stream/promises';
import { DbwardError } from '../../core/errors.js';
import type { BackupContext, BackupPlan, DirectOutput, DumpOutcome, RunningDump } from '../backup-role.js';
import type { EngineConnection } from '../contract.js';
import { sqlConnection } from '../scratch-target.js';
import { holdSnapshot, type HeldSnapshot } from './postgres-backup-snapshot.js';
import {
  describeExit,
  errorContext,
  killQuietly,
  requireTool,
  succeeded,
  toolEnv,
  watchExit,
  type ErrorContext,
  type ToolExit,
} from './postgres-backup-tools.js';

/** Bytes of the dump's head fed to `pg_restore -l` at most (a TOC is far smaller). */
const tocFeedLimit = 32 * 1024 * 1024;

export async function startDump(
  conn: EngineConnection,
  ctx: BackupContext,
  plan: BackupPlan,
): Promise<RunningDump> {
  const sql = sqlConnection(conn);
  const context = errorContext(ctx.target, 'backup');
  const major = plan.serverVersion.split('.')[0] ?? '<server major>';
  const pgDump = requireTool('pg_dump', major, context);
  const pgRestore = requireTool('pg_restore', major, context);
  const env = toolEnv(ctx.spec, ctx.target);
  const snapshot = await holdSnapshot(sql);
  const run = { pgDump, pgRestore, env, snapshot, context, password: ctx.spec.password };
  const running =
    plan.extension === 'pgdir.tar'
      ? directoryDump(run, ctx)
      : ctx.directOutput
        ? customDumpIntoCompressor(run, ctx.directOutput)
        : customDump(run);
  // The caller may never await done when something else failed first.
  running.done.catch(() => undefined);
  return running;
}

interface DumpRun {
  pgDump: string;
  pgRestore: string;
  env: NodeJS.ProcessEnv;
  snapshot: HeldSnapshot;
  context: ErrorContext;
  password: string | undefined;
}

function dumpError(message: string, context: ErrorContext, cause?: unknown): DbwardError {
  return new DbwardError('E_BACKUP_DUMP', `The PostgreSQL dump failed: ${message}`, {
    hint: 'Read the message above; pg_dump connects with the target URL’s settings. Nothing was stored.',
    context,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Commit the snapshot and return the counts once every proof holds; roll back otherwise. */
async function settle(run: DumpRun, proofs: () => Promise<void>): Promise<DumpOutcome> {
  try {
    await proofs();
    const tables = await run.snapshot.counts.catch((err: unknown) => {
      throw dumpError(`counting rows failed: ${(err as Error).message}`, run.context, err);
    });
    await run.snapshot.release(true);
    return { tables };
  } catch (err) {
    await run.snapshot.release(false);
    throw err;
  }
}

function customDump(run: DumpRun): RunningDump {
  const args = ['--format=custom', '--compress=0', `--snapshot=${run.snapshot.id}`];
  const child = spawn(run.pgDump, args, { env: run.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const dumpExit = watchExit(child, run.password);
  const toc = spawn(run.pgRestore, ['--list'], { env: run.env, stdio: ['pipe', 'ignore', 'pipe'] });
  const tocExit = watchExit(toc, run.password);
  // Writes after pg_restore -l has exited fail with EPIPE; the side consumer is simply done.
  toc.stdin?.on('error', () => undefined);
  let tocFeeding = true;
  const stopFeeding = (): void => {
    if (!tocFeeding) return;
    tocFeeding = false;
    toc.stdin?.end();
  };
  void tocExit.then(stopFeeding);

  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (tocFeeding) {
        // No wait for drain: the main stream never waits for the side check.
        toc.stdin?.write(chunk);
        if (bytes >= tocFeedLimit) stopFeeding();
      }
      callback(null, chunk);
    },
  });
  child.stdout?.pipe(stream);
  let aborted = false;
  child.stdout?.on('end', stopFeeding);
  run.snapshot.counts.catch(() => killQuietly(child));

  const done = settle(run, async () => {
    const exit = await dumpExit;
    if (!aborted) await finished(stream, { readable: false }).catch(() => undefined);
    stopFeeding();
    provenDump({ aborted, exit, list: await tocExit, bytes }, run.context);
  });
  const abort = (): void => {
    aborted = true;
    killQuietly(child);
    killQuietly(toc);
    run.snapshot.cancel();
    stream.destroy();
  };
  abortOnEarlyClose(stream, abort);
  return { stream, done, abort };
}

/** Throws what disproves a custom-format dump: abort, pg_dump's exit, no output, an unreadable TOC. */
function provenDump(
  dump: { aborted: boolean; exit: ToolExit; list: ToolExit; bytes?: number },
  context: ErrorContext,
): void {
  if (dump.aborted) throw dumpError('it was aborted.', context);
  if (!succeeded(dump.exit)) throw dumpError(describeExit('pg_dump', dump.exit), context);
  if (dump.bytes === 0) throw dumpError('pg_dump produced no output.', context);
  if (!succeeded(dump.list)) {
    throw dumpError(
      `the table of contents is unreadable (${describeExit('pg_restore --list', dump.list)}).`,
      context,
    );
  }
}

/**
 * pg_dump writes straight into the compressor (its stdout is zstd's stdin), so the raw dump never
 * passes through node: at 1.2 GB that saved ~3 of the ~6 CPU-seconds node spent relaying it, on
 * two cores that pg_dump, the server and zstd keep busy. The TOC check reads the head of the dump
 * decompressed again from zstd's first output (DirectOutput.pipeHeadInto).
 */
function customDumpIntoCompressor(run: DumpRun, output: DirectOutput): RunningDump {
  const args = ['--format=custom', '--compress=0', `--snapshot=${run.snapshot.id}`];
  let child: ChildProcess;
  try {
    child = spawn(run.pgDump, args, { env: run.env, stdio: ['ignore', output.stdin, 'pipe'] });
  } finally {
    output.release(); // zstd sees the end of its input when pg_dump exits, not when node does
  }
  const dumpExit = watchExit(child, run.password);
  const toc = spawn(run.pgRestore, ['--list'], { env: run.env, stdio: ['pipe', 'ignore', 'pipe'] });
  const tocExit = watchExit(toc, run.password);
  output.pipeHeadInto(toc.stdin!);
  run.snapshot.counts.catch(() => killQuietly(child));
  let aborted = false;

  const done = settle(run, async () => {
    // No byte count here: zstd's report gives it, and take-backup refuses an empty dump.
    provenDump({ aborted, exit: await dumpExit, list: await tocExit }, run.context);
  });
  const abort = (): void => {
    aborted = true;
    killQuietly(child);
    killQuietly(toc);
    run.snapshot.cancel();
  };
  return { stream: null, done, abort };
}

/**
 * A stream destroyed before its end (the pipeline failed without calling abort()) would leave
 * the tool blocked on a full pipe and the snapshot held: stop everything instead.
 */
function abortOnEarlyClose(stream: Transform | PassThrough, abort: () => void): void {
  stream.on('close', () => {
    if (!stream.readableEnded) abort();
  });
}

function directoryDump(run: DumpRun, ctx: BackupContext): RunningDump {
  const dir = path.join(ctx.tempDir, `pgdir-${randomBytes(4).toString('hex')}`);
  const jobs = String(Math.max(1, Math.floor(ctx.jobs)));
  const args = ['--format=directory', `--jobs=${jobs}`, '--compress=0', `--snapshot=${run.snapshot.id}`];
  const stream = new PassThrough();
  let current: ChildProcess | undefined = spawn(run.pgDump, [...args, `--file=${dir}`], {
    env: run.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let aborted = false;
  run.snapshot.counts.catch(() => killQuietly(current));
  const step = async (child: ChildProcess): Promise<ToolExit> => {
    current = child;
    const exit = await watchExit(child, run.password);
    if (aborted) throw dumpError('it was aborted.', run.context);
    return exit;
  };

  const done = settle(run, async () => {
    try {
      const exit = await step(current!);
      if (!succeeded(exit)) throw dumpError(describeExit('pg_dump', exit), run.context);
      const listing = spawn(run.pgRestore, ['--list', dir], {
        env: run.env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const list = await step(listing);
      if (!succeeded(list)) {
        throw dumpError(
          `the table of contents is unreadable (${describeExit('pg_restore --list', list)}).`,
          run.context,
        );
      }
      // GNU tar: members relative to the directory, so it unpacks anywhere.
      const tar = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let bytes = 0;
      tar.stdout?.on('data', (chunk: Buffer) => (bytes += chunk.length));
      tar.stdout?.pipe(stream);
      const tarExit = await step(tar);
      if (!succeeded(tarExit)) throw dumpError(describeExit('tar', tarExit), run.context);
      if (bytes === 0) throw dumpError('tar produced no output.', run.context);
    } catch (err) {
      // As with a single-stream dump, a failed dump's stream just ends; done says why.
      if (!stream.writableEnded) stream.end();
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  const abort = (): void => {
    aborted = true;
    killQuietly(current);
    run.snapshot.cancel();
    stream.destroy();
  };
  abortOnEarlyClose(stream, abort);
  return { stream, done, abort };
}
