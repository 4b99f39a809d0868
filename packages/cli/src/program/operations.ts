import { type Command } from 'commander';
import { emailOption, dataDir, configFile, json, type CommandContext } from './options.js';

/**
 * Registers `backup`, `restore` and `admin reset-password`. Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerOperations(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('backup')
    .description(
      'back up the platform: its database (SQLite online backup, or MariaDB dump in one transaction, while it runs), config and tls/ into one file (mode 0600)',
    )
    .requiredOption('--to <file>', 'the backup file to write (.tar.gz)')
    .addOption(dataDir())
    .addOption(configFile())
    .addOption(json())
    .action(async (options: { to: string; dataDir?: string; config?: string; json?: boolean }) => {
      await (await import('../commands/backup.js')).runBackup(options, io);
    });
  program
    .command('restore <file>')
    .description(
      'restore a backup into a data dir (empty, or with --force replacing its database, config and tls/); the platform must be stopped',
    )
    .option(
      '--force',
      'replace the platform of an initialised data dir (and the tables of a non-empty MariaDB database)',
    )
    .option(
      '--database-url <url>',
      "MariaDB backup: the (empty) database to load it into, written into the restored config; default the backed-up config's",
    )
    .addOption(dataDir())
    .addOption(json())
    .action(
      async (file: string, options: { force?: boolean; dataDir?: string; json?: boolean; databaseUrl?: string }) => {
        await (await import('../commands/backup.js')).runRestore(file, options, io);
      },
    );
  program
    .command('admin')
    .description('administration on the platform database itself (no sign-in needed)')
    .command('reset-password')
    .description(
      'set a new password for a user (default: the first platform administrator); printed once; their sessions are revoked',
    )
    .option('--email <email>', 'the user', emailOption)
    .addOption(dataDir())
    .addOption(configFile())
    .addOption(json())
    .action(async (options: { email?: string; dataDir?: string; config?: string; json?: boolean }) => {
      await (await import('../commands/admin.js')).runResetPassword(options, io);
    });
}
