import { performance } from 'node:perf_hooks';
import { open } from '../../connect/open.js';
import { ExitCode } from '../../core/exit-codes.js';
import { UsageError } from '../../core/errors.js';
import type { CliContext } from '../context.js';
import { renderSchema } from '../render-schema.js';

export interface InspectFlags {
  schema?: string[];
  sample?: string;
  detail?: boolean;
}

/** `dbward inspect [target]`: the schema as the engine-neutral model (`--json`) or a summary. */
export async function inspectCommand(
  ctx: CliContext,
  name: string | undefined,
  flags: InspectFlags,
): Promise<number> {
  const [target] = await ctx.targets(name ? [name] : []);
  const sampleKeys = flags.sample === undefined ? undefined : Number(flags.sample);
  if (sampleKeys !== undefined && !(Number.isInteger(sampleKeys) && sampleKeys > 0)) {
    throw new UsageError(`--sample must be a positive whole number, not "${flags.sample}".`);
  }
  const db = await open(target!, { logger: ctx.logger });
  try {
    const started = performance.now();
    const model = await db.inspect({
      ...(flags.schema?.length ? { schemas: flags.schema } : {}),
      ...(sampleKeys ? { sampleKeys } : {}),
    });
    if (ctx.out.json) ctx.out.printJson(model);
    else
      ctx.out.line(
        renderSchema(ctx.out, model, { detail: !!flags.detail, elapsedMs: performance.now() - started }),
      );
    return ExitCode.ok;
  } finally {
    await db.close();
  }
}
