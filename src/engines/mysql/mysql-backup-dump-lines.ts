/**
 * What one line of a `mariadb-dump` / `mysqldump` SQL dump says, read from its first bytes. The
 * row counter and the `--tables` filter both walk the dump line by line and only ever look at a
 * line's head: data lines can be megabytes long and are never buffered whole.
 *
 * The dump tools write a fixed layout (checked against MariaDB 10.11 and MySQL 8 output):
 *
 *     --
 *     -- Table structure for table `t`
 *     --
 *     DROP TABLE IF EXISTS `t`;
 *     CREATE TABLE `t` (
 *     …
 *     -- Dumping data for table `t`
 *     INSERT INTO `t` VALUES (1,'a'),(2,'b');      (MySQL: one line per statement)
 *     INSERT INTO `t` VALUES                        (MariaDB ≥ 10.11: one row per line)
 *     (1,'a'),
 *     (2,'b');
 *     DELIMITER ;;                                  (triggers, routines, events: bodies may hold
 *     …                                              INSERT lines that are not data)
 *     DELIMITER ;
 *
 * Row values never contain a raw newline (the tools escape it as `\n`), so a line that starts a
 * statement is always at a statement boundary outside the DELIMITER blocks.
 */

/** Longest line head we look at; an identifier is at most 64 characters, quoted and doubled. */
export const lineHeadMax = 1024;

export type DumpLine =
  /** `INSERT INTO \`t\` VALUES …`: row tuples start at `valuesAt` (a byte offset into the head). */
  | { kind: 'insert'; table: string; valuesAt: number }
  | { kind: 'create-table'; table: string }
  | { kind: 'delimiter'; delimiter: string }
  /** A `-- Title` comment; `table` for the two titles that belong to one table. */
  | { kind: 'section'; title: string; table: string | undefined }
  | { kind: 'other' };

const insertPrefix = Buffer.from('INSERT INTO `');
const createPrefix = Buffer.from('CREATE TABLE `');
const valuesWord = Buffer.from(' VALUES');
const tableTitles = ['-- Table structure for table `', '-- Dumping data for table `'];

/**
 * Classify a line from its head (the line's first bytes, without the newline; at most
 * {@link lineHeadMax}). `complete` says whether the head is the whole line.
 */
export function classifyLine(head: Buffer, complete: boolean): DumpLine {
  const first = head[0];
  if (first === 0x49 /* I */ && startsWith(head, insertPrefix)) {
    const ident = readIdent(head, insertPrefix.length);
    if (ident && startsWith(head, valuesWord, ident.end)) {
      const after = ident.end + valuesWord.length;
      const next = head[after];
      // `VALUES` then a space, a newline (MariaDB), or the end of the head.
      if (next === undefined || next === 0x20 || next === 0x28 || next === 0x0d) {
        return { kind: 'insert', table: ident.name, valuesAt: after };
      }
    }
    return { kind: 'other' };
  }
  if (first === 0x43 /* C */ && startsWith(head, createPrefix)) {
    const ident = readIdent(head, createPrefix.length);
    return ident ? { kind: 'create-table', table: ident.name } : { kind: 'other' };
  }
  if (!complete) return { kind: 'other' };
  const text = head.toString('utf8').replace(/\r$/, '');
  if (text.startsWith('DELIMITER ')) return { kind: 'delimiter', delimiter: text.slice(10).trim() };
  if (text.startsWith('-- ')) {
    for (const prefix of tableTitles) {
      if (text.startsWith(prefix)) {
        const ident = readIdent(Buffer.from(text), Buffer.byteLength(prefix));
        return { kind: 'section', title: text, table: ident?.name };
      }
    }
    return { kind: 'section', title: text, table: undefined };
  }
  return { kind: 'other' };
}

/** A backtick-quoted identifier whose opening backtick is just before `start`. */
function readIdent(buf: Buffer, start: number): { name: string; end: number } | undefined {
  let pos = start;
  const parts: Buffer[] = [];
  for (;;) {
    const close = buf.indexOf(0x60, pos);
    if (close < 0) return undefined;
    parts.push(buf.subarray(pos, close));
    if (buf[close + 1] === 0x60) {
      // A doubled backtick stands for one.
      parts.push(buf.subarray(close, close + 1));
      pos = close + 2;
      continue;
    }
    return { name: Buffer.concat(parts).toString('utf8'), end: close + 1 };
  }
}

function startsWith(buf: Buffer, prefix: Buffer, at = 0): boolean {
  return (
    buf.length - at >= prefix.length && buf.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0
  );
}

/**
 * Collects line heads across chunks. Feed it bytes from a line's start; it says when it has
 * enough to classify the line (a newline, or {@link lineHeadMax} bytes).
 */
export class LineHead {
  private parts: Buffer[] = [];
  private length = 0;

  /**
   * Take bytes of the current line from `chunk` at `pos`. Returns undefined when the chunk ran
   * out first (call again with the next chunk); otherwise the head, whether it is the whole line,
   * and where in `chunk` the rest of the line continues (past the newline when complete).
   */
  take(chunk: Buffer, pos: number): { head: Buffer; complete: boolean; next: number } | undefined {
    const room = lineHeadMax - this.length;
    const nl = chunk.indexOf(0x0a, pos);
    if (nl >= 0 && nl - pos <= room) {
      return { head: this.finish(chunk.subarray(pos, nl)), complete: true, next: nl + 1 };
    }
    if (chunk.length - pos < room) {
      // A copy: the caller may reuse the chunk's memory once we return.
      this.parts.push(Buffer.from(chunk.subarray(pos)));
      this.length += chunk.length - pos;
      return undefined;
    }
    return { head: this.finish(chunk.subarray(pos, pos + room)), complete: false, next: pos + room };
  }

  /** The bytes gathered so far (a last line without a newline at the end of the stream). */
  flush(): Buffer | undefined {
    return this.length > 0 ? this.finish(Buffer.alloc(0)) : undefined;
  }

  private finish(last: Buffer): Buffer {
    const head = this.parts.length === 0 ? last : Buffer.concat([...this.parts, last]);
    this.parts = [];
    this.length = 0;
    return head;
  }
}
