import { setTimeout as sleep } from 'node:timers/promises';
import { open } from '../../connect/open.js';
import { forEachTarget, serializeError } from '../../connect/per-target.js';
import { ConnectionError } from '../../core/errors.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import type { Target } from '../../core/target.js';
import type { CliContext } from '../context.js';
import { worstExitCode } from '../exit-status.js';
import { paint } from '../output.js';

export interface PingFlags {
  wait?: boolean;
  timeout?: string;
  interval?: string;
  all?: boolean;
}

interface PingOutcome {
  latencyMs: number;
  serverVersion: string;
  attempts: number;
  waitedMs: number;
}

/**
 * `dbward ping [target…] [--wait] [--timeout 60s]`: check that a database answers. With --wait,
 * keep trying until it does or the timeout passes (for CI jobs and containers that start before
 * their database); only connection failures are retried, a config error fails at once.
 */
export async function pingCommand(ctx: CliContext, names: string[], flags: PingFlags): Promise<number> {
  const targets = await ctx.targets(names, { all: !!flags.all });
  const timeoutMs = parseDuration(flags.timeout ?? '60s', '--timeout');
  const intervalMs = parseDuration(flags.interval ?? '1s', '--interval');
  const results = await forEachTarget(
    targets,
    (t) => pingOne(ctx, t, flags.wait ? timeoutMs : 0, intervalMs),
    {
      onError: (t, err) => ctx.onTargetError(t, err),
    },
  );
  if (ctx.out.json) {
    ctx.out.printJson(results);
  } else {
    for (const r of results) {
      if (r.ok) {
        const waited = r.value.attempts > 1 ? ` after ${formatDuration(r.value.waitedMs)}` : '';
        ctx.out.line(
          `${r.target}: ${paint(ctx.out, 'green', 'ok')} ${r.value.serverVersion}, ${r.value.latencyMs.toFixed(1)} ms${waited}`,
        );
      } else {
        ctx.out.line(`${r.target}: ${paint(ctx.out, 'red', 'failed')}: ${r.error.message}`);
        if (r.error.hint) ctx.out.line(`  hint: ${r.error.hint}`);
      }
    }
  }
  return worstExitCode(results);
}

async function pingOne(
  ctx: CliContext,
  target: Target,
  waitMs: number,
  intervalMs: number,
): Promise<PingOutcome> {
  const started = Date.now();
  for (let attempts = 1; ; attempts++) {
    const remaining = waitMs - (Date.now() - started);
    try {
      const bounded: Target = waitMs
        ? {
            ...target,
            options: {
              ...target.options,
              connectTimeoutMs: Math.max(500, Math.min(target.options.connectTimeoutMs, remaining)),
            },
          }
        : target;
      const db = await open(bounded, { logger: ctx.logger });
      try {
        const latencyMs = await db.ping();
        return {
          latencyMs,
          serverVersion: await db.connection.serverVersion(),
          attempts,
          waitedMs: Date.now() - started,
        };
      } finally {
        await db.close();
      }
    } catch (err) {
      if (!(err instanceof ConnectionError) || Date.now() - started + intervalMs > waitMs) throw err;
      ctx.out.note(
        paint(
          ctx.out,
          'dim',
          `waiting for ${target.name}: ${serializeError(err).message.split(':')[0]} (attempt ${attempts})`,
        ),
      );
      await sleep(intervalMs);
    }
  }
}
