/**
 * Take one backup: engine dump → zstd → authenticated encryption (when a key is configured) →
 * SHA-256 → storage, streaming end to end, then the manifest — last. A backup counts as good only
 * when every stage succeeded: the dump tool exited 0 with non-empty output and its end marker
 * (the engine role checks that), compression and encryption finished, the storage has every byte.
 * Anything short of that leaves no manifest, so nothing is listed, and the partial artifact is
 * removed (by the storage on failure, or by the next run's cleanup after a crash).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ConnectionSpec } from '../core/connection-spec.js';
import { DbwardError, NotAvailableError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import { dbwardVersion } from '../core/version.js';
import type { BackupContext, BackupRole, DirectOutput, RunningDump } from '../engines/backup-role.js';
import type { EngineConnection, EngineDefinition } from '../engines/contract.js';
import { engineForUrl } from '../engines/registry.js';
import type { BackupStorage } from '../storage/storage.js';
import type { BackupKey } from './backup-key.js';
import { createEncryptStream, describeScheme } from './encryption.js';
import { createHashStream } from './hash-stream.js';
import { newBackupId, type BackupManifest } from './manifest.js';
import { artifactFormat, artifactName } from './artifact-name.js';
import { countingStream } from './read-artifact.js';
import { settleAll } from './pipeline-errors.js';
import { HeadTee } from './head-tee.js';
import { createZstdCompressStream, defaultZstdLevel, type ZstdStream } from './zstd-stream.js';

export interface BackupProgress {
  /**
   * Bytes the dump tool has produced so far; undefined while a tool writes straight into zstd
   * (only zstd knows, and says so at the end).
   */
  rawBytes: number | undefined;
  /** Bytes written to storage so far (compressed, encrypted). */
  storedBytes: number;
}

export interface TakeBackupOptions {
  storage: BackupStorage;
  /** Encrypt with this key; null = unencrypted. */
  key: BackupKey | null;
  /** zstd level. Default 3. */
  compressionLevel?: number;
  /** Parallel dump workers where the engine supports them. Default 1. */
  jobs?: number;
  logger: Logger;
  onProgress?: (progress: BackupProgress) => void;
  /** "Now", for tests. */
  now?: () => Date;
}

/** The engine's backup role, or a NotAvailableError naming the engine. */
export async function backupRoleFor(engine: EngineDefinition): Promise<BackupRole> {
  const load = engine.roles.backup;
  if (!load) {
    throw new NotAvailableError(
      `Backups of ${engine.displayName} databases are not available.`,
      'Back up with the engine’s own tools for now.',
    );
  }
  return load();
}

/**
 * What restoring or verifying `manifest`'s backup through `target` needs: the target's engine
 * (which must be the backup's, or the error `mismatch` makes is thrown), its backup role, the
 * target's connection spec and the artifact's raw extension.
 */
export async function roleForBackup(
  target: Target,
  manifest: BackupManifest,
  mismatch: (engineName: string) => Error,
): Promise<{ engine: EngineDefinition; role: BackupRole; spec: ConnectionSpec; extension: string }> {
  const engine = engineForUrl(target.url);
  if (engine.id !== manifest.engine) throw mismatch(engine.displayName);
  const role = await backupRoleFor(engine);
  const spec: ConnectionSpec = engine.parseUrl(target.url);
  const { extension } = artifactFormat(manifest);
  return { engine, role, spec, extension };
}

