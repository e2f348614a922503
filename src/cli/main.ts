/**
 * The dbward command line. This is the only module that ends the process: commands return an
 * exit code, errors carry one, and this file turns them into the process status. Command
 * implementations are imported when they run, so `dbward --version` loads no driver.
 */
import { Command, CommanderError, Option } from 'commander';
import { ExitCode } from '../core/exit-codes.js';
import { DbwardError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { dbwardVersion } from '../core/version.js';
import type { DoctorFlags } from './commands/doctor-command.js';
import type { MigrateFlags } from './commands/migrate-command.js';
import type { MigrateSquashFlags } from './commands/migrate-squash-command.js';
import type { SeedFlags } from './commands/seed-command.js';
import { createContext, type CliContext, type GlobalFlags } from './context.js';
import { addBackupCommands } from './backup-commands.js';
import { stackWithCauses } from './error-stack.js';

const version = dbwardVersion();

function buildProgram(
  run: (action: (ctx: CliContext) => Promise<number>, cmd: Command) => Promise<void>,
): Command {
  const program = new Command('dbward')
    .description('Keeps watch over your databases: PostgreSQL, MySQL/MariaDB, SQLite, Redis.')
    .version(version, '-V, --version', 'print the dbward version')
    .option('--config <file>', 'config file (default: nearest dbward.config.{ts,js,json})')
    .option(
      '--url <url>',
      'database URL, instead of config (prefer DATABASE_URL: arguments are visible in ps)',
    )
    .option('-t, --target <name>', 'target from the config file')
    .option('--env <name>', 'config environment overrides to apply (default: DBWARD_ENV, NODE_ENV)')
    .option('--json', 'print machine-readable JSON on stdout')
    .option('-q, --quiet', 'print only results and errors')
    .option('-v, --verbose', 'print debug details and stack traces')
    .option('--no-color', 'no colours (also NO_COLOR=1)')
    .showSuggestionAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failed or found problems, 2 usage or config error, 3 cannot connect.\nDocs: docs/cli.md',
    );

  program
    .command('targets')
    .description('list configured targets: engine, URL (redacted), reachable, server version')
    .action(async (_opts, cmd: Command) => {
      const { targetsCommand } = await import('./commands/targets-command.js');
      await run((ctx) => targetsCommand(ctx), cmd);
    });

  program
    .command('ping')
    .description('check that databases answer; --wait polls until they do (for CI and containers)')
    .argument('[targets...]', 'target names (default: the default target)')
    .option('-w, --wait', 'keep trying until the database answers or --timeout passes')
    .option('--timeout <duration>', 'how long --wait waits', '60s')
    .option('--interval <duration>', 'pause between attempts with --wait', '1s')
    .option('-a, --all', 'every configured target')
    .action(
      async (
        names: string[],
        opts: { wait?: boolean; timeout?: string; interval?: string; all?: boolean },
        cmd: Command,
      ) => {
        const { pingCommand } = await import('./commands/ping-command.js');
        await run((ctx) => pingCommand(ctx, names, opts), cmd);
      },
    );

  program
    .command('inspect')
    .description('show the schema (SQL) or keyspace (Redis) as a summary, or the full model with --json')
    .argument('[target]', 'target name (default: the default target)')
    .option('-s, --schema <names...>', 'only these schemas (PostgreSQL)')
    .option('-d, --detail', 'list every column, index and foreign key')
    .option('--sample <keys>', 'Redis: keys to sample per database with SCAN (default 10000)')
    .action(
      async (
        name: string | undefined,
        opts: { schema?: string[]; detail?: boolean; sample?: string },
        cmd: Command,
      ) => {
        const { inspectCommand } = await import('./commands/inspect-command.js');
        await run((ctx) => inspectCommand(ctx, name, opts), cmd);
      },
    );

  const migrate = program
    .command('migrate')
    .description(
      'schema migrations: new, up, down, redo, plan, status, validate, baseline, squash, lock, unlock (PostgreSQL, MySQL/MariaDB, SQLite; Redis: scripts)',
    );
  migrate
    .command('new')
    .description('create an empty migration file named <version>_<name>.sql (or .ts with --ts)')
    .argument('<name>', 'what the migration does, e.g. create_users')
    .option('--ts', 'a TypeScript migration exporting up(db) / down(db)')
    .option('--migrations-dir <dir>', 'where migrations live (default: config, else migrations)')
    .action(async (name: string, opts: { ts?: boolean; migrationsDir: string }, cmd: Command) => {
      const { migrateNewCommand } = await import('./commands/migrate-new-command.js');
      await run((ctx) => migrateNewCommand(ctx, name, opts), cmd);
    });
  const subcommands: [string, string, string[]][] = [
    [
      'up',
      'apply pending migrations (all, --to V or --step N)',
      ['to', 'step', 'dry-run', 'allow-out-of-order'],
    ],
    [
      'down',
      'roll back the newest migration (or --step N, or down --to V)',
      ['to', 'step', 'dry-run', 'schema-file', 'no-dump'],
    ],
    [
      'plan',
      'print the SQL `migrate up` would run, without running it',
      ['to', 'step', 'allow-out-of-order'],
    ],
    ['status', 'applied, pending, edited, missing and out-of-order migrations', ['exit-code']],
    ['validate', 'check checksums and order against the database (for CI); exit 1 on problems', []],
    ['redo', 'roll back the newest migration and apply it again', ['schema-file', 'no-dump']],
  ];
  const optionText: Record<string, [string, string]> = {
    to: ['--to <version>', 'up: apply up to and including V; down: roll back everything after V'],
    step: ['--step <n>', 'how many migrations'],
    'dry-run': ['--dry-run', 'print what would run, change nothing'],
    'allow-out-of-order': ['--allow-out-of-order', 'apply files older than the newest applied one'],
    'exit-code': ['--exit-code', 'exit 1 when anything is pending or inconsistent'],
    'schema-file': [
      '--schema-file <path>',
      'where to write the schema after a change (default: schema.sql beside the migrations dir)',
    ],
    'no-dump': ['--no-dump', 'do not write the schema file'],
  };
  for (const [name, description, options] of subcommands) {
    const sub = migrate
      .command(name)
      .description(description)
      .option('--migrations-dir <dir>', 'where migrations live (default: config, else migrations)')
      .option('--migrations-table <name>', 'tracking table (default: config, else dbward_migrations)')
      .option('--lock-timeout <duration>', 'how long to wait for another run', '60s');
    for (const option of options) sub.option(...optionText[option]!);
    sub.action(async (opts: MigrateFlags, cmd: Command) => {
      const { migrateCommand } = await import('./commands/migrate-command.js');
      await run((ctx) => migrateCommand(ctx, name as 'up', opts), cmd);
    });
  }
  migrate
    .command('baseline')
    .description(
      'adopt an existing database: record migrations up to <version> as applied, without running them',
    )
    .argument('<version>', 'the newest migration the database already has')
    .option('--migrations-dir <dir>', 'where migrations live (default: config, else migrations)')
    .option('--migrations-table <name>', 'tracking table (default: config, else dbward_migrations)')
    .option('--lock-timeout <duration>', 'how long to wait for another run', '60s')
    .action(async (version: string, opts: MigrateFlags, cmd: Command) => {
      const { migrateCommand } = await import('./commands/migrate-command.js');
      await run((ctx) => migrateCommand(ctx, 'baseline', opts, version), cmd);
    });

  migrate
    .command('squash')
    .description('replace the migrations up to --to V with one baseline built from the schema dump')
    .requiredOption('--to <version>', 'the newest migration to squash (inclusive)')
    .option('--migrations-dir <dir>', 'where migrations live (default: config, else migrations)')
    .option('--migrations-table <name>', 'tracking table (default: config, else dbward_migrations)')
    .option('--dry-run', 'build and print the baseline, write and remove nothing')
    .option('--lock-timeout <duration>', 'how long to wait for the migration lock', '60s')
    .action(async (opts: MigrateSquashFlags, cmd: Command) => {
      const { migrateSquashCommand } = await import('./commands/migrate-squash-command.js');
      await run((ctx) => migrateSquashCommand(ctx, opts), cmd);
    });

  for (const action of ['lock', 'unlock'] as const) {
    const sub = migrate
      .command(action)
      .description(
        action === 'lock'
          ? 'show who holds the migration lock (pid, host, since; stale when its holder is gone)'
          : 'release the migration lock when its holder is gone; --force also when it may be alive (ends its session)',
      );
    if (action === 'unlock') {
      sub.option('--force', 'release it even though the holder may be alive: ends its database session');
    }
    sub
      .option('--migrations-dir <dir>', 'where migrations live (default: config, else migrations)')
      .option('--migrations-table <name>', 'tracking table (default: config, else dbward_migrations)')
      .option('--lock-timeout <duration>', 'how long to wait for another run', '60s')
      .action(async (opts: { force?: boolean }, cmd: Command) => {
        const { migrateLockCommand } = await import('./commands/migrate-lock-command.js');
        await run((ctx) => migrateLockCommand(ctx, action, opts), cmd);
      });
  }

  program
    .command('seed')
    .description(
      'run seed files (seeds/, then seeds/<env>/ for --env): new ones, and changed ones marked repeatable',
    )
    .option('--seeds-dir <dir>', 'where seeds live (default: config, else seeds)')
    .option('--seeds-table <name>', 'tracking table (default: config, else dbward_seeds)')
    .option('--dry-run', 'print what would run, change nothing')
    .option('--lock-timeout <duration>', 'how long to wait for a migration or another seed run', '60s')
    .action(async (opts: SeedFlags, cmd: Command) => {
      const { seedCommand } = await import('./commands/seed-command.js');
      await run((ctx) => seedCommand(ctx, opts), cmd);
    });

  program
    .command('doctor')
    .description(
      'health checks with evidence and the exact fix: connections, locks, indexes, bloat, memory, …',
    )
    .argument('[targets...]', 'target names (default: the default target)')
    .option('-a, --all', 'every configured target')
    .option('--fail-on <level>', 'exit 1 when a finding is at least: info, warn, critical, never', 'critical')
    .option(
      '--only <ids...>',
      'run only these checks (ids or prefixes such as indexes.; comma-separated works)',
    )
    .option('--skip <ids...>', 'leave these checks out')
    .option('--timeout <duration>', 'statement timeout for every query doctor runs', '5s')
    .option('--sample <keys>', 'Redis: keys to sample for big keys and TTLs (default 10000)')
    .action(async (names: string[], opts: DoctorFlags, cmd: Command) => {
      const { doctorCommand } = await import('./commands/doctor-command.js');
      await run((ctx) => doctorCommand(ctx, names, opts), cmd);
    });

  addBackupCommands(program, run);

  program
    .command('demo')
    .description('create a small demo SQLite database (dbward-demo.db) and inspect it')
    .addOption(new Option('--file <path>', 'where to create the demo database').default('dbward-demo.db'))
    .action(async (opts: { file?: string }, cmd: Command) => {
      const { demoCommand } = await import('./commands/demo-command.js');
      await run((ctx) => demoCommand(ctx, opts), cmd);
    });

  return program;
}

