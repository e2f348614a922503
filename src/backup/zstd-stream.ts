/**
 * zstd compression as Node streams, by running the `zstd` binary (Debian package `zstd`) and piping
 * through it. Nothing is held in memory beyond the streams' buffers: a dump of any size flows
 * through with backpressure in both directions.
 *
 * The readable side ends only after zstd has exited with status 0, so a consumer that sees the end
 * of the stream has a complete result; any other exit, a missing binary or a signal destroys the
 * stream with a {@link DbwardError} carrying the tail of zstd's stderr. Destroying the stream (which
 * `stream.pipeline` does when any other stream in the pipeline fails) kills the child, and the
 * destroy completes only once the child has been reaped.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Duplex } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { DbwardError } from '../core/errors.js';

export const zstdInstallHint =
  'Install zstd (Debian/Ubuntu: apt-get install zstd; macOS: brew install zstd), or run scripts/install-deps.sh.';

/** The default compression level: zstd's own default, fast and a good ratio for dumps. */
export const defaultZstdLevel = 3;

/** How much of zstd's stderr an error message carries. */
const stderrTailBytes = 2048;

export interface ZstdCompressOptions {
  /** Compression level 1–22 (levels above 19 add `--ultra`). Default 3. */
  level?: number;
  /** Worker threads (`-T`); 0 means one per core. Default 0. */
  threads?: number;
  /** The zstd executable. Default `zstd` from PATH. */
  command?: string;
}

export interface ZstdDecompressOptions {
  /** The zstd executable. Default `zstd` from PATH. */
  command?: string;
}

/** A Duplex over a running zstd process: write input, read output. */
export class ZstdStream extends Duplex {
  /** The zstd process id (undefined if it could not be started). */
  readonly pid: number | undefined;
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly #command: string;
  readonly #operation: string;
  #stderrTail: Buffer = Buffer.alloc(0);
  #exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #stdoutEnded = false;
  #inputEnded = false;
  #stdinError: Error | undefined;
  #spawnError: NodeJS.ErrnoException | undefined;
  #handedOver = false;
  /** Every line zstd printed (a compressor prints a handful with -vv); for its size report. */
  #report = '';