/** Run `fn` with a private temporary directory that is removed afterwards, whatever happens. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), `dbward-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Take a backup of `target` through `conn`; resolves with the finalized manifest. */
export async function takeBackup(
  conn: EngineConnection,
  target: Target,
  options: TakeBackupOptions,
): Promise<BackupManifest> {
  const engine = engineForUrl(target.url);
  const role = await backupRoleFor(engine);
  const spec: ConnectionSpec = engine.parseUrl(target.url);
  const now = options.now ?? (() => new Date());
  const level = options.compressionLevel ?? defaultZstdLevel;
  return withTempDir('backup', async (tempDir) => {
    const ctx: BackupContext = { target, spec, logger: options.logger, tempDir, jobs: options.jobs ?? 1 };
    const plan = await role.plan(conn, ctx);
    const started = now();
    const id = newBackupId(target.name, started);
    const name = artifactName(id, plan.extension, options.key !== null);
    options.logger.info(`backup ${id}: ${plan.tool.name} ${plan.tool.version} → ${options.storage.location}`);

    // zstd starts first: a dump tool that can write straight into it gets its stdin
    // (directOutput), so the raw dump never crosses node; otherwise node feeds it the stream.
    const compress = createZstdCompressStream({ level });
    const head = new HeadTee();
    const input = compress.handOverInput();
    let direct = true;
    const directOutput: DirectOutput = {
      stdin: input.stdin,
      release: input.release,
      pipeHeadInto: (sink) => head.pipeHeadInto(sink),
    };
    let dump: RunningDump;
    try {
      dump = await role.dump(conn, { ...ctx, directOutput }, plan);
    } catch (err) {
      compress.destroy();
      throw err;
    }
    const progress: BackupProgress = { rawBytes: 0, storedBytes: 0 };
    const report = (): void => options.onProgress?.({ ...progress });
    const storedCounter = countingStream((n) => {
      progress.storedBytes += n;
      report();
    });
    const dumpStages: NodeJS.ReadWriteStream[] = [];
    if (dump.stream) {
      // The role kept the dump in node: take stdin back and write it in.
      direct = false;
      compress.takeBackInput();
      const rawCounter = countingStream((n) => {
        progress.rawBytes = (progress.rawBytes ?? 0) + n;
      });
      dumpStages.push(dump.stream as unknown as NodeJS.ReadWriteStream, rawCounter);
    } else {
      progress.rawBytes = undefined;
    }
    // On the main thread: a backup keeps every core busy (pg_dump, the server, zstd), so a worker
    // would add copying, not speed. (Restore's check pass has the cores to spare.)
    const hash = createHashStream();
    const encrypt = options.key ? createEncryptStream(options.key) : undefined;
    const toStorage = new PassThrough();
    const stages: NodeJS.ReadWriteStream[] = [
      ...dumpStages,
      compress,
      head,
      ...(encrypt ? [encrypt] : []),
      hash,
      storedCounter,
    ];
    const flowing = pipeline([...stages, toStorage]);
    const stored = options.storage.putArtifact(id, name, toStorage);
    let outcome;
    let rawBytes: number;
    try {
      outcome = await settleAll({ flowing, stored, dump: dump.done }, () => {
        dump.abort();
        head.kill();
      });
      rawBytes = direct ? compressedSizes(compress, head.bytes) : (progress.rawBytes ?? 0);
      if (rawBytes === 0) {
        throw new DbwardError('E_BACKUP_DUMP', `${plan.tool.name} produced no output: not a backup.`, {
          hint: 'Run the dump tool by hand to see why; nothing was stored.',
          context: { target: target.name, engine: engine.id, operation: 'backup' },
        });
      }
    } catch (err) {
      // Every byte may be stored while the dump still failed its end-marker check.
      await options.storage.discard(id, name).catch(() => undefined);
      throw err;
    }
    const { dump: counts, stored: put } = outcome;
    const finished = now();
    const manifest: BackupManifest = {
      formatVersion: 1,
      id,
      target: target.name,
      engine: engine.id,
      serverVersion: plan.serverVersion,
      tool: plan.tool,
      dbwardVersion: dbwardVersion(),
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: Math.max(0, finished.getTime() - started.getTime()),
      rawBytes,
      storedBytes: put.bytes,
      sha256: hash.result().sha256,
      compression: { algorithm: 'zstd', level },
      encryption:
        options.key && encrypt
          ? { ...describeScheme(), keyId: options.key.id, header: encrypt.header.toString('hex') }
          : null,
      tables: counts.tables,
      artifact: name,
      verification: null,
    };
    await options.storage.finalize(id, name, manifest);
    return manifest;
  });
}

/**
 * The raw size of a dump that went straight from its tool into zstd: zstd's own report, checked
 * against the compressed bytes node received (a report that does not match them is not trusted).
 */
function compressedSizes(compress: ZstdStream, receivedBytes: number): number {
  const sizes = compress.reportedSizes();
  if (!sizes || sizes.compressed !== receivedBytes) {
    throw new DbwardError(
      'E_ZSTD_FAILED',
      sizes
        ? `zstd reported ${sizes.compressed} compressed bytes, but ${receivedBytes} arrived: the size of the dump is unknown.`
        : 'zstd printed no size report (zstd -vv), so the size of the dump is unknown.',
      { hint: 'Install zstd 1.4 or newer (scripts/install-deps.sh does); nothing was stored.' },
    );
  }
  return sizes.raw;
}
