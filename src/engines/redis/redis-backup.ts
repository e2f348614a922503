/**
 * The Redis backup role. A Redis backup is the whole server — every logical database — as one
 * RDB snapshot, whatever database the target URL selects: that is what the server can snapshot
 * consistently, and what `redis-server` can load.
 *
 * - dump: `redis-cli --rdb` asks the server for a snapshot over the replication protocol (the
 *   server forks, so it is one consistent moment while clients keep writing) into ctx.tempDir;
 *   redis-check-rdb proves it whole (CRC64 trailer included) and its RESIZEDB records give exact
 *   key counts per database (see redis-backup-rdb.ts); then the file is streamed out and deleted.
 * - loadCopy: a temporary redis-server on a unix socket loads the RDB; INFO keyspace counts it.
 * - restore: the same temporary server, then FLUSHALL on the target — which empties *every*
 *   database of the target server, not just the URL's (the caller has already required --force
 *   when the server was not empty) — and every key copied over with DUMP/RESTORE.
 *
 * The password reaches redis-cli through REDISCLI_AUTH, never argv, and is taken out of any
 * redis-cli output quoted in an error.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { DbwardError } from '../../core/errors.js';
import type { KeyspaceInfo } from '../../core/schema-model.js';
import type { BackupRole, BackupTableCount, LoadContext } from '../backup-role.js';
import { endWithError, runningDump, sendDumpFile } from '../dump-stream.js';
import type { EngineConnection } from '../contract.js';
import { copyDatabases } from './redis-backup-copy.js';
import { checkRdb, dumpError, rdbHeaderProblem } from './redis-backup-rdb.js';
import { startTemporaryRedis, type TemporaryRedis } from './redis-backup-server.js';
import {
  findRedisTool,
  majorOf,
  quoteOutput,
  redisCliInvocation,
  runTool,
  toolError,
  toolVersion,
} from './redis-backup-tools.js';
import { parseKeyspaces, parseRedisInfo } from './redis-info.js';
import { redisClientOptions } from './redis-options.js';

// Redis's default; a server configured with more is asked (CONFIG GET databases).
const defaultDatabases = 16;

export const redisBackupRole: BackupRole = {
  async plan(conn) {
    const serverVersion = parseRedisInfo(String(await command(conn, 'INFO', 'server'))).get('redis_version');
    if (!serverVersion) throw serverInfoError('The server did not report redis_version in INFO server.');
    const cli = findRedisTool('redis-cli');
    const version = await toolVersion(cli, 'redis-cli');
    if (majorOf(version) < majorOf(serverVersion)) {
      throw toolError(
        `redis-cli ${version} (${cli}) is older than the Redis ${serverVersion} server, and may not read its snapshot.`,
        'redis-cli',
      );
    }
    // Checked now so a missing checker fails before a long transfer, not after.
    findRedisTool('redis-check-rdb');
    return { serverVersion, tool: { name: 'redis-cli', version }, extension: 'rdb' };
  },

  async dump(_conn, ctx) {
    const cli = findRedisTool('redis-cli');
    const checker = findRedisTool('redis-check-rdb');
    const dir = await mkdtemp(path.join(ctx.tempDir, 'redis-dump-'));
    const file = path.join(dir, 'dump.rdb');
    const { args, env } = redisCliInvocation(ctx.spec);
    const password = ctx.spec.password;
    const stream = new PassThrough();
    let aborted = false;
    let kill: (() => void) | undefined;

    const done = (async () => {
      try {
        const run = await runTool(cli, [...args, '--rdb', file], env, (k) => (kill = k));
        if (aborted) throw dumpError('The Redis backup was aborted.');
        if (run.code !== 0) {
          throw dumpError(
            `redis-cli --rdb failed (exit ${run.code}): ${quoteOutput(run.output, password)}`,
            cliFailureHint(run.output),
          );
        }
        const rdb = await checkRdb(file, checker, password);
        const tables = rdb.counts ?? (await countWithTemporaryServer(dir, rdb.dbs));
        ctx.logger.debug('redis backup: snapshot checked', { tables });
        await sendDumpFile(file, stream);
        return { tables };
      } catch (err) {
        const error =
          err instanceof DbwardError
            ? err
            : dumpError(`The Redis backup failed: ${quoteOutput(message(err), password)}`);
        endWithError(stream, error);
        throw error;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    })();
    return runningDump(stream, done, () => {
      aborted = true;
      kill?.();
      endWithError(stream, dumpError('The Redis backup was aborted.'));
    });
  },

  async loadCopy(source, conn, ctx) {
    const { server, dispose } = await loadTemporary(source, conn, ctx);
    return {
      check: async () => ({
        tables: toCounts(await server.keyspace()),
        problems: [],
        checks: ['redis-server loaded the RDB (RDB checksum verified on load): ok'],
      }),
      dispose,
    };
  },

  async existingContents(conn) {
    const keyspaces = parseKeyspaces(String(await command(conn, 'INFO', 'keyspace')));
    return keyspaces.map((k) => `db${k.db}: ${k.keys} keys`);
  },

  async restore(source, conn, ctx) {
    if (ctx.tables !== undefined) {
      throw restoreError(
        '--tables is not supported for Redis: a Redis backup is restored as a whole server.',
        'Restore without --tables; to pick out keys, restore into a spare Redis and copy them from there.',
      );
    }
    const { server, dispose } = await loadTemporary(source, conn, ctx);
    try {
      const dbs = (await server.keyspace()).map((k) => k.db);
      const admin = await targetClient(ctx, undefined);
      try {
        // Every database of the target server, so the result is exactly the backup.
        await admin.flushall();
      } finally {
        admin.disconnect();
      }
      const copied = await copyDatabases(server, (db) => targetClient(ctx, db), dbs);
      ctx.logger.debug('redis restore: keys copied', { keys: copied, databases: dbs.length });
    } catch (err) {
      if (err instanceof DbwardError) throw err;
      throw restoreError(
        `Copying the backup into the target failed: ${message(err)}`,
        /payload version|checksum are wrong/i.test(message(err))
          ? "The target Redis is older than the redis-server dbward loaded the backup with; restore into a server at least as new as this machine's redis-server."
          : 'The target was flushed and is partly restored; fix the cause and run the restore again.',
      );
    } finally {
      await dispose();
    }
  },
};

/** Receive the RDB into a private directory and load it into a temporary redis-server. */
async function loadTemporary(
  source: Readable,
  conn: EngineConnection,
  ctx: LoadContext,
): Promise<{ server: TemporaryRedis; dispose: () => Promise<void> }> {
  const program = findRedisTool('redis-server');
  const dir = await mkdtemp(path.join(ctx.tempDir, 'redis-load-'));
  try {
    await receive(source, path.join(dir, 'dump.rdb'), ctx);
    const server = await startTemporaryRedis({ program, dir, databases: await databaseCount(conn) });
    return {
      server,
      dispose: async () => {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err instanceof DbwardError ? err : restoreError(`Loading the Redis backup failed: ${message(err)}`);
  }
}

/** Counts from a temporary server, when the RDB itself could not give them. */
async function countWithTemporaryServer(dir: string, dbs: number[]): Promise<BackupTableCount[]> {
  const databases = Math.max(defaultDatabases, ...dbs.map((db) => db + 1));
  const server = await startTemporaryRedis({ program: findRedisTool('redis-server'), dir, databases });
  try {
    return toCounts(await server.keyspace());
  } finally {
    await server.stop();
  }
}

async function receive(source: Readable, file: string, ctx: LoadContext): Promise<void> {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      ctx.onProgress?.(bytes);
      callback(null, chunk);
    },
  });
  await pipeline(source, counter, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  const problem = await rdbHeaderProblem(file);
  if (problem) {
    throw restoreError(
      `The backup is not a Redis RDB file: ${problem}.`,
      'Check that this backup was made from a Redis target; run `dbward backup verify` on it.',
    );
  }
}

