import path from 'node:path';
import { open } from '../../connect/open.js';
import { parseDuration } from '../../core/duration.js';
import { NotAvailableError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import type { Target } from '../../core/target.js';
import { squashMigrations } from '../../migrate/squash-migrations.js';
import type { CliContext } from '../context.js';
import { paint } from '../output.js';
import { migrationPaths } from './migrate-command.js';

export interface MigrateSquashFlags {
  to: string;
  migrationsDir?: string;
  migrationsTable?: string;
  lockTimeout: string;
  dryRun?: boolean;
}

/**
 * `dbward migrate squash --to V`: replace the migrations up to V with one baseline built from
 * the schema dump of a scratch database; thin over src/migrate/squash-migrations.ts.
 */
export async function migrateSquashCommand(ctx: CliContext, flags: MigrateSquashFlags): Promise<number> {
  const [target] = (await ctx.targets([])) as [Target];
  const { dir, table } = migrationPaths(target, flags);
  const lockTimeoutMs = parseDuration(flags.lockTimeout, '--lock-timeout');
  const db = await open(target, { logger: ctx.logger });
  try {
    if (db.kind !== 'sql') {
      throw new NotAvailableError(
        `migrate squash is not available for ${db.engine.displayName}: it builds a SQL baseline from a schema dump.`,
      );
    }
    const result = await squashMigrations({
      db,
      target,
      dir,
      to: flags.to,
      table,
      lockTimeoutMs,
      dryRun: !!flags.dryRun,
      logger: ctx.logger,
      onProgress: (message) => ctx.out.note(paint(ctx.out, 'dim', `${message} …`)),
    });
    if (ctx.out.json) {
      ctx.out.printJson(result);
      return ExitCode.ok;
    }
    const rel = (file: string): string => path.relative(process.cwd(), file) || file;
    const count = `${result.removed.length} migration(s)`;
    if (result.dryRun) {
      ctx.out.line(paint(ctx.out, 'bold', `-- would write ${rel(result.file)}:`));
      ctx.out.line(result.content);
      ctx.out.line(paint(ctx.out, 'bold', `-- would remove ${count}:`));
      for (const m of result.removed) ctx.out.line(`   ${rel(m.file)}`);
      ctx.out.line('Dry run: nothing was written or removed.');
      return ExitCode.ok;
    }
    ctx.out.line(`squashed ${result.from}..${result.to} (${count}) into ${rel(result.file)}`);
    for (const m of result.removed) ctx.out.line(`removed ${rel(m.file)}`);
    ctx.out.line(
      paint(
        ctx.out,
        'green',
        `The removed files remain in version control. Databases that ran ${result.to} count the baseline as applied; new databases run it instead.`,
      ),
    );
    return ExitCode.ok;
  } finally {
    await db.close();
  }
}
