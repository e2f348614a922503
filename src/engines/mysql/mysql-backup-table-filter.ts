/**
 * `restore --tables` for a SQL dump: a streaming filter that keeps the dump's header (session
 * settings), the sections of the chosen tables (structure, data and that table's triggers), and
 * the trailer lines that put the session settings back; it drops every other table, the views,
 * routines, events and sequences.
 *
 * The dump tools open each section with a fixed comment (`-- Table structure for table \`t\``,
 * `-- Dumping data for table \`t\``, `-- Dumping routines for database 'db'`, …); everything up to
 * the next such comment belongs to it. Decisions are made on line heads only (see
 * mysql-backup-dump-lines.ts), so long data lines pass or drop without being buffered.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { classifyLine, LineHead } from './mysql-backup-dump-lines.js';

// Comments that start a new section of the dump; other `-- ` lines (header, blank comments) do not.
const sectionTitle =
  /^-- (?:Table structure for table|Dumping data for table|Temporary (?:table|view) structure for view|Final view structure for view|Dumping events for database|Dumping routines for database|Sequence structure for|Current Database:)/;
// The trailer's `/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;` lines, which undo the header's settings.
const restoreSetting = /^\/\*!\d+ SET \w+\s*=\s*@OLD_\w+ \*\/;/;
const newline = Buffer.from('\n');

export class DumpTableFilter extends Transform {
  /** Tables whose sections were kept. */
  readonly kept = new Set<string>();
  private keep = true;
  private state: 'head' | 'pass' | 'drop' = 'head';
  private readonly head = new LineHead();

  /** `wanted(table)`: whether to keep the section of that table (its unqualified name). */
  constructor(private readonly wanted: (table: string) => boolean) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      if (this.state !== 'head') {
        const nl = chunk.indexOf(0x0a, pos);
        const end = nl < 0 ? n : nl + 1;
        if (this.state === 'pass') this.push(chunk.subarray(pos, end));
        pos = end;
        if (nl >= 0) this.state = 'head';
        continue;
      }
      const got = this.head.take(chunk, pos);
      if (!got) break;
      pos = got.next;
      const keepLine = this.decide(got.head, got.complete);
      if (keepLine) {
        this.push(got.head);
        if (got.complete) this.push(newline);
      }
      if (!got.complete) this.state = keepLine ? 'pass' : 'drop';
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const head = this.head.flush();
    if (head && this.decide(head, true)) this.push(head);
    callback();
  }

  private decide(head: Buffer, complete: boolean): boolean {
    const line = classifyLine(head, complete);
    if (line.kind === 'section') {
      if (sectionTitle.test(line.title)) {
        this.keep = line.table !== undefined && this.wanted(line.table);
        if (this.keep && line.table !== undefined) this.kept.add(line.table);
      }
      return this.keep || line.title.startsWith('-- Dump completed');
    }
    if (this.keep) return true;
    return complete && line.kind === 'other' && restoreSetting.test(head.toString('latin1'));
  }
}
