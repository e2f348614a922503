/**
 * The backup role: how one engine dumps a database to a byte stream, proves the dump complete,
 * and loads such a stream back — into a throwaway place for verification, or into a target for a
 * restore. Everything around it (compression, encryption, hashing, storage, manifests, retention)
 * is engine-neutral and lives in src/backup/.
 *
 * Rules every implementation keeps:
 * - **Streaming.** Never hold a whole dump in memory (peak RSS stays under ~150 MB whatever the
 *   database size). Temporary files are allowed where a tool needs a seekable file
 *   (`pg_restore -j`, a SQLite file, an RDB for a temporary redis-server); they go under
 *   `ctx.tempDir` and are removed before the promise settles.
 * - **Secrets.** Passwords reach tools through environment variables (PGPASSWORD, REDISCLI_AUTH)
 *   or a 0600 option file, never argv. Tool stderr quoted in errors has the password taken out.
 * - **Errors** are DbwardErrors with the codes below, one readable message, and a hint.
 */
import type { Readable, Transform, Writable } from 'node:stream';
import type { ConnectionSpec } from '../core/connection-spec.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import type { EngineConnection } from './contract.js';

/** Error codes of this role (all DbwardError, exit code 1 unless said otherwise). */
export const backupRoleErrors = {
  /** The dump or restore tool is missing or older than the server. */
  tool: 'E_BACKUP_TOOL',
  /** The dump tool failed, produced nothing, or its output lacks the engine's end marker. */
  dump: 'E_BACKUP_DUMP',
  /** Loading a dump failed (verification or restore). */
  restore: 'E_BACKUP_RESTORE',
} as const;

/** One table (or Redis database / key group) and its exact row (key) count in the backup. */
export interface BackupTableCount {
  /** Qualified where the engine has schemas: `public.orders`; `app.users` on MySQL; `db0` on Redis. */
  name: string;
  rows: number;
}

export interface BackupToolInfo {
  /** e.g. `pg_dump`, `mariadb-dump`, `sqlite-backup-api`, `redis-cli`. */
  name: string;
  /** The tool's own version, e.g. `15.19`, `10.11.19-MariaDB`, the SQLite library version. */
  version: string;
}

export interface BackupContext {
  target: Target;
  spec: ConnectionSpec;
  logger: Logger;
  /** A private directory for temporary files, removed by the caller afterwards. */
  tempDir: string;
  /**
   * Parallel dump workers, when the engine supports it (`pg_dump -Fd -j N`); 1 = the default
   * single-stream format.
   */
  jobs: number;
  /**
   * The compressor's input, for a dump tool that can write its raw output there itself (the raw
   * dump then never passes through node; the dump's stream is null). Absent: return a stream.
   */
  directOutput?: DirectOutput;
}

/** See BackupContext.directOutput. */
export interface DirectOutput {
  /** Pass as the tool's stdout (spawn's stdio[1]), then call release(). */
  stdin: Writable;
  /** Close node's own handle on `stdin` once the tool has it, or the compressor never ends. */
  release(): void;
  /**
   * Feed the head of the raw dump, decompressed again from the compressor's first output, into
   * `sink` (a checker's stdin, like `pg_restore --list`): up to a cap, never slowing the backup,
   * and no longer once the checker stops reading. The checker's exit status is the proof.
   */
  pipeHeadInto(sink: Writable): void;
}

export interface BackupPlan {
  serverVersion: string;
  tool: BackupToolInfo;
  /**
   * The raw artifact's extension before `.zst`/`.enc`, saying what format it is: `pgdump`
   * (pg_dump custom format), `pgdir.tar` (pg_dump directory format in a tar), `sql`, `sqlite`, `rdb`.
   */
  extension: string;
}

/** What a finished dump proved and counted. */
export interface DumpOutcome {
  /** Exact counts as of the dump's snapshot. */
  tables: BackupTableCount[];
}

/** A dump in progress. */
export interface RunningDump {
  /**
   * The raw dump bytes (before compression). Read it to the end. null when the tool writes into
   * BackupContext.directOutput instead.
   */
  stream: Readable | null;
  /**
   * Settles once the stream has ended, the tool has exited and the end marker was checked:
   * resolves with the counts, or rejects with E_BACKUP_DUMP (tool exit code, empty output,
   * missing end marker — saying which).
   */
  done: Promise<DumpOutcome>;
  /** Stop the dump (kill the tool, end sessions), because something else in the pipeline failed. */
  abort(): void;
}

