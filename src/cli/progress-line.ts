/**
 * A one-line progress display on stderr for long jobs (backup, restore): redrawn at most four
 * times a second, only when stderr is a terminal and output is neither --quiet nor --json, and
 * cleared before anything else is printed.
 */
import type { Output } from './output.js';

export interface ProgressLine {
  update(text: string): void;
  clear(): void;
}

export function progressLine(out: Output, stream: NodeJS.WriteStream = process.stderr): ProgressLine {
  const live = !!stream.isTTY && !out.quiet && !out.json;
  let last = 0;
  let shown = false;
  return {
    update(text) {
      if (!live) return;
      const now = Date.now();
      if (now - last < 250) return;
      last = now;
      const width = Math.max(20, (stream.columns || 80) - 1);
      stream.write(`\r\u001b[2K${text.slice(0, width)}`);
      shown = true;
    },
    clear() {
      if (shown) stream.write('\r\u001b[2K');
      shown = false;
      last = 0;
    },
  };
}
