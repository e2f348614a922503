/**
 * Restore a backup into a database. Order matters for safety:
 *
 * 1. the whole artifact is read once and checked — size and SHA-256 against the manifest, every
 *    encrypted chunk's tag and the final-chunk marker (see checkArtifact) — so damage or a wrong
 *    key is found before a single byte reaches the database;
 * 2. a non-empty database is refused unless `force` is set, with a list of what would be replaced;
 * 3. only then is the artifact streamed into the engine's restore tool.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DbwardError, UsageError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Target } from '../core/target.js';
import type { LoadContext } from '../engines/backup-role.js';
import type { EngineConnection } from '../engines/contract.js';
import type { BackupStorage } from '../storage/storage.js';
import type { BackupKey } from './backup-key.js';
import type { BackupManifest } from './manifest.js';
import { firstCause } from './pipeline-errors.js';
import { openRawSource, type RawSource } from './raw-source.js';
import { checkArtifact, countingStream, openPlainArtifact } from './read-artifact.js';
import { roleForBackup, withTempDir } from './take-backup.js';

/** How many existing objects a refusal lists before "and N more". */
const listedExisting = 20;

export interface RestoreBackupOptions {
  storage: BackupStorage;
  key: BackupKey | null;
  logger: Logger;
  /** Replace a non-empty database. */
  force?: boolean;
  /** Parallel restore workers where the engine supports them. */
  jobs?: number;
  /** Only these tables (names as in the manifest). */
  tables?: string[];
  /** Called before the check pass and the load: for a progress display. */
  onPhase?: (phase: 'check' | 'load', totalRawBytes: number) => void;
  onProgress?: (rawBytes: number) => void;
}

export interface RestoreResult {
  manifest: BackupManifest;
  /** What the database held before (empty when it was empty). */
  replaced: string[];
  rawBytes: number;
}

/**
 * Check the artifact, then restore it through `conn` (connected to `target`, the destination).
 * Returns what was replaced; throws E_RESTORE_NOT_EMPTY (nothing changed) without `force`.
 */
export async function restoreBackup(
  conn: EngineConnection,
  target: Target,
  manifest: BackupManifest,
  options: RestoreBackupOptions,
): Promise<RestoreResult> {
  const { role, spec, extension } = await roleForBackup(
    target,
    manifest,
    (engineName) =>
      new UsageError(
        `Backup ${manifest.id} is a ${manifest.engine} backup; ${target.name} is a ${engineName} database.`,
        'Restore into a database of the same engine (--to or --to-url).',
      ),
  );
  if (options.tables !== undefined) checkTableNames(manifest, options.tables);

  return withTempDir('restore', async (tempDir) => {
    const jobs = options.jobs ?? 1;
    const tables = options.tables ? { tables: options.tables } : {};
    const base = { target, spec, logger: options.logger, tempDir, extension, jobs, ...tables };
    // Only read here: the refusal waits until the artifact has passed its check, so a damaged
    // backup is reported as such whatever the destination holds.
    const existing = await role.existingContents(conn, base);
    const targetEmpty = existing.length === 0;
    // A tool that needs the whole dump as a file (pg_restore -j over existing objects, --tables)
    // gets it spooled while the artifact is checked, so it is decompressed once; otherwise the
    // check only hashes (and authenticates) the stored bytes, and the load streams them again.
    const file = role.wantsFile?.({ ...base, targetEmpty })
      ? path.join(tempDir, `raw.${extension}`)
      : undefined;
    options.onPhase?.('check', manifest.rawBytes);
    await checkArtifact(options.storage, manifest, options.key, file);

    if (!targetEmpty && !options.force) {
      const shown = existing.slice(0, listedExisting).map((e) => `  ${e}`);
      if (existing.length > listedExisting) shown.push(`  … and ${existing.length - listedExisting} more`);
      throw new DbwardError(
        'E_RESTORE_NOT_EMPTY',
        `${target.name} is not empty; restoring ${manifest.id} would replace:\n${shown.join('\n')}`,
        {
          hint: 'Restore into an empty database (--to, --to-url, --create), or pass --force to replace these.',
        },
      );
    }
    options.onPhase?.('load', manifest.rawBytes);
    if (file) {
      let rawBytes = 0;
      const count = countingStream((n) => {
        rawBytes += n;
        options.onProgress?.(rawBytes);
      });
      const source = createReadStream(file).pipe(count);
      await role.restore(source, conn, { ...base, targetEmpty, file });
      source.destroy(); // the role may have read the file by its path instead of the stream
      return { manifest, replaced: existing, rawBytes: (await stat(file)).size };
    }
    const raw = await openRawSource(options.storage, manifest, options.key, {
      onProgress: options.onProgress,
      prove: 'fast',
    });
    const again: Readable[] = [];
    const feeds: RawSource[] = [];
    const ctx: LoadContext = {
      ...base,
      targetEmpty,
      tableRows: manifest.tables,
      // A RawSource is the SourceFeed the role gets back (stop, done).
      pipeSourceInto: (stdin, through) => {
        raw.pipeInto(stdin, through);
        return raw;
      },
      // Later reads skip the proof: this load pass's first read and the check pass make it.
      pipeSourceAgainInto: async (stdin, through) => {
        const feed = await openRawSource(options.storage, manifest, options.key, { prove: 'none' });
        feeds.push(feed);
        feed.pipeInto(stdin, through);
        return feed;
      },
      openSourceAgain: async () => {
        const artifact = await openPlainArtifact(options.storage, manifest, options.key, { prove: 'none' });
        again.push(artifact.stream);
        return artifact.stream;
      },
    };
    // The tool's failure and the source's are both awaited: a decompressor that failed first (a
    // damaged artifact) is the cause, and the tool's complaint about its cut-off input an echo;
    // when the tool failed first, the source's broken pipe is the echo.
    const failures: unknown[] = [];
    try {
      await role.restore(raw.stream, conn, ctx).catch((err: unknown) => {
        failures.push(err);
        raw.destroy();
      });
      await raw.done().catch((err: unknown) => failures.unshift(err));
    } finally {
      for (const stream of again) stream.destroy();
      for (const feed of feeds) feed.stop();
      await Promise.all(feeds.map((feed) => feed.done()));
    }
    if (failures.length > 0) throw firstCause(failures);
    options.onProgress?.(manifest.rawBytes);
    return { manifest, replaced: existing, rawBytes: manifest.rawBytes };
  });
}

/** Every requested table must be in the backup: a typo must not restore nothing, silently. */
function checkTableNames(manifest: BackupManifest, tables: string[]): void {
  const known = new Set(manifest.tables.map((t) => t.name));
  const unknown = tables.filter((t) => !known.has(t));
  if (unknown.length > 0) {
    throw new UsageError(
      `Backup ${manifest.id} has no table ${unknown.map((t) => `"${t}"`).join(', ')}.`,
      `Its tables: ${[...known].slice(0, 30).join(', ')}${known.size > 30 ? ', …' : ''}`,
    );
  }
}