/** The target server's configured number of databases (Redis's default when CONFIG is not allowed). */
async function databaseCount(conn: EngineConnection): Promise<number> {
  try {
    const reply = (await command(conn, 'CONFIG', 'GET', 'databases')) as unknown[];
    const count = Number(reply[1]);
    return Number.isInteger(count) && count > defaultDatabases ? count : defaultDatabases;
  } catch {
    // Managed Redis often forbids CONFIG.
    return defaultDatabases;
  }
}

/** A verified ioredis client on the restore target; `db` undefined = the URL's database. */
async function targetClient(ctx: LoadContext, db: number | undefined): Promise<Redis> {
  const spec = db === undefined ? ctx.spec : { ...ctx.spec, database: String(db) };
  // Never verified: a dropped connection fails the restore instead of retrying behind its back.
  const client = new Redis(redisClientOptions(ctx.target, spec, () => false));
  client.on('error', (err: Error) => ctx.logger.debug('redis restore client error', { error: err.message }));
  await client.connect();
  return client;
}

function toCounts(keyspaces: KeyspaceInfo[]): BackupTableCount[] {
  return keyspaces.filter((k) => k.keys > 0).map((k) => ({ name: `db${k.db}`, rows: k.keys }));
}

async function command(conn: EngineConnection, name: string, ...args: string[]): Promise<unknown> {
  if (conn.kind !== 'keyvalue') throw new TypeError('the Redis backup role needs a key-value connection');
  return conn.command(name, ...args);
}

function cliFailureHint(output: string): string | undefined {
  if (/NOPERM/.test(output)) {
    return "The user may not run SYNC/PSYNC, which redis-cli --rdb needs: grant it (ACL SETUSER <user> +sync +psync), or back up as a user that may. Managed services may not allow it at all; use the provider's snapshots there.";
  }
  if (/WRONGPASS|NOAUTH|AUTH failed|invalid password/i.test(output)) {
    return 'Check the user and password in the target URL.';
  }
  return undefined;
}

function restoreError(text: string, hint?: string): DbwardError {
  return new DbwardError('E_BACKUP_RESTORE', text, {
    hint: hint ?? 'Run `dbward backup verify` on the backup; if it fails, restore an older one.',
    context: { engine: 'redis', operation: 'restore' },
  });
}

function serverInfoError(text: string): DbwardError {
  return new DbwardError('E_BACKUP_TOOL', text, {
    hint: 'Check that the target is a Redis server (or compatible) and that the user may run INFO.',
    context: { engine: 'redis', operation: 'backup' },
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
