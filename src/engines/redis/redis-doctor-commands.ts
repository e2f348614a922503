/**
 * Commands for the Redis doctor collector, each bounded by the statement timeout (Redis has no
 * server-side one, so the client stops waiting: the reply, if it ever comes, is ignored), and
 * each classified when it fails: refused by ACL, renamed away, timed out, or another error. A
 * refused command becomes a skipped check, never a failure of doctor.
 */
import { QueryError } from '../../core/errors.js';
import type { KeyValueConnection } from '../contract.js';

export type CommandFailure = 'denied' | 'unknown' | 'timeout' | 'error';

export type Attempt<T> = { ok: true; value: T } | { ok: false; failure: CommandFailure; message: string };

export class TimedCommands {
  readonly #conn: KeyValueConnection;
  readonly #timeoutMs: number;

  constructor(conn: KeyValueConnection, timeoutMs: number) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** One command under the timeout; throws its error (a QueryError with sqlState TIMEOUT on timeout). */
  run(name: string, ...args: (string | number)[]): Promise<unknown> {
    return this.bounded(this.#conn.command(name, ...args), `${name} ${String(args[0] ?? '')}`.trim());
  }

  /**
   * Several commands sent together (ioredis pipelines commands issued in the same tick: one round
   * trip), bounded by one timer for the batch.
   */
  batch(commands: (string | number)[][]): Promise<unknown[]> {
    const replies = commands.map(([name, ...args]) => this.#conn.command(String(name), ...args));
    return this.bounded(Promise.all(replies), `${String(commands[0]?.[0] ?? '')} batch`);
  }

  /** Like run, but a failure is returned and classified instead of thrown. */
  async attempt<T = unknown>(name: string, ...args: (string | number)[]): Promise<Attempt<T>> {
    try {
      return { ok: true, value: (await this.run(name, ...args)) as T };
    } catch (err) {
      return { ok: false, failure: classify(err), message: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Race `promise` against the statement timeout. */
  bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    // The loser of the race may still reject later; that must not become an unhandled rejection.
    promise.catch(() => undefined);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new QueryError(`Redis ${what.toUpperCase()}: no reply within ${this.#timeoutMs} ms`, {
              sqlState: 'TIMEOUT',
              hint: 'The server is busy or stuck (a slow command, a big key being deleted, swapping); raise the timeout only if it is merely slow.',
              context: { engine: 'redis', operation: 'doctor' },
            }),
          ),
        this.#timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** Why a command failed: ACL NOPERM, a command renamed or missing, our timer, or anything else. */
export function classify(err: unknown): CommandFailure {
  const state = err instanceof QueryError ? err.sqlState : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (state === 'TIMEOUT') return 'timeout';
  if (state === 'NOPERM' || /\bNOPERM\b/.test(message)) return 'denied';
  if (/unknown command|unknown subcommand/i.test(message)) return 'unknown';
  return 'error';
}

/** A failure, worded for `skipped.reason`. */
export function failureReason(what: string, failure: CommandFailure, message: string): string {
  switch (failure) {
    case 'denied':
      return `${what} is not allowed for this user (ACL)`;
    case 'unknown':
      return `${what} is disabled or renamed on this server`;
    case 'timeout':
      return `${what} did not answer within the statement timeout`;
    default:
      return `${what} failed: ${message}`;
  }
}
