import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import { redact } from './redact.js';

/** Context that helps a user place an error: which target, engine and operation. */
export interface ErrorContext {
  target?: string;
  engine?: string;
  operation?: string;
}

/**
 * The base of every error dbward throws on purpose. `message` says what went wrong, `hint` says
 * what to do about it, `exitCode` is what the CLI exits with. Messages are redacted at
 * construction so a password can never escape through `err.message`.
 */
export class DbwardError extends Error {
  readonly code: string;
  readonly exitCode: ExitCodeValue;
  readonly hint: string | undefined;
  readonly context: ErrorContext;

  constructor(
    code: string,
    message: string,
    options: { hint?: string; exitCode?: ExitCodeValue; cause?: unknown; context?: ErrorContext } = {},
  ) {
    super(redact(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = options.exitCode ?? ExitCode.failed;
    this.hint = options.hint === undefined ? undefined : redact(options.hint);
    this.context = options.context ?? {};
  }

  /** A plain, redacted object for `--json` output. */
  toJSON(): { code: string; message: string; hint?: string; exitCode: number } & ErrorContext {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      exitCode: this.exitCode,
      ...this.context,
    };
  }
}

/** The command line was wrong (unknown option, missing argument, bad value). Exit 2. */
export class UsageError extends DbwardError {
  constructor(message: string, hint?: string) {
    super('E_USAGE', message, { hint, exitCode: ExitCode.usage });
  }
}

/** The configuration is wrong: a missing or invalid file, URL or key. Exit 2. */
export class ConfigError extends DbwardError {
  readonly file: string | undefined;
  readonly key: string | undefined;

  constructor(
    message: string,
    options: { hint?: string; file?: string; key?: string; cause?: unknown } = {},
  ) {
    super('E_CONFIG', message, { hint: options.hint, exitCode: ExitCode.usage, cause: options.cause });
    this.file = options.file;
    this.key = options.key;
  }
}

/**
 * Why a connection failed, as far as we can tell. Each kind has a fixed explanation and fix in
 * `src/core/connection-diagnosis.ts`; engines map driver errors to a kind.
 */
export type ConnectionFailureKind =
  | 'refused'
  | 'unknown-host'
  | 'timeout'
  | 'no-hba-entry'
  | 'auth-failed'
  | 'unknown-database'
  | 'too-many-connections'
  | 'permission-denied'
  | 'file-missing'
  | 'file-locked'
  | 'not-a-database'
  | 'tls'
  | 'unknown';

/** A database could not be reached or refused us. Exit 3. */
export class ConnectionError extends DbwardError {
  readonly kind: ConnectionFailureKind;

  constructor(
    kind: ConnectionFailureKind,
    message: string,
    options: { hint?: string; cause?: unknown; context?: ErrorContext } = {},
  ) {
    super(`E_CONNECT_${kind.toUpperCase().replace(/-/g, '_')}`, message, {
      ...options,
      exitCode: ExitCode.cannotConnect,
    });
    this.kind = kind;
  }

  override toJSON(): ReturnType<DbwardError['toJSON']> & { kind: ConnectionFailureKind } {
    return { ...super.toJSON(), kind: this.kind };
  }
}

/** An engine or role that exists in the registry but cannot be used here (yet). Exit 2. */
export class NotAvailableError extends DbwardError {
  constructor(message: string, hint?: string, context?: ErrorContext) {
    super('E_NOT_AVAILABLE', message, { hint, exitCode: ExitCode.usage, context });
  }
}

/** A statement or operation failed on a reachable server. Carries what the server said. Exit 1. */
export class QueryError extends DbwardError {
  readonly sqlState: string | undefined;
  readonly detail: string | undefined;
  readonly position: number | undefined;

  constructor(
    message: string,
    options: {
      sqlState?: string;
      detail?: string;
      hint?: string;
      position?: number;
      cause?: unknown;
      context?: ErrorContext;
    } = {},
  ) {
    super('E_QUERY', message, { hint: options.hint, cause: options.cause, context: options.context });
    this.sqlState = options.sqlState;
    this.detail = options.detail === undefined ? undefined : redact(options.detail);
    this.position = options.position;
  }
}

/** True for errors dbward threw on purpose (as opposed to bugs). */
export function isDbwardError(err: unknown): err is DbwardError {
  return err instanceof DbwardError;
}
