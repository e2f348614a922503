/**
 * The backup family of commands: `backup`, `backup verify`, `backup keygen`, `backups list`,
 * `backups prune`, `restore`, `daemon`. Implementations load when they run.
 */
import type { Command } from 'commander';
import type { BackupCommandFlags } from './commands/backup-command.js';
import type { BackupVerifyFlags } from './commands/backup-verify-command.js';
import type { BackupsFlags } from './commands/backups-command.js';
import type { RestoreFlags } from './commands/restore-command.js';
import type { CliContext } from './context.js';

type Run = (action: (ctx: CliContext) => Promise<number>, cmd: Command) => Promise<void>;

const storageOption = [
  '--storage <dir|s3://bucket/prefix>',
  'where backups live (default: config, else ./dbward-backups)',
] as const;
const keyFileOption = [
  '--key-file <file>',
  'the backup key file (mode 0600); else DBWARD_BACKUP_KEY or the config',
] as const;

export function addBackupCommands(program: Command, run: Run): void {
  const backup = program
    .command('backup')
    .description(
      'back up databases: dump → zstd → encryption → storage, manifest last; --verify restores it to prove it',
    )
    .argument('[targets...]', 'target names (default: the default target)')
    .option('-a, --all', 'every configured target')
    .option('--verify', 'restore the new backup into a scratch copy and compare row counts')
    .option('--no-verify', 'do not verify, even if the config says so')
    .option(...storageOption)
    .option(...keyFileOption)
    .option('--no-encrypt', 'do not encrypt, even though a key is configured')
    .option('--level <n>', 'zstd compression level 1–19 (default: config, else 3)')
    .option('-j, --jobs <n>', 'parallel dump workers (PostgreSQL: pg_dump -Fd -j N)')
    .option('--no-prune', 'do not apply retention after the backup')
    .action(async (names: string[], opts: BackupCommandFlags, cmd: Command) => {
      const { backupCommand } = await import('./commands/backup-command.js');
      await run((ctx) => backupCommand(ctx, names, opts), cmd);
    });
  backup
    .command('verify')
    .description('restore a backup into a throwaway place, check row counts and integrity, record the result')
    .argument('[id]', 'backup id, or latest (default: latest of the default target)')
    .option(...storageOption)
    .option(...keyFileOption)
    .option('-j, --jobs <n>', 'parallel restore workers where supported')
    .action(async (id: string | undefined, _opts: BackupVerifyFlags, cmd: Command) => {
      const { backupVerifyCommand } = await import('./commands/backup-verify-command.js');
      // `backup` has the same options: commander gives them to it when they follow `verify`.
      const opts = cmd.optsWithGlobals<BackupVerifyFlags>();
      await run((ctx) => backupVerifyCommand(ctx, id, opts), cmd);
    });
  backup
    .command('keygen')
    .description('print a new random backup key (store it as DBWARD_BACKUP_KEY or in a 0600 file)')
    .action(async (_opts: unknown, cmd: Command) => {
      const { backupKeygenCommand } = await import('./commands/backups-command.js');
      await run((ctx) => Promise.resolve(backupKeygenCommand(ctx)), cmd);
    });

  const backups = program.command('backups').description('the backups in storage: list, prune');
  backups
    .command('list')
    .description('list backups from their manifests in storage (newest first), with verification results')
    .argument('[targets...]', 'target names (default: every configured target)')
    .option('-a, --all', 'every configured target')
    .option(...storageOption)
    .action(async (names: string[], opts: BackupsFlags, cmd: Command) => {
      const { backupsListCommand } = await import('./commands/backups-command.js');
      await run((ctx) => backupsListCommand(ctx, names, opts), cmd);
    });
  backups
    .command('prune')
    .description(
      'apply retention (keep last N, daily/weekly/monthly/yearly); never the newest verified backup',
    )
    .argument('[targets...]', 'target names (default: the default target)')
    .option('-a, --all', 'every configured target')
    .option('--dry-run', 'show what would be removed, remove nothing')
    .option(...storageOption)
    .action(async (names: string[], opts: BackupsFlags, cmd: Command) => {
      const { backupsPruneCommand } = await import('./commands/backups-command.js');
      await run((ctx) => backupsPruneCommand(ctx, names, opts), cmd);
    });

  program
    .command('restore')
    .description(
      'restore a backup: checks the whole artifact first; refuses a non-empty database without --force',
    )
    .argument('<id>', 'backup id, or latest (of --target or the default target)')
    .option('--to <target>', 'restore into this configured target (default: the one backed up)')
    .option('--to-url <url>', 'restore into this database URL (prefer --to: arguments are visible in ps)')
    .option('--tables <names...>', 'only these tables (names as in `backups list --json`)')
    .option('--create', 'create the database first if it does not exist')
    .option('--force', 'replace what the database holds')
    .option('-j, --jobs <n>', 'parallel restore workers (PostgreSQL: pg_restore -j N)')
    .option(...storageOption)
    .option(...keyFileOption)
    .action(async (id: string, opts: RestoreFlags, cmd: Command) => {
      const { restoreCommand } = await import('./commands/restore-command.js');
      await run((ctx) => restoreCommand(ctx, id, opts), cmd);
    });

  program
    .command('daemon')
    .description(
      'run the backup, verify and prune schedules from the config (backups.schedule) until stopped',
    )
    .argument('[targets...]', 'target names (default: every configured target with a schedule)')
    .option('-a, --all', 'every configured target')
    .action(async (names: string[], opts: { all?: boolean }, cmd: Command) => {
      const { daemonCommand } = await import('./commands/daemon-command.js');
      await run((ctx) => daemonCommand(ctx, names, opts), cmd);
    });
}
