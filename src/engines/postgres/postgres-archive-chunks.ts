/**
 * Rewrites an uncompressed custom-format archive (`pg_dump -Fc -Z0`, what dbward stores) so each
 * table's data comes in large blocks instead of one block per row.
 *
 * Why: without compression pg_dump writes every COPY row it receives as its own length-prefixed
 * block, and pg_restore sends every block to the server as its own CopyData message — 5.3 M
 * messages for 5.3 M rows. The server's per-message cost made loading such an archive ~20 %
 * slower than loading pg_dump's gzip'd one, whose blocks hold many rows (pre-data + data of a
 * 1.26 GB dump: 15.0 s against 12.3 s, measured). COPY data is a byte stream: merging consecutive
 * blocks of one table changes where messages split it, nothing else.
 *
 * The format (PostgreSQL's pg_backup_archiver.c and pg_backup_custom.c): a header, the table of
 * contents, then data blocks — a block type byte, the entry's dump id, chunks of
 * `<int length><bytes>` ending with a zero length. An int is a sign byte and `intSize` bytes, least
 * significant first. Anything this does not recognise — another archive version, compressed
 * data, large objects, a table of contents that does not parse — is passed through unchanged from
 * that point, which pg_restore reads exactly as before.
 *
 * With `split`, one table's rows are also shared out between several readers of the same archive:
 * part p of n keeps the table's blocks (rows: pg_dump writes one block per COPY row) whose index,
 * in batches of {@link splitBatch}, falls to it, and drops the others, so n pg_restores reading
 * the n rewritten streams load the table together, each with its own COPY. The choice depends on
 * the archive's blocks only, never on how the input is sliced, so the n parts hold every row
 * exactly once. Where that cannot be guaranteed — a block that is not whole lines, data this does
 * not parse before the table's end — the stream fails instead of loading rows twice or not at all.
 *
 * With `only`, the data blocks of tables not in its reader's list are left out altogether (see
 * MergeOptions).
 *
 * Only for a stream: pg_restore 15 reading a merged archive as a seekable FILE loses its place
 * after the first table (it reports an unexpected block id), while from a pipe it restores the
 * same archive byte for byte (tested). dbward only ever streams merged archives.
 */
import { PassThrough, Transform, type TransformCallback, type Writable } from 'node:stream';
import { onDrainOrClose } from './postgres-backup-tools.js';

/** Archive versions whose header and TOC layout this reads (PostgreSQL 12–16: 1.14 and 1.15). */
const minVersion = 0x010e00; // 1.14
const maxVersion = 0x010f00; // 1.15
const blockData = 1;
/** A table of contents larger than this is not looked for further: pass the archive through. */
const headLimit = 64 * 1024 * 1024;
/** The head is parsed again each time it has doubled (a parse starts over from its first byte). */
const firstHeadAttempt = 64 * 1024;

class NeedMore extends Error {}

/** Reads the archive head: header, then TOC; throws NeedMore when `buf` ends first. */
class HeadReader {
  at = 0;
  intSize = 4;
  constructor(private readonly buf: Buffer) {}

  byte(): number {
    if (this.at >= this.buf.length) throw new NeedMore();
    return this.buf[this.at++]!;
  }

  int(): number {
    const negative = this.byte() !== 0;
    let value = 0;
    for (let i = 0; i < this.intSize; i++) value += this.byte() * 2 ** (8 * i);
    return negative ? -value : value;
  }

  skipString(): boolean {
    const length = this.int();
    if (length < 0) return false;
    if (this.at + length > this.buf.length) throw new NeedMore();
    this.at += length;
    return true;
  }
}

/**
 * Where the data blocks start in `buf` and the dump ids that have data, or 'other' for an archive
 * this does not rewrite; throws NeedMore if the head is not complete in `buf`.
 */
