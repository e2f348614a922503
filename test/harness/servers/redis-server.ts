/**
 * A throwaway Redis for the test run: `redis-server <config file>` on a free port, bound to
 * 127.0.0.1, persisting nothing, running as the `redis` system user when we are root and that user
 * exists (as ourselves otherwise: Redis does not mind).
 *
 * The password (random per run) is in the config file (0600, in the 0700 temp dir), never in the
 * arguments. `enable-debug-command local` lets tests use DEBUG SLEEP to make slow-log entries.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import {
  discardDir,
  errorMessage,
  findBinary,
  isRoot,
  lookupUser,
  makeServerDir,
  randomPassword,
  ServerProcess,
  withPortRetry,
  writePrivateFile,
} from './server-process.js';
import type { StartResult } from './server-process.js';

function config(port: number, dir: string, password: string): string {
  return [
    `port ${port}`,
    'bind 127.0.0.1',
    'protected-mode yes',
    'daemonize no',
    `dir ${dir}`,
    'logfile ""', // stdout, which goes to redis.log in the temp dir
    'save ""',
    'appendonly no',
    `requirepass ${password}`,
    'databases 16',
    'enable-debug-command local',
    '',
  ].join('\n');
}

export async function start(): Promise<StartResult> {
  const redisServer = findBinary('redis-server');
  if (!redisServer) return { skip: 'redis: redis-server not found; run scripts/install-deps.sh' };
  const runAs = isRoot() ? lookupUser('redis') : undefined;

  const dir = makeServerDir('dbward-redis-', runAs);
  try {
    const password = randomPassword();
    const configFile = path.join(dir, 'redis.conf');
    const logFile = path.join(dir, 'redis.log');
    const { proc, port, version } = await withPortRetry(async (port) => {
      writePrivateFile(configFile, config(port, dir, password), runAs);
      const proc = new ServerProcess('redis-server', redisServer, [configFile], { dir, runAs, logFile });
      try {
        const version = await proc.waitUntilReady(() => serverVersion(port, password));
        return { proc, port, version };
      } catch (error) {
        await proc.stop({ keepDir: true });
        throw error;
      }
    });
    return {
      version: `Redis ${version}`,
      port,
      adminUrl: `redis://:${password}@127.0.0.1:${port}/0`,
      env: {},
      notes: [],
      stop: () => proc.stop(),
    };
  } catch (error) {
    discardDir(dir);
    return { skip: `redis: failed to start: ${errorMessage(error)}` };
  }
}

async function serverVersion(port: number, password: string): Promise<string> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    password,
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const info = await client.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  } finally {
    client.disconnect();
  }
}
