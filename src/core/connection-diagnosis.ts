import { ConnectionError, type ConnectionFailureKind } from './errors.js';

/** What an engine knows about a failed connection attempt, used to word the diagnosis. */
export interface ConnectionFailureFacts {
  kind: ConnectionFailureKind;
  engine: string;
  target?: string;
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  file?: string;
  /** The server's or driver's own words, already free of secrets. */
  serverMessage?: string;
  timeoutMs?: number;
  cause?: unknown;
}

/**
 * Turn the facts of a failed connection into one readable error: what happened, the likely
 * cause and the fix. Engines decide the kind (they know their drivers' error codes); the wording
 * lives here so every engine explains the same failure the same way.
 */
export function diagnoseConnectionFailure(facts: ConnectionFailureFacts): ConnectionError {
  const where = facts.file ?? `${facts.host ?? 'localhost'}${facts.port ? `:${facts.port}` : ''}`;
  const who = facts.user ? `user "${facts.user}"` : 'the configured user';
  const db = facts.database ? `database "${facts.database}"` : 'the database';
  const said = facts.serverMessage ? ` (server said: ${facts.serverMessage})` : '';
  const [message, hint] = wording(facts, where, who, db);
  return new ConnectionError(facts.kind, `${message}${said}`, {
    hint,
    cause: facts.cause,
    context: { engine: facts.engine, target: facts.target, operation: 'connect' },
  });
}

function wording(f: ConnectionFailureFacts, where: string, who: string, db: string): [string, string] {
  switch (f.kind) {
    case 'refused':
      return [
        `Connection refused by ${where}: nothing is listening there.`,
        `Start the ${f.engine} server, or check the host and port in the URL (is it listening on another port, or only on a socket?).`,
      ];
    case 'unknown-host':
      return [
        `Unknown host "${f.host ?? ''}": the name does not resolve.`,
        'Check the spelling of the host in the URL; inside containers use the service name, outside use localhost.',
      ];
    case 'timeout':
      return [
        `Timed out after ${f.timeoutMs ?? '?'} ms connecting to ${where}.`,
        'A firewall or security group may be dropping packets, or the server is overloaded. Check that the host is reachable from here, or raise connectTimeout.',
      ];
    case 'no-hba-entry':
      return [
        `The server has no pg_hba.conf entry allowing ${who} to reach ${db} from this host.`,
        'Add a line for this client address to pg_hba.conf (e.g. `host <db> <user> <client-ip>/32 scram-sha-256`) and reload the server, or connect from an allowed host.',
      ];
    case 'auth-failed':
      return [
        `Authentication failed for ${who} at ${where}.`,
        'Check the password (and that special characters in it are percent-encoded in the URL), or that the user exists on this server.',
      ];
    case 'unknown-database':
      return [
        `The ${db} does not exist on ${where}.`,
        'Create it (e.g. `CREATE DATABASE …`) or fix the database name at the end of the URL.',
      ];
    case 'too-many-connections':
      return [
        `The server at ${where} has no free connection slots.`,
        'Close idle clients, lower pool sizes across your applications, or put a pooler (PgBouncer, ProxySQL) in front; raising max_connections costs memory.',
      ];
    case 'permission-denied':
      // An embedded database has no users or grants: the file system decides.
      if (f.file) {
        return [
          `This process may not open the file ${where} (permission denied).`,
          'Check the owner and mode of the file and of its directory (ls -l); SQLite also needs to create journal files next to it.',
        ];
      }
      return [
        `${who[0]?.toUpperCase()}${who.slice(1)} is not allowed to connect to ${db}.`,
        'Grant the needed privilege (PostgreSQL: GRANT CONNECT ON DATABASE …; MySQL: GRANT … ON db.* TO …) or use another user.',
      ];
    case 'file-missing':
      return [
        `The SQLite file ${where} does not exist.`,
        'Check the path (relative paths are resolved from the current directory), or create the database first.',
      ];
    case 'file-locked':
      return [
        `The SQLite file ${where} is locked by another process.`,
        'Another program holds a write lock; wait for it to finish, or set a busy timeout. Check for stale processes holding the file.',
      ];
    case 'not-a-database':
      return [
        `The file ${where} is not a SQLite database (or it is encrypted or corrupted).`,
        'Point the URL at a SQLite database file; restore it from a backup if it was damaged.',
      ];
    case 'tls':
      return [
        `The TLS handshake with ${where} failed.`,
        'Check sslmode / TLS settings in the URL and that the server certificate is trusted.',
      ];
    case 'unknown':
      return [`Could not connect to ${where}.`, 'Run again with --verbose to see the driver error.'];
  }
}
