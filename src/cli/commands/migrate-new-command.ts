import path from 'node:path';
import { ExitCode } from '../../core/exit-codes.js';
import { createMigrationFile } from '../../migrate/new-migration.js';
import type { CliContext } from '../context.js';

/** `dbward migrate new <name> [--ts]`: create an empty, correctly versioned migration file. */
export function migrateNewCommand(
  ctx: CliContext,
  name: string,
  flags: { ts?: boolean; migrationsDir: string },
): Promise<number> {
  const file = createMigrationFile(flags.migrationsDir, name, { script: !!flags.ts });
  if (ctx.out.json) ctx.out.printJson({ file });
  else ctx.out.line(`created ${path.relative(process.cwd(), file) || file}`);
  return Promise.resolve(ExitCode.ok);
}