function report(err: unknown, flags: GlobalFlags): number {
  const verbose = !!flags.verbose;
  if (err instanceof DbwardError) {
    if (flags.json) {
      process.stdout.write(JSON.stringify({ error: err.toJSON() }, null, 2) + '\n');
    } else {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    }
    if (verbose) process.stderr.write(redact(stackWithCauses(err)) + '\n');
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (flags.json) {
    process.stdout.write(
      JSON.stringify({ error: { code: 'E_UNEXPECTED', message: redact(message), exitCode: 1 } }) + '\n',
    );
  } else {
    process.stderr.write(redact(`error: unexpected failure: ${message}\n`));
    process.stderr.write(
      verbose ? redact(stackWithCauses(err)) + '\n' : '  (run again with --verbose for details)\n',
    );
  }
  return ExitCode.failed;
}

async function main(argv: string[]): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let flags: GlobalFlags = {};
  const program = buildProgram(async (action, cmd) => {
    flags = cmd.optsWithGlobals<GlobalFlags>();
    if (flags.url && /:\/\/[^/@\s]*:[^@/\s]+@/.test(flags.url) && !flags.quiet) {
      process.stderr.write(
        'dbward warn: a password in --url is visible to other users in `ps`; prefer DATABASE_URL or a config file.\n',
      );
    }
    exitCode = await action(createContext(flags));
  });
  program.configureOutput({
    writeErr: (text) => process.stderr.write(text),
    outputError: (text, write) => write(redact(text)),
  });
  const shutdown = (signal: NodeJS.Signals): void => {
    // A command that stops gracefully on its own (dbward daemon) listens for the signal too.
    if (process.listenerCount(signal) > 0) return;
    void import('../connect/open.js').then(({ closeAll }) =>
      closeAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143)),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    return report(err, flags);
  }
}

/** Resolve once everything written so far to `stream` has been handed to the OS. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

// A reader that went away (`dbward … | head`) is not a failure: stop quietly, as Unix tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(ExitCode.ok);
});

const code = await main(process.argv);
// Pools and sockets may keep the event loop alive, so the process ends explicitly — but only
// after stdout and stderr have drained: a large write into a pipe is asynchronous, and exiting
// first would cut `inspect --json | jq` off at the pipe's 64 KiB buffer.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
