import type { MigrationLock, SqlConnection, SqlSession } from './contract.js';

/**
 * A lock that lives on a server session (PostgreSQL advisory locks, MySQL GET_LOCK): take it on
 * a session of its own and keep that session checked out until `release()` — the withSession
 * callback simply does not return until then. `take` acquires the lock (throwing if it cannot);
 * `free`, if given, runs on the session when released (the connection's own reset may already
 * drop the lock, as PostgreSQL's DISCARD ALL does). If the session dies meanwhile, the server has
 * dropped the lock with it, so release() still resolves.
 */
export function holdSessionLock(
  conn: SqlConnection,
  take: (session: SqlSession) => Promise<void>,
  free?: (session: SqlSession) => Promise<void>,
): Promise<MigrationLock> {
  return new Promise<MigrationLock>((resolveLock, rejectLock) => {
    let signalRelease!: () => void;
    const releaseRequested = new Promise<void>((resolve) => (signalRelease = resolve));
    const sessionEnded = conn.withSession(async (session) => {
      await take(session);
      let released: Promise<void> | undefined;
      resolveLock({
        release: () => {
          if (!released) {
            signalRelease();
            // The session's own fate (a query failing on a killed connection) no longer matters.
            released = sessionEnded.then(
              () => undefined,
              () => undefined,
            );
          }
          return released;
        },
      });
      await releaseRequested;
      await free?.(session);
    });
    // Rejections after the lock was handed out are ignored here (a settled promise stays settled).
    sessionEnded.catch(rejectLock);
  });
}
