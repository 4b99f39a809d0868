import { type LogLevel } from '@insitu/core/basics';
import { type Command } from 'commander';
import { emailOption, portOption, logLevel, dataDir, configFile, type CommandContext } from './options.js';

/**
 * Registers `init`, `server`, `up` and `status`: a platform on this machine. Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerPlatform(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('init')
    .description(
      'initialise a data directory: config, database and the first platform administrator (prints its password once)',
    )
    .addOption(dataDir())
    .option('--admin-email <email>', 'email of the first administrator', emailOption, 'admin@insitu.local')
    .option('--database-url <url>', 'platform database: sqlite:PATH or mysql://USER@HOST:PORT/DB')
    .option('--host <address>', 'address the server will listen on', '127.0.0.1')
    .option('--port <port>', 'port the server will listen on', portOption, 7070)
    .option('--json', 'print the result as JSON')
    .action(
      async (options: {
        dataDir?: string;
        adminEmail: string;
        databaseUrl?: string;
        host: string;
        port: number;
        json?: boolean;
      }) => {
        await (await import('../commands/init.js')).runInit(options, io);
      },
    );

  program
    .command('server')
    .description('run the platform server (REST API, health, metrics) until interrupted; logs JSON lines to stdout')
    .addOption(dataDir())
    .addOption(configFile())
    .option('--host <address>', 'listen address (env INSITU_HOST)')
    .option('--port <port>', 'listen port, 0 for any free one (env INSITU_PORT)', portOption)
    .addOption(logLevel())
    .action(
      async (options: { dataDir?: string; config?: string; host?: string; port?: number; logLevel?: LogLevel }) => {
        await (await import('../commands/server.js')).runServer(options, io);
      },
    );

  program
    .command('up')
    .description(
      'all-in-one on this machine: platform on embedded defaults plus a demo provider; prints the URL and ready commands',
    )
    .addOption(dataDir())
    .addOption(configFile())
    .option('--host <address>', 'listen address')
    .option('--port <port>', 'listen port (default 7070; 0 for any free one)', portOption)
    .option('--admin-email <email>', 'administrator email on first run', emailOption, 'admin@insitu.local')
    .addOption(logLevel())
    .option('--json', 'print the report as one JSON line')
    .action(
      async (options: {
        dataDir?: string;
        config?: string;
        host?: string;
        port?: number;
        adminEmail: string;
        logLevel?: LogLevel;
        json?: boolean;
      }) => {
        await (await import('../commands/up.js')).runUp(options, io);
      },
    );

  program
    .command('status')
    .description('is the platform alive and ready? with a token, also its cluster view')
    .addOption(dataDir())
    .addOption(configFile())
    .option('--url <url>', 'platform URL (env INSITU_URL; default from the data dir config)')
    .option('--token <token>', 'bearer token of a platform admin (env INSITU_TOKEN)')
    .option('--json', 'print the result as JSON')
    .action(async (options: { dataDir?: string; config?: string; url?: string; token?: string; json?: boolean }) => {
      ctx.exitCode = await (await import('../commands/status.js')).runStatus(options, io);
    });
}