function readHead(buf: Buffer): { dataAt: number; intSize: number; dataIds: Set<number> } | 'other' {
  const r = new HeadReader(buf);
  for (const c of 'PGDMP') if (r.byte() !== c.charCodeAt(0)) return 'other';
  const major = r.byte();
  const minor = r.byte();
  const revision = r.byte();
  const version = (major << 16) | (minor << 8) | revision;
  if (version < minVersion || version > maxVersion) return 'other';
  r.intSize = r.byte();
  const offSize = r.byte();
  const format = r.byte();
  if (format !== 1 || r.intSize < 1 || r.intSize > 8) return 'other'; // 1: custom
  const compression = version >= 0x010f00 ? r.byte() : r.int();
  if (compression !== 0) return 'other';
  for (let i = 0; i < 7; i++) r.int(); // creation time
  r.skipString(); // database name
  r.skipString(); // server version
  r.skipString(); // pg_dump version
  const entries = r.int();
  const dataIds = new Set<number>();
  for (let i = 0; i < entries; i++) {
    const dumpId = r.int();
    const hadDumper = r.int();
    if (hadDumper !== 0) dataIds.add(dumpId);
    // tableoid, oid, tag, desc
    for (let s = 0; s < 4; s++) r.skipString();
    r.int(); // section
    // defn, dropStmt, copyStmt, namespace, tablespace, tableam, owner, "false" (WITH OIDS)
    for (let s = 0; s < 8; s++) r.skipString();
    while (r.skipString()); // dependencies, ended by a NULL
    r.byte(); // data offset flag
    for (let b = 0; b < offSize; b++) r.byte();
  }
  return { dataAt: r.at, intSize: r.intSize, dataIds };
}

/** What the next bytes are. */
const enum Expect {
  Head,
  Block,
  /** Chunk lengths and rows of one table's data. */
  Rows,
  /** The rest of a row too large to gather (`#bigRowLeft` bytes), passed on as it comes. */
  BigRow,
  Through,
}

/** A row longer than this is passed on as it comes, not gathered. */
const bigRow = 1024 * 1024;

/** Consecutive blocks of a split table that go to the same part (see the file comment). */
export const splitBatch = 512;

/** One table's rows shared out: this stream keeps part `part` (0-based) of `parts`. */
export interface RowSplit {
  /** The table's TABLE DATA entry (its dump id, as `pg_restore --list` prints first). */
  dumpId: number;
  part: number;
  parts: number;
}

export class SplitError extends Error {}

export interface MergeOptions {
  /**
   * The dump ids whose data this stream's reader loads (its `pg_restore -L` list): other tables'
   * data blocks are left out, header and all. pg_restore reading a pipe looks for each listed
   * entry's block by reading forward, so a block it would skip may as well not come; its reader
   * then gets only its own share of the dump instead of all of it.
   */
  only?: ReadonlySet<number>;
}

/** Where bytes go: an output's index, every output, or nowhere. */
type Target = number;
const everyOutput = -1;
const nowhere = -2;

export class ArchiveChunkMerger extends Transform {
  #expect = Expect.Head;
  #head: Buffer[] = [];
  #headBytes = 0;
  #nextAttempt = firstHeadAttempt;
  /** Set at the end of the input: parse whatever head there is. */
  #ending = false;
  #intSize = 4;
  #dataIds = new Set<number>();
  /** The start of an input that ended inside a header, a length or a row. */
  #carry: Buffer | undefined;
  #bigRowLeft = 0;
  readonly #split: RowSplit | undefined;
  readonly #only: ReadonlySet<number> | undefined;
  /** Distributing (see distributeArchive): the outputs, and the data ids each one loads. */
  readonly #outputs: PassThrough[] | undefined;
  readonly #owners: readonly ReadonlySet<number>[];
  /** Outputs that asked to wait (write() returned false) during the current input. */
  #blocked = new Set<Writable>();
  /** Where the current data block's header, rows and end go (nowhere: a block left out). */
  #blockTo: Target = 0;
  /** In the split table's data; its block count so far; where the current big row goes. */
  #inSplit = false;
  #splitBlocks = 0;
  #splitDone = false;
  #bigRowTo: Target = 0;
  /** Rows gathered into merged chunks (for tests). */
  merged = 0;
  /** Rows of the split table this part dropped (for tests). */
  dropped = 0;

  constructor(split?: RowSplit, options: MergeOptions = {}, owners?: readonly ReadonlySet<number>[]) {
    super();
    this.#split = split;
    this.#only = options.only;
    this.#owners = owners ?? [];
    this.#outputs = owners?.map(() => new PassThrough());
  }

