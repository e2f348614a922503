/**
 * Plumbing for backup roles that make the dump in the background and hand it over as a stream
 * (Redis and SQLite: a checked file, then its bytes). Engine-neutral; see backup-role.ts.
 */
import { createReadStream } from 'node:fs';
import type { PassThrough } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { DumpOutcome, RunningDump } from './backup-role.js';

/** The running dump of `stream`, fed by the work behind `done`; `abort` stops that work. */
export function runningDump(stream: PassThrough, done: Promise<DumpOutcome>, abort: () => void): RunningDump {
  // The caller may learn of a failure from the stream first; done must not become unhandled.
  done.catch(() => undefined);
  return { stream, done, abort };
}

/** Send the finished dump `file` through `stream`, resolving once the reader has read it all. */
export async function sendDumpFile(file: string, stream: PassThrough): Promise<void> {
  await pipeline(createReadStream(file), stream);
  // pipeline settles when the bytes are handed over; done waits until they were read.
  await finished(stream);
}

/**
 * Fail the outgoing stream. With nobody listening for 'error' (the reader is not attached yet,
 * or already gone) an error event would crash the process; done carries the reason either way.
 */
export function endWithError(stream: PassThrough, error: Error): void {
  if (stream.destroyed) return;
  stream.destroy(stream.listenerCount('error') > 0 ? error : undefined);
}
