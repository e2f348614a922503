/**
 * Plumbing shared by the engine tests (`test/engines/*`): a Target built from a URL, a connection
 * opened through an engine's connection role, the ConnectionError a connect attempt fails with,
 * and the two kinds of dead TCP endpoint the connect-failure tests point at.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { ConnectionError } from '../../src/core/errors.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import { defaultTargetOptions, type Target, type TargetOptions } from '../../src/core/target.js';
import type {
  EngineConnection,
  EngineDefinition,
  KeyValueConnection,
  SqlConnection,
} from '../../src/engines/contract.js';

/** A target named `t` for `url`, with the default options overridden by `options`. */
export function testTarget(url: string, options: Partial<TargetOptions> = {}): Target {
  return { name: 't', url, displayUrl: url, options: { ...defaultTargetOptions, ...options } };
}

/**
 * Connect to `target` (a URL, made into a {@link testTarget}, or a whole Target) through the
 * engine's connection role, logging nowhere unless given a `logger`. `options` override the
 * target's options.
 */
export async function connectEngine(
  engine: EngineDefinition,
  target: string | Target,
  options: Partial<TargetOptions> = {},
  logger: Logger = silentLogger,
): Promise<EngineConnection> {
  const resolved =
    typeof target === 'string'
      ? testTarget(target, options)
      : { ...target, options: { ...target.options, ...options } };
  const loadRole = engine.roles.connection;
  if (!loadRole) throw new Error(`engine ${engine.id} has no connection role`);
  const role = await loadRole();
  return role.connect({ target: resolved, spec: engine.parseUrl(resolved.url), logger });
}

type ConnectArgs = Parameters<typeof connectEngine>;

/** {@link connectEngine} for a SQL engine; asserts the connection is a SQL one. */
export async function connectSql(...args: ConnectArgs): Promise<SqlConnection> {
  const conn = await connectEngine(...args);
  assert.equal(conn.kind, 'sql');
  return conn;
}

/** {@link connectEngine} for a key-value engine; asserts the connection is a key-value one. */
export async function connectKeyValue(...args: ConnectArgs): Promise<KeyValueConnection> {
  const conn = await connectEngine(...args);
  assert.equal(conn.kind, 'keyvalue');
  return conn;
}

/** The ConnectionError connecting to `url` fails with; fails the test if it connects or fails otherwise. */
export async function expectConnectionError(
  engine: EngineDefinition,
  url: string,
  options: Partial<TargetOptions> = {},
): Promise<ConnectionError> {
  try {
    const conn = await connectEngine(engine, url, options);
    await conn.close();
  } catch (err) {
    assert.ok(err instanceof ConnectionError, `expected a ConnectionError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected the connection to fail, but it connected to ${url}`);
}

/** `url` with its user and password replaced. */
export function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

/** A port on 127.0.0.1 nothing listens on: bind an ephemeral port, then release it. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP server on 127.0.0.1 that accepts connections and never answers. */
export interface SilentServer {
  port: number;
  /** Drop every accepted connection and stop listening. */
  close(): Promise<void>;
}

/** Start a {@link SilentServer}, for provoking connect timeouts; `close()` it when done. */
export async function silentServer(): Promise<SilentServer> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
