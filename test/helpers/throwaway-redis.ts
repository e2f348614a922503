/**
 * A redis-server of a test file's own, on a free port, for tests that change server-wide state
 * (FLUSHALL by a restore, maxmemory, ACL users) or need exact key counts: the shared test server
 * (test/harness/servers/redis-server.ts) is handed out to files running in parallel. Unlike the
 * harness's, this one takes the password (or none) and extra config lines from the test, and
 * runs as ourselves.
 *
 * The password is in the config file (0600, in a 0700 temp dir), never in redis-server's argv.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import {
  discardDir,
  findBinary,
  makeServerDir,
  randomPassword,
  ServerProcess,
  withPortRetry,
  writePrivateFile,
} from '../harness/servers/server-process.js';

export interface ThrowawayRedisOptions {
  /** The password (`requirepass`); `null` for none. Default: a random one. */
  password?: string | null;
  /** Further redis.conf lines (e.g. `maxmemory 100mb`). */
  lines?: string[];
  /** Prefix of the temp dir's name, to tell the servers of different files apart. */
  dirPrefix?: string;
}

export interface ThrowawayRedis<Password extends string | null = string> {
  port: number;
  password: Password;
  /** `redis://[:password@]127.0.0.1:<port>/0` */
  url: string;
  /** A new client of database `db` (connects on first use; disconnected by `stop`). */
  client(db?: number): Redis;
  /** Disconnect the clients, stop the server and remove its temp dir. */
  stop(): Promise<void>;
}

/** Start one; throws if redis-server is missing or does not come up. */
export async function startThrowawayRedis(
  options?: ThrowawayRedisOptions & { password?: string },
): Promise<ThrowawayRedis>;
export async function startThrowawayRedis(
  options: ThrowawayRedisOptions,
): Promise<ThrowawayRedis<string | null>>;
export async function startThrowawayRedis(
  options: ThrowawayRedisOptions = {},
): Promise<ThrowawayRedis<string | null>> {
  const redisServer = findBinary('redis-server');
  if (!redisServer) throw new Error('redis-server not found');
  const password = options.password === undefined ? randomPassword() : options.password;
  const dir = makeServerDir(options.dirPrefix ?? 'dbward-test-redis-', undefined);
  const configFile = path.join(dir, 'redis.conf');
  const connect = (port: number, db = 0): Redis => {
    const c = new Redis({
      host: '127.0.0.1',
      port,
      ...(password !== null ? { password } : {}),
      db,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => {});
    return c;
  };
  let started: { proc: ServerProcess; port: number };
  try {
    started = await withPortRetry(async (port) => {
      const config = [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize no',
        `dir ${dir}`,
        'logfile ""', // stdout, which goes to redis.log
        'save ""',
        'appendonly no',
        ...(password !== null ? [`requirepass ${password}`] : []),
        ...(options.lines ?? []),
        '',
      ];
      writePrivateFile(configFile, config.join('\n'), undefined);
      const proc = new ServerProcess('redis-server', redisServer, [configFile], {
        dir,
        runAs: undefined,
        logFile: path.join(dir, 'redis.log'),
      });
      try {
        await proc.waitUntilReady(async () => {
          const probe = connect(port);
          try {
            await probe.connect();
            await probe.ping();
          } finally {
            probe.disconnect();
          }
        });
        return { proc, port };
      } catch (error) {
        await proc.stop({ keepDir: true });
        throw error;
      }
    });
  } catch (error) {
    discardDir(dir);
    throw error;
  }
  const { proc, port } = started;
  const clients: Redis[] = [];
  return {
    port,
    password,
    url: password !== null ? `redis://:${password}@127.0.0.1:${port}/0` : `redis://127.0.0.1:${port}/0`,
    client: (db = 0) => {
      const c = connect(port, db);
      clients.push(c);
      return c;
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await proc.stop();
    },
  };
}
