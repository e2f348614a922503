import path from 'node:path';
import { open } from '../../connect/open.js';
import type { Target } from '../../core/target.js';
import { UsageError } from '../../core/errors.js';
import { ExitCode } from '../../core/exit-codes.js';
import { parseDuration } from '../../core/duration.js';
import type { MigrationStatusEntry } from '../../migrate/migration-status.js';
import {
  migrateBaseline,
  migrateDown,
  migrateRedo,
  migrateUp,
  readMigrationStatus,
  type MigrateContext,
  type MigrateRunResult,
} from '../../migrate/run-migrations.js';
import type { CliContext } from '../context.js';
import { paint, table } from '../output.js';

/** Flags every `migrate` subcommand shares. */
export interface MigrateFlags {
  /** `--migrations-dir`; default: the target's `migrations.dir` in config, else `migrations`. */
  migrationsDir?: string;
  /** `--migrations-table`; default: the target's `migrations.table`, else `dbward_migrations`. */
  migrationsTable?: string;
  lockTimeout: string;
  to?: string;
  step?: string;
  dryRun?: boolean;
  allowOutOfOrder?: boolean;
  exitCode?: boolean;
  /** `--schema-file`; default: schema.sql next to the migrations directory. */
  schemaFile?: string;
  /** false with `--no-dump`. */
  dump?: boolean;
}

type Action = 'up' | 'down' | 'plan' | 'status' | 'validate' | 'redo' | 'baseline';

/** `dbward migrate up|down|plan|status|validate`, thin over src/migrate/. */
export async function migrateCommand(
  ctx: CliContext,
  action: Action,
  flags: MigrateFlags,
  version?: string,
): Promise<number> {
  const [target] = (await ctx.targets([])) as [Target];
  const { dir, table, schemaFile } = migrationPaths(target, flags);
  const db = await open(target, { logger: ctx.logger });
  const dumps = schemaFile !== false && (action === 'up' || action === 'down' || action === 'redo');
  const mctx: MigrateContext = {
    db,
    dir,
    ...(dumps ? { schemaFile, target } : {}),
    table,
    lockTimeoutMs: parseDuration(flags.lockTimeout, '--lock-timeout'),
    onProgress: (e) => {
      if (e.phase === 'start') {
        const verb = e.direction === 'up' ? 'applying' : 'rolling back';
        ctx.out.note(paint(ctx.out, 'dim', `${verb} ${e.version}_${e.name} …`));
      }
    },
  };
  try {
    switch (action) {
      case 'status':
      case 'validate':
        return report(ctx, action, await readMigrationStatus(mctx), !!flags.exitCode);
      case 'up':
      case 'plan':
        return printRun(
          ctx,
          await migrateUp(mctx, {
            ...positiveStep(flags.step),
            ...(flags.to ? { to: flags.to } : {}),
            allowOutOfOrder: !!flags.allowOutOfOrder,
            dryRun: action === 'plan' || !!flags.dryRun,
          }),
        );
      case 'redo': {
        const runs = await migrateRedo(mctx);
        let code: number = ExitCode.ok;
        for (const r of runs) code = Math.max(code, printRun(ctx, r));
        return code;
      }
      case 'baseline':
        return printRun(ctx, await migrateBaseline(mctx, version!), 'recorded as applied (not run)');
      case 'down':
        return printRun(
          ctx,
          await migrateDown(mctx, {
            ...positiveStep(flags.step),
            ...(flags.to ? { to: flags.to } : {}),
            dryRun: !!flags.dryRun,
          }),
        );
    }
  } finally {
    await db.close();
  }
}

/**
 * Where a target's migrations are: the command line first, then the target's `migrations` block
 * in config, then the defaults (`migrations/`, `dbward_migrations`, `schema.sql` beside the folder).
 */
export function migrationPaths(
  target: Target,
  flags: Pick<MigrateFlags, 'migrationsDir' | 'migrationsTable' | 'schemaFile' | 'dump'>,
): { dir: string; table: string; schemaFile: string | false } {
  const dir = path.resolve(flags.migrationsDir ?? target.migrations?.dir ?? 'migrations');
  const table = flags.migrationsTable ?? target.migrations?.table ?? 'dbward_migrations';
  const configured = target.migrations?.schemaFile;
  const schemaFile =
    flags.dump === false
      ? false
      : flags.schemaFile !== undefined
        ? path.resolve(flags.schemaFile)
        : configured !== undefined
          ? configured
          : path.join(path.dirname(dir), 'schema.sql');
  return { dir, table, schemaFile };
}

