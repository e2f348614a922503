import type { PoolStats } from '../engines/contract.js';

/** What `health()` returns: plain data, safe to print or store. */
export interface HealthReport {
  target: string;
  engine: string;
  reachable: boolean;
  /** Round trip of one ping, in ms. */
  latencyMs: number | null;
  serverVersion: string | null;
  pool: PoolStats | null;
  /** Present when unreachable: the diagnosed error (redacted). */
  error?: { code: string; message: string; hint?: string };
}
