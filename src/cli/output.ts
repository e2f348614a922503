import { redact, redactedJson } from '../core/redact.js';

/** How the CLI prints: JSON or text, quiet or verbose, colour or not. */
export interface Output {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  /** Write a line to stdout (redacted). */
  line(text?: string): void;
  /** Write progress or notes to stderr (redacted); silent under --quiet. */
  note(text: string): void;
  /** Print a value as JSON on stdout (redacted). */
  printJson(value: unknown): void;
}

export function createOutput(flags: {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
}): Output {
  const color =
    flags.color !== false && !process.env.NO_COLOR && (process.stdout.isTTY || !!process.env.FORCE_COLOR);
  return {
    json: !!flags.json,
    quiet: !!flags.quiet,
    verbose: !!flags.verbose,
    color,
    line: (text = '') => void process.stdout.write(redact(text) + '\n'),
    note(text) {
      if (!flags.quiet) process.stderr.write(redact(text) + '\n');
    },
    printJson: (value) => void process.stdout.write(redactedJson(value) + '\n'),
  };
}

const codes = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
};
export type Style = keyof typeof codes;

/** Wrap text in an ANSI style when colour is on. */
export function paint(out: Pick<Output, 'color'>, style: Style, text: string): string {
  if (!out.color) return text;
  const [open, close] = codes[style];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}

/** Render rows as aligned columns with a header; numbers are right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(visible(h), ...cells.map((r) => visible(r[i] ?? ''))));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const fmt = (r: string[]): string =>
    r
      .map((c, i) => (numeric[i] ? pad(c, widths[i]!, true) : pad(c, widths[i]!, false)))
      .join('  ')
      .trimEnd();
  return [fmt(headers), ...cells.map(fmt)].join('\n');
}

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g;
const visible = (s: string): number => s.replace(ansi, '').length;
const pad = (s: string, width: number, right: boolean): string => {
  const fill = ' '.repeat(Math.max(0, width - visible(s)));
  return right ? fill + s : s + fill;
};

/** 1536 → `1.5 kB`. */
export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 1234567 → `1.2M`; null → `-`. */
export function formatCount(n: number | null): string {
  if (n === null) return '-';
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}
