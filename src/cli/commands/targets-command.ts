import { open } from '../../connect/open.js';
import { forEachTarget } from '../../connect/per-target.js';
import { ExitCode } from '../../core/exit-codes.js';
import { engineForUrl } from '../../engines/registry.js';
import type { CliContext } from '../context.js';
import { paint, table } from '../output.js';
import { worstExitCode } from '../exit-status.js';

/** `dbward targets`: every configured target, its engine, whether it answers, its version. */
export async function targetsCommand(ctx: CliContext): Promise<number> {
  const config = await ctx.config();
  const targets = await ctx.targets([], { all: true });
  const results = await forEachTarget(
    targets,
    async (target) => {
      const db = await open(target, { logger: ctx.logger });
      try {
        return await db.health();
      } finally {
        await db.close();
      }
    },
    { onError: (t, err) => ctx.onTargetError(t, err) },
  );
  const rows = targets.map((target, i) => {
    const result = results[i]!;
    const engine = engineForUrl(target.url);
    return {
      name: target.name,
      engine: engine.id,
      url: target.displayUrl,
      default: target.name === config.defaultTarget,
      reachable: result.ok && result.value.reachable,
      latencyMs: result.ok ? result.value.latencyMs : null,
      serverVersion: result.ok ? result.value.serverVersion : null,
      ...(result.ok ? {} : { error: result.error }),
    };
  });
  const code = worstExitCode(results);
  if (ctx.out.json) {
    ctx.out.printJson({ source: config.source, targets: rows });
    return code;
  }
  ctx.out.line(
    table(
      ['TARGET', 'ENGINE', 'URL', 'STATUS', 'VERSION'],
      rows.map((r) => [
        r.default ? `${r.name} ${paint(ctx.out, 'dim', '(default)')}` : r.name,
        r.engine,
        r.url,
        r.reachable
          ? paint(ctx.out, 'green', `ok ${r.latencyMs ?? ''} ms`)
          : paint(ctx.out, 'red', 'unreachable'),
        r.serverVersion ?? '-',
      ]),
    ),
  );
  for (const r of rows) {
    if (r.error)
      ctx.out.note(`${r.name}: ${r.error.message}${r.error.hint ? `\n  hint: ${r.error.hint}` : ''}`);
  }
  if (config.source) ctx.out.note(paint(ctx.out, 'dim', `targets from ${config.source}`));
  return code === ExitCode.ok ? ExitCode.ok : code;
}
