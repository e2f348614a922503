/**
 * A temporary redis-server that loads one RDB file, for verification and restore. It listens on
 * a unix socket only (`--port 0`), in a private directory, persists nothing, and is shut down
 * with SHUTDOWN NOSAVE; a file it cannot load makes it exit, and the reason is taken from its log.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { DbwardError } from '../../core/errors.js';
import type { KeyspaceInfo } from '../../core/schema-model.js';
import { parseKeyspaces } from './redis-info.js';

export interface TemporaryRedis {
  /** A client on logical database `db`, disconnected by the caller. */
  client(db: number): Promise<Redis>;
  keyspace(): Promise<KeyspaceInfo[]>;
  /** SHUTDOWN NOSAVE, then SIGKILL if it does not go. Safe to call twice. */
  stop(): Promise<void>;
}

export interface TemporaryRedisOptions {
  program: string;
  /** A private directory holding `dump.rdb`; the socket and log go there too. */
  dir: string;
  /** How many logical databases to configure (at least the highest db index in the file + 1). */
  databases: number;
}

// Before the server answers at all; once it says LOADING, loading may take as long as it takes.
const startTimeoutMs = 30_000;
const stopTimeoutMs = 10_000;
const startupNoise =
  /^(oO0OoO0OoO0Oo|Redis version=|Configuration loaded|Server initialized|WARNING|-+$|!!!|Bio thread|Guru Meditation)/;

/** Start the server on `dir/dump.rdb` and wait until it has loaded it. Rejects with E_BACKUP_RESTORE. */
export async function startTemporaryRedis({
  program,
  dir,
  databases,
}: TemporaryRedisOptions): Promise<TemporaryRedis> {
  const socket = path.join(dir, 'redis.sock');
  const logFile = path.join(dir, 'redis.log');
  const child = spawn(
    program,
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--dbfilename',
      'dump.rdb',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--databases',
      String(databases),
      '--logfile',
      logFile,
    ],
    { stdio: 'ignore' },
  );
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
    child.on('error', () => {
      exited = true;
      resolve();
    });
  });

  const connect = async (db: number): Promise<Redis> => {
    const client = new Redis({
      path: socket,
      db,
      lazyConnect: true,
      enableReadyCheck: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  const stop = async (): Promise<void> => {
    if (!exited) {
      const admin = await connect(0).catch(() => undefined);
      // The server closes the connection as it goes: the reply never comes.
      await admin?.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
      admin?.disconnect();
      await Promise.race([exit, sleep(stopTimeoutMs)]);
      if (!exited) child.kill('SIGKILL');
      await exit;
    }
  };

  try {
    await waitUntilLoaded(connect, () => exited);
  } catch (err) {
    await stop();
    throw await loadFailure(err, logFile, exited);
  }

  const admin = await connect(0);
  return {
    client: connect,
    keyspace: async () => parseKeyspaces(await admin.info('keyspace')),
    stop: async () => {
      admin.disconnect();
      await stop();
    },
  };
}

async function waitUntilLoaded(
  connect: (db: number) => Promise<Redis>,
  hasExited: () => boolean,
): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  let loading = false;
  for (;;) {
    if (hasExited()) throw new Error('redis-server exited while loading the RDB');
    try {
      const probe = await connect(0);
      try {
        await probe.ping();
        return;
      } finally {
        probe.disconnect();
      }
    } catch (err) {
      // LOADING: the file is being read; anything else: the socket is not there yet.
      if (/LOADING/.test(String(err))) loading = true;
      else if (!loading && Date.now() > deadline)
        throw new Error('redis-server did not answer in 30 s', { cause: err });
    }
    await sleep(50);
  }
}

/** The E_BACKUP_RESTORE for a server that would not load the file, quoting its log's warnings. */
async function loadFailure(err: unknown, logFile: string, exited: boolean): Promise<DbwardError> {
  const log = await readFile(logFile, 'utf8').catch(() => '');
  // `1234:M 29 Nov 2025 17:49:01.123 # Wrong RDB checksum…`: `#` marks warnings; the start-up
  // banner and a crash report's decoration are warnings too, and say nothing about the file.
  const warnings = log
    .split(/\r?\n/)
    .map((line) => /^\d+:[A-Z] .*? # (.*)$/.exec(line)?.[1])
    .filter((line): line is string => line !== undefined && line.trim() !== '' && !startupNoise.test(line));
  const reason = warnings.slice(0, 2).join(' | ') || (err instanceof Error ? err.message : String(err));
  return new DbwardError('E_BACKUP_RESTORE', `A temporary redis-server could not load the RDB: ${reason}`, {
    hint: exited
      ? 'The backup is damaged, or was made by a newer Redis than this redis-server: check with `redis-check-rdb`, and install a redis-server at least as new as the backed-up server.'
      : 'redis-server did not start; check that it runs on this machine (redis-server --version).',
    context: { engine: 'redis', operation: 'restore' },
  });
}