  constructor(command: string, args: string[], operation: string) {
    super({ allowHalfOpen: true });
    this.#command = command;
    this.#operation = operation;
    this.#child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    this.pid = this.#child.pid;
    const child = this.#child;

    child.on('error', (err: NodeJS.ErrnoException) => {
      this.#spawnError = err;
      this.destroy(startError(this.#command, this.#operation, err));
    });
    // EPIPE and friends when zstd stops reading; the exit status tells the real story.
    child.stdin.on('error', (err) => {
      this.#stdinError = err;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderrTail = keepTail(this.#stderrTail, chunk);
      if (operation === 'compress' && this.#report.length < reportLimit)
        this.#report += chunk.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    child.stdout.on('end', () => {
      this.#stdoutEnded = true;
      this.#maybeFinish();
    });
    child.on('close', (code, signal) => {
      this.#exited = { code, signal };
      this.#maybeFinish();
    });
  }

  override _read(): void {
    this.#child.stdout.resume();
  }

  /**
   * Hand zstd's stdin to another process instead of writing into it: pass the returned stream as
   * that process's stdout when spawning it, then call the returned `release()` (node's own handle
   * must close, or zstd never sees the end of its input). The raw bytes then go from the tool to
   * zstd without passing through node, and only the compressed output is read here.
   */
  handOverInput(): { stdin: Writable; release: () => void } {
    this.#handedOver = true;
    this.#inputEnded = true;
    const stdin = this.#child.stdin;
    return { stdin, release: () => stdin.destroy() };
  }

  /** Undo handOverInput() before anything was handed over: node writes the input after all. */
  takeBackInput(): void {
    this.#handedOver = false;
    this.#inputEnded = false;
  }

  /**
   * The sizes zstd reported at its end (compressors run with -vv, which prints them exactly:
   * "(N B => M B, …)"; zstd 1.4 says "(N => M bytes, …)"), once it exited 0; undefined when it
   * printed no report.
   */
  reportedSizes(): { raw: number; compressed: number } | undefined {
    const match = /\(\s*(\d+)(?: B)? =>\s*(\d+)(?: B| bytes),/.exec(this.#report);
    return match ? { raw: Number(match[1]), compressed: Number(match[2]) } : undefined;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#child.stdin.destroyed) {
      callback(this.#stdinError ?? new Error('zstd stopped reading its input'));
      return;
    }
    if (this.#child.stdin.write(chunk)) callback();
    else this.#child.stdin.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#handedOver) return callback();
    this.#inputEnded = true;
    this.#child.stdin.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const child = this.#child;
    const running = child.exitCode === null && child.signalCode === null && this.#spawnError === undefined;
    child.stdin.destroy();
    child.stdout.destroy();
    if (!running || this.#exited) {
      callback(error);
      return;
    }
    // Complete the destroy only once the child is gone (and reaped by Node), so no zstd outlives
    // a failed pipeline.
    child.once('close', () => callback(error));
    child.kill('SIGKILL');
  }

  #maybeFinish(): void {
    const exited = this.#exited;
    if (!exited || this.destroyed) return;
    if (exited.code !== 0) {
      this.destroy(exitError(this.#operation, exited, this.#stderrTail));
      return;
    }
    if (!this.#inputEnded) {
      this.destroy(
        new DbwardError('E_ZSTD_FAILED', `zstd (${this.#operation}) exited before its input ended.`, {
          context: { operation: this.#operation },
        }),
      );
      return;
    }
    if (this.#stdinError) {
      this.destroy(
        exitError(this.#operation, { code: 0, signal: null }, this.#stderrTail, this.#stdinError.message),
      );
      return;
    }
    if (this.#stdoutEnded) this.push(null);
  }
}

/** Enough for -vv's few lines; a zstd that prints more is cut off (the report comes last anyway). */
const reportLimit = 64 * 1024;

/** The lines -vv prints on every run (banner, settings), which say nothing about a failure. */
const chatter =
  /^(\*\*\* Zstandard CLI|Note: \d+ physical core|--zstd=|--format=|Using stdin|Using stdout|Decompression will require|\/\*stdin\*\\\s*: *(\d+\.\d+%|Completed in))/;

function keepTail(tail: Buffer, chunk: Buffer): Buffer {
  const joined = Buffer.concat([tail, chunk]);
  return joined.subarray(Math.max(0, joined.length - stderrTailBytes));
}

function startError(command: string, operation: string, err: NodeJS.ErrnoException): DbwardError {
  if (err.code === 'ENOENT') {
    return new DbwardError('E_ZSTD_MISSING', `The zstd program was not found (${command}).`, {
      hint: zstdInstallHint,
      cause: err,
      context: { operation },
    });
  }
  return new DbwardError('E_ZSTD_FAILED', `Could not run ${command}: ${err.message}`, {
    hint: zstdInstallHint,
    cause: err,
    context: { operation },
  });
}

function exitError(
  operation: string,
  exit: { code: number | null; signal: NodeJS.Signals | null },
  stderrTail: Buffer,
  extra?: string,
): DbwardError {
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
  const stderr = stderrTail
    .toString('utf8')
    .split('\n')
    .filter((line) => !chatter.test(line.trim()))
    .join('\n')
    .trim();
  const detail = [stderr, extra].filter(Boolean).join('; ');
  return new DbwardError('E_ZSTD_FAILED', `zstd (${operation}) ${how}${detail ? `: ${detail}` : '.'}`, {
    hint:
      operation === 'decompress'
        ? 'The input is not a complete zstd stream: the artifact is truncated or corrupted, or it is not zstd.'
        : undefined,
    context: { operation },
  });
}

/** A zstd decompressor whose output goes straight into another process's stdin. */
export interface ZstdPipe {
  /** Write the zstd stream here; end it to finish. */
  stdin: Writable;
  /**
   * Resolves once zstd exited 0; rejects with E_ZSTD_FAILED (a truncated or corrupted input) —
   * or, when the reader went away first (zstd died of SIGPIPE / a write error), with an error
   * coded EPIPE, which pipeline-errors treats as an echo of the reader's own failure.
   */
  exited: Promise<void>;
  kill(): void;
}

/**
 * Decompress into `out`, the stdin of a process the caller spawned (`child.stdin`): zstd gets that
 * pipe as its stdout, so the raw bytes go from zstd to the tool without passing through node —
 * at gigabytes per restore, node copying them costs a core-second or more. The caller's handle on
 * `out` is closed here, so the tool sees end-of-input when zstd exits.
 */
export function decompressInto(out: Writable, options: ZstdDecompressOptions = {}): ZstdPipe {
  const command = options.command ?? 'zstd';
  const child = spawn(command, ['-d', '-q', '-c'], {
    stdio: ['pipe', out as Writable & { fd?: number }, 'pipe'],
  });
  out.destroy();
  let tail: Buffer = Buffer.alloc(0);
  let killed = false;
  child.stderr.on('data', (chunk: Buffer) => {
    tail = keepTail(tail, chunk);
  });
  child.stdin.on('error', () => undefined); // the exit status tells the story
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => reject(startError(command, 'decompress', err)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const text = tail.toString('utf8');
      // The reader went away: a pipe says "broken pipe"; node's child stdio is a socket pair,
      // where the same thing reads "connection reset by peer".
      if (killed || signal === 'SIGPIPE' || /broken pipe|connection reset by peer/i.test(text)) {
        const why = killed ? 'zstd was stopped' : 'zstd: the reader stopped reading';
        return reject(Object.assign(new Error(why), { code: 'EPIPE' }));
      }
      reject(exitError('decompress', { code, signal }, tail));
    });
  });
  exited.catch(() => undefined);
  return {
    stdin: child.stdin,
    exited,
    kill: () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    },
  };
}

/** Compress: write raw bytes, read a zstd stream (`zstd -q -c -T0 -3`). */
export function createZstdCompressStream(options: ZstdCompressOptions = {}): ZstdStream {
  const level = options.level ?? defaultZstdLevel;
  const threads = options.threads ?? 0;
  if (!Number.isInteger(level) || level < 1 || level > 22) {
    throw new DbwardError(
      'E_ZSTD_LEVEL',
      `zstd level must be an integer from 1 to 22, not ${String(level)}.`,
    );
  }
  if (!Number.isInteger(threads) || threads < 0) {
    throw new DbwardError(
      'E_ZSTD_THREADS',
      `zstd threads must be 0 (one per core) or more, not ${String(threads)}.`,
    );
  }
  // -vv for the exact size report at the end (reportedSizes); --no-progress keeps it to that.
  const args = [
    '-vv',
    '--no-progress',
    '-c',
    `-T${threads}`,
    ...(level > 19 ? ['--ultra'] : []),
    `-${level}`,
  ];
  return new ZstdStream(options.command ?? 'zstd', args, 'compress');
}

/** Decompress: write a zstd stream, read raw bytes. A truncated or corrupted input is an error. */
export function createZstdDecompressStream(options: ZstdDecompressOptions = {}): ZstdStream {
  return new ZstdStream(options.command ?? 'zstd', ['-d', '-q', '-c'], 'decompress');
}

/** The installed zstd's version, e.g. `1.5.4` (recorded in backup manifests). */
export function zstdVersion(options: { command?: string } = {}): Promise<string> {
  const command = options.command ?? 'zstd';
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (out += s));
    child.stderr.on('data', (s: string) => (out += s));
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(
        new DbwardError(
          err.code === 'ENOENT' ? 'E_ZSTD_MISSING' : 'E_ZSTD_FAILED',
          err.code === 'ENOENT'
            ? `The zstd program was not found (${command}).`
            : `Could not run ${command}: ${err.message}`,
          { hint: zstdInstallHint, cause: err },
        ),
      );
    });
    child.on('close', (code) => {
      const match = /v(\d+\.\d+\.\d+)/.exec(out);
      if (code === 0 && match?.[1]) resolve(match[1]);
      else
        reject(
          new DbwardError(
            'E_ZSTD_FAILED',
            `Could not read the zstd version: ${out.trim() || `exit ${code}`}`,
            {
              hint: zstdInstallHint,
            },
          ),
        );
    });
  });
}