export interface LoadContext {
  /** Where the dump goes: a scratch database's target, or the restore target. */
  target: Target;
  spec: ConnectionSpec;
  logger: Logger;
  /** A private directory for temporary files, removed by the caller afterwards. */
  tempDir: string;
  /** The raw format (the plan's extension at backup time). */
  extension: string;
  /** Parallel restore workers where the tool supports them (`pg_restore -j`). */
  jobs: number;
  /** Only these tables (names as in the manifest); undefined = everything. */
  tables?: string[];
  /**
   * Set by restore when the role asked for it with {@link BackupRole.wantsFile}: the raw dump,
   * already checked and written to this local file during the check pass. The `source` stream
   * reads the same file; a role may instead hand the path to its tool (`pg_restore -j file`).
   */
  file?: string;
  /** Bytes of raw input loaded so far, for progress bars (called often; cheap). */
  onProgress?: (rawBytes: number) => void;
  /**
   * Set by restore: whether the destination held nothing (so nothing needs replacing). Undefined
   * when unknown, as in verification's fresh scratch copy.
   */
  targetEmpty?: boolean;
  /**
   * Set by restore (with no `file`): instead of reading `source`, send the raw dump straight into a
   * tool's stdin — pass the `child.stdin` of a tool spawned with stdin 'pipe'. The decompressor
   * then writes into that pipe itself and the raw bytes never pass through node (restore reports
   * the decompressor's failures and progress). Call at most once, and then never read `source`.
   * With `through`, the raw dump passes through node and that stage on its way (a role that
   * rewrites it, like PostgreSQL's merging of per-row data blocks).
   */
  pipeSourceInto?: (stdin: Writable, through?: Transform) => SourceFeed;
  /**
   * Set by restore: like pipeSourceInto, but one more independent read of the raw dump from its
   * start, for a role that runs several tools on the same dump at once (pg_restore workers that
   * each load a share of the tables). Restore stops every feed that is still open when the role
   * returns or fails.
   */
  pipeSourceAgainInto?: (stdin: Writable, through?: Transform) => Promise<SourceFeed>;
  /** Set by restore: the manifest's row count per table, to share work between loaders. */
  tableRows?: readonly BackupTableCount[];
  /**
   * Set by restore: the raw dump again from its start, as a second independent stream, for a role
   * that needs a file of the dump's head (pg_restore's table of contents). Destroy it when done.
   */
  openSourceAgain?: () => Promise<Readable>;
}

/** The raw dump flowing into a tool's stdin (LoadContext.pipeSourceInto). */
export interface SourceFeed {
  /**
   * The tool exited successfully before reading its input to the end (pg_restore stops after its
   * last listed entry): stop the decompressor, and forget the broken pipe it will report.
   */
  stop(): void;
  /** Settles when the feed ended: rejects with what failed (a damaged artifact, a broken pipe). */
  done(): Promise<void>;
}

/** The result of checking a loaded copy. */
export interface CheckOutcome {
  tables: BackupTableCount[];
  /** What the engine's integrity checks found wrong; empty when all is well. */
  problems: string[];
  /** What was checked, for the verification record (e.g. `PRAGMA integrity_check: ok`). */
  checks: string[];
}

/** A throwaway copy of a backup, loaded and ready to be checked; dispose() removes it. */
export interface LoadedCopy {
  check(): Promise<CheckOutcome>;
  dispose(): Promise<void>;
}

export interface BackupRole {
  /**
   * Find the dump tool and read both versions. Throws E_BACKUP_TOOL when the tool is missing or
   * older than the server, saying which package to install.
   */
  plan(conn: EngineConnection, ctx: BackupContext): Promise<BackupPlan>;
  /** Start the dump (after {@link plan}). */
  dump(conn: EngineConnection, ctx: BackupContext, plan: BackupPlan): Promise<RunningDump>;
  /**
   * Verification: load the raw dump into a throwaway place beside `conn`'s server — a scratch
   * database on the server, a temporary SQLite file, a temporary redis-server — and return it for
   * checking. `ctx.target` is the backed-up target. Rejects with E_BACKUP_RESTORE when loading fails
   * (having removed what it made).
   */
  loadCopy(source: Readable, conn: EngineConnection, ctx: LoadContext): Promise<LoadedCopy>;
  /**
   * What the target already holds (tables, or `db0: 1234 keys`), for restore's refusal to
   * overwrite a non-empty database without --force. Empty array = empty database.
   */
  existingContents(conn: EngineConnection, ctx: LoadContext): Promise<string[]>;
  /**
   * Restore: load the raw dump into the target `conn` is connected to, replacing what is there
   * (the caller has checked emptiness or --force). Rejects with E_BACKUP_RESTORE.
   */
  restore(source: Readable, conn: EngineConnection, ctx: LoadContext): Promise<void>;
  /**
   * Optional: whether restore should spool the raw dump to a local file (`LoadContext.file`)
   * while it checks the artifact — for tools that read a file faster than a pipe or need one
   * (`pg_restore`), so the artifact is not decrypted and decompressed a second time.
   */
  wantsFile?(ctx: Pick<LoadContext, 'extension' | 'jobs' | 'tables' | 'targetEmpty'>): boolean;
  /**
   * Optional (server engines): create the target's database when it does not exist, through the
   * server's maintenance database, for `restore --create`. A no-op when it exists.
   */
  createDatabase?(ctx: LoadContext): Promise<void>;
}
