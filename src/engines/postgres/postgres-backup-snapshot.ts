/**
 * The snapshot a PostgreSQL dump is taken in: one dedicated session opens a REPEATABLE READ READ
 * ONLY transaction and exports its snapshot for `pg_dump --snapshot`, then counts every table's
 * rows in that same snapshot while pg_dump runs. The transaction stays open until the dump has
 * finished (pg_dump and its -j workers import the snapshot, which needs the exporter alive).
 */
import type { BackupTableCount } from '../backup-role.js';
import type { SqlConnection } from '../contract.js';
import { countRows } from './postgres-backup-catalog.js';

export interface HeldSnapshot {
  /** The id for `pg_dump --snapshot`. */
  id: string;
  /** Row counts as of the snapshot; rejects when counting failed or was cancelled. */
  counts: Promise<BackupTableCount[]>;
  /** Commit (dump done) or roll back, and give the session back. Safe to call twice. */
  release(commit: boolean): Promise<void>;
  /** Stop counting (cancel the running query) and roll back; for abort(). */
  cancel(): void;
}

export async function holdSnapshot(sql: SqlConnection): Promise<HeldSnapshot> {
  let exported!: (value: { id: string; pid: number }) => void;
  const ready = new Promise<{ id: string; pid: number }>((resolve) => (exported = resolve));
  let settle!: (commit: boolean) => void;
  const released = new Promise<boolean>((resolve) => (settle = resolve));
  let counted!: { resolve: (v: BackupTableCount[]) => void; reject: (e: unknown) => void };
  const counts = new Promise<BackupTableCount[]>((resolve, reject) => (counted = { resolve, reject }));
  // Whoever awaits counts may be gone (an aborted dump): never an unhandled rejection.
  counts.catch(() => undefined);

  let counting = false;
  // A cancel in flight must land before the session goes back to the pool (where it could hit
  // the next user's query) and before release() reports the pool free.
  let cancelling: Promise<void> = Promise.resolve();
  const session = sql.withSession(async (s) => {
    await s.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      // The first statement fixes the transaction's snapshot; pg_dump and the counts share it.
      const { rows } = await s.query<{ id: string; pid: number }>(
        'SELECT pg_export_snapshot() AS id, pg_backend_pid() AS pid',
      );
      exported(rows[0]!);
      counting = true;
      await countRows(s, (name) => sql.quoteIdent(name)).then(counted.resolve, counted.reject);
      counting = false;
      await cancelling;
      const commit = await released;
      await s.query(commit ? 'COMMIT' : 'ROLLBACK');
    } catch (err) {
      await s.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
  // A session that fails before exporting fails holdSnapshot; later failures reach counts.
  const failed = session.then(
    () => undefined,
    (err: unknown) => {
      counted.reject(err);
      throw err;
    },
  );
  failed.catch(() => undefined);
  const { id, pid } = await Promise.race([ready, failed.then(() => ready)]);

  let cancelled = false;
  return {
    id,
    counts,
    async release(commit) {
      settle(commit);
      await session.catch(() => undefined);
      await cancelling;
    },
    cancel() {
      settle(false);
      // Only while counting: afterwards the session idles (or is back in the pool, where a
      // cancel could hit someone else's query).
      if (cancelled || !counting) return;
      cancelled = true;
      // From another pooled session: the snapshot's session is busy counting a big table.
      cancelling = sql.query('SELECT pg_cancel_backend($1)', [pid]).then(
        () => undefined,
        () => undefined,
      );
    },
  };
}