function positiveStep(step: string | undefined): { step?: number } {
  if (step === undefined) return {};
  const n = Number(step);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--step must be a positive whole number, not "${step}".`);
  return { step: n };
}

function printRun(ctx: CliContext, result: MigrateRunResult, doneWord?: string): number {
  if (result.schemaDumpError) {
    const e = result.schemaDumpError;
    ctx.out.note(`warning: schema file not written: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`);
  } else if (result.schemaFile) {
    ctx.out.note(
      paint(ctx.out, 'dim', `wrote ${path.relative(process.cwd(), result.schemaFile) || result.schemaFile}`),
    );
  }
  if (ctx.out.json) {
    ctx.out.printJson(result);
    return ExitCode.ok;
  }
  const verb = result.direction === 'up' ? 'apply' : 'roll back';
  if (result.migrations.length === 0) {
    ctx.out.line(
      result.direction === 'up' ? 'Nothing to apply: the database is up to date.' : 'Nothing to roll back.',
    );
    return ExitCode.ok;
  }
  for (const m of result.migrations) {
    if (result.dryRun) {
      ctx.out.line(paint(ctx.out, 'bold', `-- would ${verb} ${m.version}_${m.name} (${m.file})`));
      ctx.out.line(m.sql ?? '-- (script migration)');
      ctx.out.line();
    } else {
      ctx.out.line(
        doneWord
          ? `${m.version}_${m.name} ${doneWord}`
          : `${result.direction === 'up' ? 'applied' : 'rolled back'} ${m.version}_${m.name} (${m.durationMs} ms)`,
      );
    }
  }
  if (!result.dryRun && !doneWord) {
    const total = result.migrations.reduce((sum, m) => sum + (m.durationMs ?? 0), 0);
    ctx.out.line(
      paint(
        ctx.out,
        'green',
        `${result.migrations.length} migration(s) ${result.direction === 'up' ? 'applied' : 'rolled back'} in ${total} ms`,
      ),
    );
  }
  return ExitCode.ok;
}

const problemStates = new Set(['edited', 'missing-file', 'out-of-order', 'partial']);

function report(
  ctx: CliContext,
  action: 'status' | 'validate',
  status: MigrationStatusEntry[],
  exitCode: boolean,
): number {
  const problems = status.filter((s) => problemStates.has(s.state));
  const pending = status.filter((s) => s.state === 'pending');
  const failed =
    action === 'validate' ? problems.length > 0 : exitCode && (problems.length > 0 || pending.length > 0);
  if (ctx.out.json) {
    ctx.out.printJson({ ok: !failed, migrations: status });
    return failed ? ExitCode.failed : ExitCode.ok;
  }
  if (action === 'status') {
    ctx.out.line(
      status.length === 0
        ? 'No migrations yet: create one with `dbward migrate new <name>`.'
        : table(
            ['VERSION', 'NAME', 'STATE', 'APPLIED AT'],
            status.map((s) => [s.version, s.name, colourState(ctx, s.state), s.appliedAt ?? '']),
          ),
    );
  }
  if (problems.length > 0) {
    for (const p of problems) ctx.out.note(`${p.version}_${p.name}: ${explain[p.state] ?? p.state}`);
  } else if (action === 'validate') {
    ctx.out.line(`${status.length} migration(s) checked: checksums and order are consistent.`);
  }
  return failed ? ExitCode.failed : ExitCode.ok;
}

const explain: Record<string, string> = {
  edited: 'the file changed after it was applied; restore it and put the change in a new migration',
  'missing-file': 'applied, but its file is gone; restore it from version control',
  'out-of-order':
    'older than the newest applied migration; apply with --allow-out-of-order or give it a newer version',
  partial: 'stopped part-way; fix the file and run `dbward migrate up` to resume',
};

function colourState(ctx: CliContext, state: string): string {
  if (state === 'applied') return paint(ctx.out, 'green', state);
  // Recorded, and replaced by a squashed baseline: history, not a problem.
  if (state === 'squashed') return paint(ctx.out, 'dim', state);
  if (state === 'pending') return paint(ctx.out, 'yellow', state);
  return paint(ctx.out, 'red', state);
}