  /** The streams of a distributor (distributeArchive), one per reader; undefined for a merger. */
  get outputs(): readonly PassThrough[] | undefined {
    return this.#outputs;
  }

  /** Where the split table's next block (row) goes: its part's output, or nowhere for a merger of another part. */
  #rowTarget(): Target {
    const split = this.#split!;
    const part = Math.floor(this.#splitBlocks++ / splitBatch) % split.parts;
    if (this.#outputs) return part;
    return part === split.part ? 0 : nowhere;
  }

  /** Where a data block of `id` goes: the output that loads it, or nowhere. */
  #blockTarget(id: number): Target {
    if (this.#outputs) {
      const owner = this.#owners.findIndex((ids) => ids.has(id));
      return owner >= 0 ? owner : nowhere;
    }
    return this.#only && !this.#only.has(id) ? nowhere : 0;
  }

  /** Every output (a merger has one: its own readable side). */
  get #everyone(): Target {
    return this.#outputs ? everyOutput : 0;
  }

  /**
   * Pass `chunk` on. A distributor writes the same buffer to several outputs only where nothing
   * rewrites it afterwards (headers, end markers, data passed through); rows it rewrites in place
   * go to one output each, so the readers never need a copy of the input.
   */
  #emit(to: Target, chunk: Buffer): void {
    if (to === nowhere) return;
    if (!this.#outputs) {
      this.push(chunk);
      return;
    }
    const write = (output: PassThrough): void => {
      if (output.destroyed || output.writableEnded) return;
      if (!output.write(chunk)) this.#blocked.add(output);
    };
    if (to === everyOutput) this.#outputs.forEach(write);
    else write(this.#outputs[to]!);
  }

  /** Rewriting stops here: fatal when a split table's rows are not all accounted for yet. */
  #through(): void {
    if (this.#split && !this.#splitDone) {
      throw new SplitError(
        `cannot share table data (dump id ${this.#split.dumpId}) between loaders: the archive is not one pg_dump -Fc -Z0 wrote.`,
      );
    }
    this.#expect = Expect.Through;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#take(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (this.#blocked.size === 0) return callback();
    // The next input waits until every output that asked for a pause has drained (or is gone).
    let waiting = this.#blocked.size;
    const resume = (): void => {
      if (--waiting === 0) callback();
    };
    for (const output of this.#blocked) onDrainOrClose(output, resume);
    this.#blocked = new Set();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#expect === Expect.Head) {
      // A whole archive smaller than the first attempt: parse it now.
      this.#ending = true;
      try {
        this.#take(Buffer.alloc(0));
      } catch (err) {
        return callback(err as Error);
      }
      if (this.#expect === Expect.Head) {
        try {
          this.#passThrough();
        } catch (err) {
          return callback(err as Error);
        }
      }
    }
    // An archive cut off mid-row ends as it came: pg_restore reports it just as it would have.
    if (this.#carry) this.#emit(this.#everyone, this.#carry);
    if (this.#split && !this.#splitDone) {
      return callback(new SplitError('the archive ended before the shared table’s data did.'));
    }
    for (const output of this.#outputs ?? []) if (!output.destroyed) output.end();
    callback();
  }

  #take(chunk: Buffer): void {
    if (this.#expect === Expect.Through) {
      this.#emit(this.#everyone, chunk);
      return;
    }
    if (this.#expect !== Expect.Head) {
      const used = this.#carry ? this.#finishCarry(chunk) : 0;
      if (used < chunk.length) this.#scan(used > 0 ? chunk.subarray(used) : chunk);
      return;
    }
    this.#head.push(chunk);
    this.#headBytes += chunk.length;
    if (this.#headBytes < this.#nextAttempt && !this.#ending) return;
    this.#nextAttempt = this.#headBytes * 2;
    const head = Buffer.concat(this.#head);
    this.#head = [head];
    let found;
    try {
      found = readHead(head);
    } catch (err) {
      if (!(err instanceof NeedMore)) throw err;
      if (this.#headBytes > headLimit) this.#passThrough();
      return;
    }
    if (found === 'other') return this.#passThrough();
    if (this.#split && !found.dataIds.has(this.#split.dumpId)) {
      throw new SplitError(`cannot share table data: the archive has no data entry ${this.#split.dumpId}.`);
    }
    this.#intSize = found.intSize;
    this.#dataIds = found.dataIds;
    this.#head = [];
    this.#emit(this.#everyone, head.subarray(0, found.dataAt));
    this.#expect = Expect.Block;
    this.#scan(head.subarray(found.dataAt));
  }

  /**
   * Complete the header, length or row the last input ended inside (`#carry`) from the start of
   * `chunk`; returns how many of its bytes that took. Only those bytes are copied behind the carry:
   * copying every input behind the few bytes before it doubled the buffers a restore allocates,
   * and with them the garbage collector's work.
   */
  #finishCarry(chunk: Buffer): number {
    const carry = this.#carry!;
    const intBytes = 1 + this.#intSize;
    let need: number;
    if (this.#expect === Expect.Block) {
      need = 1 + intBytes - carry.length;
    } else {
      // Expect.Rows: a length, and the row it announces.
      const lengthNeed = Math.max(0, intBytes - carry.length);
      need = lengthNeed;
      if (lengthNeed <= chunk.length) {
        const prefix = lengthNeed > 0 ? Buffer.concat([carry, chunk.subarray(0, lengthNeed)]) : carry;
        const length = this.#readInt(prefix, 0);
        if (length > 0 && length <= bigRow) need = intBytes + length - carry.length;
      }
    }
    const take = Math.min(need, chunk.length);
    this.#scan(Buffer.concat([carry, chunk.subarray(0, take)]));
    return take;
  }

  /** Give up rewriting: everything held back, then the rest, unchanged. */
  #passThrough(): void {
    this.#through();
    for (const held of this.#head) this.#emit(this.#everyone, held);
    this.#head = [];
  }

  /**
   * Rows are moved down over the length prefixes in place (copyWithin: no allocation per row), so
   * each input leaves as one merged chunk of the rows it completed.
   */
  #scan(data: Buffer): void {
    this.#carry = undefined;
    const intBytes = 1 + this.#intSize;
    let at = 0;
    while (at < data.length) {
      if (this.#expect === Expect.Through) {
        this.#emit(this.#everyone, data.subarray(at));
        return;
      }
      if (this.#expect === Expect.BigRow) {
        const n = Math.min(this.#bigRowLeft, data.length - at);
        this.#emit(this.#bigRowTo, data.subarray(at, at + n));
        at += n;
        this.#bigRowLeft -= n;
        if (this.#bigRowLeft === 0) this.#expect = Expect.Rows;
        continue;
      }
      if (this.#expect === Expect.Block) {
        if (data.length - at < 1 + intBytes) break;
        const id = data[at] === blockData ? this.#readInt(data, at + 1) : -1;
        if (!this.#dataIds.has(id)) {
          // Large objects or something unexpected: the rest goes through as it is.
          this.#through();
          continue;
        }
        this.#inSplit = this.#split?.dumpId === id;
        this.#blockTo = this.#inSplit ? this.#everyone : this.#blockTarget(id);
        this.#emit(this.#blockTo, data.subarray(at, at + 1 + intBytes));
        at += 1 + intBytes;
        this.#expect = Expect.Rows;
        continue;
      }
      // Expect.Rows: gather complete rows bound for one output at data[start + intBytes, out),
      // behind one length prefix written over the first row's own (one chunk per input and
      // output: no small writes). A row bound elsewhere ends the gathering; it starts again at
      // that row, so what is passed on never overlaps what is rewritten later.
      let start = at;
      let out = at + intBytes;
      let to: Target = nowhere;
      const pass = (): void => {
        if (out === start + intBytes) return;
        this.#writeLength(data, start, out - start - intBytes);
        this.#emit(to, data.subarray(start, out));
      };
      let ended = false;
      while (data.length - at >= intBytes) {
        const length = this.#readInt(data, at);
        if (length <= 0 || length > bigRow) {
          ended = true;
          break;
        }
        if (data.length - at - intBytes < length) break;
        let rowTo = this.#blockTo;
        if (this.#inSplit) {
          // Whole lines only, or the parts would cut rows in two.
          if (data[at + intBytes + length - 1] !== 0x0a) {
            throw new SplitError(
              `cannot share table data (dump id ${this.#split!.dumpId}) between loaders: a data block is not whole rows.`,
            );
          }
          // pg_dump ends COPY data with a "\." line (its own block, which every part needs);
          // a row never starts so (COPY writes a backslash in data as two).
          const terminator = data[at + intBytes] === 0x5c && data[at + intBytes + 1] === 0x2e;
          rowTo = terminator ? this.#everyone : this.#rowTarget();
        }
        if (rowTo === nowhere) {
          // Left out (another part's row, or a table this reader does not load): gathering
          // goes on over it.
          at += intBytes + length;
          if (this.#inSplit) this.dropped += 1;
          continue;
        }
        if (rowTo !== to) {
          pass();
          start = at;
          out = at + intBytes;
          to = rowTo;
        }
        data.copyWithin(out, at + intBytes, at + intBytes + length);
        out += length;
        at += intBytes + length;
        this.merged += 1;
      }
      pass();
      if (!ended) break;
      const length = this.#readInt(data, at);
      if (length === 0) {
        this.#emit(this.#blockTo, data.subarray(at, at + intBytes));
        at += intBytes;
        this.#expect = Expect.Block;
        if (this.#inSplit) this.#splitDone = true;
        this.#inSplit = false;
      } else if (length > bigRow) {
        this.#bigRowTo = this.#inSplit ? this.#rowTarget() : this.#blockTo;
        if (this.#bigRowTo === nowhere && this.#inSplit) this.dropped += 1;
        this.#emit(this.#bigRowTo, data.subarray(at, at + intBytes));
        at += intBytes;
        this.#bigRowLeft = length;
        this.#expect = Expect.BigRow;
      } else {
        this.#through(); // a negative length: not ours to interpret
      }
    }
    if (at < data.length) this.#carry = Buffer.from(data.subarray(at));
  }

  #readInt(buf: Buffer, at: number): number {
    let value: number;
    if (this.#intSize === 4) {
      // The usual size, read without a loop: this runs once per row (millions per gigabyte).
      value = buf[at + 1]! | (buf[at + 2]! << 8) | (buf[at + 3]! << 16);
      value += buf[at + 4]! * 0x1000000;
    } else {
      value = 0;
      for (let i = 0; i < this.#intSize; i++) value += buf[at + 1 + i]! * 2 ** (8 * i);
    }
    return buf[at] !== 0 ? -value : value;
  }

  /** Write an archive int at `buf[at]`: a zero sign byte, then `length` least significant byte first. */
  #writeLength(buf: Buffer, at: number, length: number): void {
    buf[at] = 0;
    let value = length;
    for (let i = 0; i < this.#intSize; i++) {
      buf[at + 1 + i] = value & 0xff;
      value = Math.floor(value / 256);
    }
  }
}

/**
 * A Transform that merges an uncompressed custom-format archive's per-row data blocks. It moves
 * rows within the buffers it is given (no copy per row): give it buffers nobody else reads, as a
 * process's stdout hands them over.
 */
export function mergeArchiveChunks(split?: RowSplit, options?: MergeOptions): ArchiveChunkMerger {
  return new ArchiveChunkMerger(split, options);
}

/**
 * One reader of the archive for several pg_restores (restore -j N with a split table): the
 * archive is parsed once, and `outputs[i]` carries what reader i loads — the head, the data
 * blocks of the dump ids in `owners[i]`, and part i of the split table's rows (`split.part` is
 * ignored) — merged as by mergeArchiveChunks. Each input buffer is rewritten in place once, and
 * its pieces go to their readers without a copy (several mergers of one stream each needed their
 * own copy of every input; the garbage collector then ran back to back). The input waits while
 * an output is full; an output destroyed early (its reader is done) is skipped.
 */
export function distributeArchive(
  split: RowSplit | undefined,
  owners: readonly ReadonlySet<number>[],
): ArchiveChunkMerger & { readonly outputs: readonly PassThrough[] } {
  const distributor = new ArchiveChunkMerger(split, {}, owners);
  distributor.resume(); // its own readable side carries nothing
  return distributor as ArchiveChunkMerger & { readonly outputs: readonly PassThrough[] };
}
