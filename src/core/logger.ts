import { redact } from './redact.js';

/** The little logging dbward's library does. Pass your own (pino fits) through `open(…, { logger })`. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Writes warnings to stderr, redacted; debug/info only when `verbose`. */
export function stderrLogger(options: { verbose?: boolean } = {}): Logger {
  const write = (level: string, message: string, fields?: Record<string, unknown>): void => {
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    process.stderr.write(redact(`dbward ${level}: ${message}${extra}`) + '\n');
  };
  return {
    debug: (m, f) => options.verbose && write('debug', m, f),
    info: (m, f) => options.verbose && write('info', m, f),
    warn: (m, f) => write('warn', m, f),
  };
}

/** Discards everything; for tests and embedding. */
export const silentLogger: Logger = { debug: () => {}, info: () => {}, warn: () => {} };
