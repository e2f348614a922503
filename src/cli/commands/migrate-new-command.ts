import path from 'node:path';
import { ExitCode } from '../../core/exit-codes.js';
import { createMigrationFile } from '../../migrate/new-migration.js';
import type { CliContext } from '../context.js';

/** `dbward migrate new <name> [--ts]`: create an empty, correctly versioned migration file. */
export async function migrateNewCommand(
  ctx: CliContext,
  name: string,
  flags: { ts?: boolean; migrationsDir?: string },
): Promise<number> {
  const dir = flags.migrationsDir ?? (await configuredDir(ctx)) ?? 'migrations';
  const file = createMigrationFile(dir, name, { script: !!flags.ts });
  if (ctx.out.json) ctx.out.printJson({ file });
  else ctx.out.line(`created ${path.relative(process.cwd(), file) || file}`);
  return ExitCode.ok;
}

/**
 * The default target's `migrations.dir` from config. Creating a file needs no database, so a
 * project with nothing configured yet simply gets the default folder; a broken config still fails.
 */
async function configuredDir(ctx: CliContext): Promise<string | undefined> {
  const config = await ctx.config();
  if (config.targets.length === 0) return undefined;
  const [target] = await ctx.targets([]);
  return target?.migrations?.dir;
}
