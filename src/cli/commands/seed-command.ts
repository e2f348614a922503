import path from 'node:path';
import { open } from '../../connect/open.js';
import { parseDuration } from '../../core/duration.js';
import { ExitCode } from '../../core/exit-codes.js';
import { defaultSeedsTable, runSeeds, type SeedRunResult } from '../../seed/run-seeds.js';
import type { CliContext } from '../context.js';
import { paint } from '../output.js';

export interface SeedFlags {
  /** `--seeds-dir`; default: the target's `seeds.dir`, else `seeds`. */
  seedsDir?: string;
  /** `--seeds-table`; default: the target's `seeds.table`, else `dbward_seeds`. */
  seedsTable?: string;
  dryRun?: boolean;
  lockTimeout: string;
}

/** `dbward seed`: run new seeds and changed repeatable ones, thin over src/seed/. */
export async function seedCommand(ctx: CliContext, flags: SeedFlags): Promise<number> {
  const lockTimeoutMs = parseDuration(flags.lockTimeout, '--lock-timeout');
  const [target] = await ctx.targets([]);
  const dir = path.resolve(flags.seedsDir ?? target!.seeds?.dir ?? 'seeds');
  const table = flags.seedsTable ?? target!.seeds?.table ?? defaultSeedsTable;
  const env = ctx.flags.env || process.env.DBWARD_ENV || process.env.NODE_ENV || null;
  const text = !ctx.out.json;
  const db = await open(target!, { logger: ctx.logger });
  try {
    const result = await runSeeds({
      db,
      dir,
      env,
      table,
      lockTimeoutMs,
      dryRun: !!flags.dryRun,
      // Lines as seeds finish, so a failure later in the run still shows what ran before it.
      onProgress: (e) => {
        if (!text) return;
        if (e.phase === 'start') ctx.out.note(paint(ctx.out, 'dim', `running ${e.id} …`));
        else if (e.phase === 'skip') ctx.out.line(`skipped ${e.id} (unchanged)`);
        else if (e.action === 'rerun') ctx.out.line(`re-ran ${e.id} (changed, ${e.durationMs} ms)`);
        else ctx.out.line(`ran ${e.id} (${e.durationMs} ms)`);
      },
    });
    if (ctx.out.json) ctx.out.printJson(result);
    else printSummary(ctx, result, dir);
    return ExitCode.ok;
  } finally {
    await db.close();
  }
}

function printSummary(ctx: CliContext, result: SeedRunResult, dir: string): void {
  const where = path.relative(process.cwd(), dir) || dir;
  const envNote = result.env ? ` (environment ${result.env})` : '';
  if (result.seeds.length === 0) {
    ctx.out.line(`No seeds found in ${where}${path.sep}${envNote}.`);
    return;
  }
  if (result.dryRun) {
    for (const s of result.seeds) {
      ctx.out.line(
        s.action === 'run'
          ? `would run ${s.id}`
          : s.action === 'rerun'
            ? `would re-run ${s.id} (changed)`
            : `would skip ${s.id} (unchanged)`,
      );
    }
    ctx.out.line(`Dry run${envNote}: nothing was changed.`);
    return;
  }
  const count = (action: string): number => result.seeds.filter((s) => s.action === action).length;
  const ran = count('run');
  const reran = count('rerun');
  const skipped = count('skip');
  const total = result.seeds.reduce((sum, s) => sum + (s.durationMs ?? 0), 0);
  const parts = [`${ran} ran`, ...(reran > 0 ? [`${reran} re-ran`] : []), `${skipped} skipped (unchanged)`];
  const summary = `${result.seeds.length} seed(s)${envNote}: ${parts.join(', ')}`;
  ctx.out.line(
    ran + reran > 0 ? paint(ctx.out, 'green', `${summary} in ${total} ms`) : `${summary}: nothing to do.`,
  );
}
