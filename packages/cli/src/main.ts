import { InsituError, LOG_LEVELS, checkEnv, type LogLevel } from '@insitu/core';
import { VERSION } from '@insitu/server';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runDbAck, runDbStatus, runDbSwitchover } from './commands/db.js';
import { runDbManager } from './commands/dbmanager.js';
import { runInit } from './commands/init.js';
import { runServer } from './commands/server.js';
import { runStatus } from './commands/status.js';
import { runUp } from './commands/up.js';
import { parsePort } from './data-dir.js';
import { line, resolveIo, type CliIo } from './io.js';

function portOption(value: string): number {
  try {
    return parsePort(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function emailOption(value: string): string {
  if (!/^[^\s@]{1,64}@[^\s@]{1,189}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not an email address`);
  return value;
}

const logLevel = () => new Option('--log-level <level>', 'log level').choices(LOG_LEVELS);
const dataDir = () => new Option('--data-dir <dir>', 'data directory (env INSITU_DATA_DIR, default ./.insitu)');
const configFile = () => new Option('--config <file>', 'config file (env INSITU_CONFIG, default <data dir>/config.yaml)');

/**
 * The `insitu` command line. Parses flags, calls library functions, and turns errors
 * into a message and an exit code: 0 ok, 1 failed, 2 usage or configuration error.
 * Tests call it in-process with their own streams and an AbortSignal.
 *
 * @example await main(['status', '--json'], { stdout, stderr })
 */
export async function main(argv: readonly string[], partialIo: Partial<CliIo> = {}): Promise<number> {
  const io = resolveIo(partialIo);
  let exitCode = 0;
  const program = new Command('insitu')
    .description('Insitu: Data-as-a-Service where data never leaves the data provider')
    .version(VERSION, '-v, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });

  program
    .command('init')
    .description('initialise a data directory: config, database and the first platform administrator (prints its password once)')
    .addOption(dataDir())
    .option('--admin-email <email>', 'email of the first administrator', emailOption, 'admin@insitu.local')
    .option('--database-url <url>', 'platform database: sqlite:PATH or mysql://USER@HOST:PORT/DB')
    .option('--host <address>', 'address the server will listen on', '127.0.0.1')
    .option('--port <port>', 'port the server will listen on', portOption, 7070)
    .option('--json', 'print the result as JSON')
    .action(async (options: { dataDir?: string; adminEmail: string; databaseUrl?: string; host: string; port: number; json?: boolean }) => {
      await runInit(options, io);
    });

  program
    .command('server')
    .description('run the platform server (REST API, health, metrics) until interrupted; logs JSON lines to stdout')
    .addOption(dataDir())
    .addOption(configFile())
    .option('--host <address>', 'listen address (env INSITU_HOST)')
    .option('--port <port>', 'listen port, 0 for any free one (env INSITU_PORT)', portOption)
    .addOption(logLevel())
    .action(async (options: { dataDir?: string; config?: string; host?: string; port?: number; logLevel?: LogLevel }) => {
      await runServer(options, io);
    });

  program
    .command('up')
    .description('all-in-one on this machine: platform on embedded defaults plus a demo provider; prints the URL and ready commands')
    .addOption(dataDir())
    .addOption(configFile())
    .option('--host <address>', 'listen address')
    .option('--port <port>', 'listen port (default 7070; 0 for any free one)', portOption)
    .option('--admin-email <email>', 'administrator email on first run', emailOption, 'admin@insitu.local')
    .addOption(logLevel())
    .option('--json', 'print the report as one JSON line')
    .action(async (options: { dataDir?: string; config?: string; host?: string; port?: number; adminEmail: string; logLevel?: LogLevel; json?: boolean }) => {
      await runUp(options, io);
    });

  program
    .command('status')
    .description('is the platform alive and ready? with a token, also its cluster view')
    .addOption(dataDir())
    .addOption(configFile())
    .option('--url <url>', 'platform URL (env INSITU_URL; default from the data dir config)')
    .option('--token <token>', 'bearer token of a platform admin (env INSITU_TOKEN)')
    .option('--json', 'print the result as JSON')
    .action(async (options: { dataDir?: string; config?: string; url?: string; token?: string; json?: boolean }) => {
      exitCode = await runStatus(options, io);
    });

  program
    .command('dbmanager')
    .description('run the MySQL-Manager of the platform database cluster until interrupted (one acts, the others watch); logs JSON lines to stdout')
    .option('--config <file>', 'dbmanager config file (env INSITU_DBMANAGER_CONFIG)')
    .option('--admin-port <port>', 'admin API port, 0 for any free one', portOption)
    .addOption(logLevel())
    .option('--json', 'print the ready line as JSON')
    .action(async (options: { config?: string; adminPort?: number; logLevel?: LogLevel; json?: boolean }) => {
      await runDbManager(options, io);
    });

  const db = program.command('db').description('the platform database cluster: status, planned switchover, acknowledge a failover');
  const dbOptions = (command: Command) =>
    command
      .option('--config <file>', 'dbmanager config file, to find the elected manager through coord (env INSITU_DBMANAGER_CONFIG)')
      .option('--url <url>', 'admin URL of a dbmanager (env INSITU_DBMANAGER_URL)')
      .option('--token <token>', 'admin token of the dbmanager (env INSITU_DBMANAGER_TOKEN)')
      .option('--json', 'print the result as JSON');
  dbOptions(db.command('status').description('topology, roles, GTID positions, lag, alerts and the last actions')).action(
    async (options: { config?: string; url?: string; token?: string; json?: boolean }) => {
      await runDbStatus(options, io);
    },
  );
  dbOptions(db.command('switchover').description('planned switchover to a healthy replica, with no transaction lost'))
    .requiredOption('--to <member>', 'the member to promote')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; to: string }) => {
      await runDbSwitchover(options, io);
    });
  dbOptions(db.command('ack').description('acknowledge the last failover: ends the cooldown so automatic failover may happen again'))
    .option('--by <name>', 'who acknowledges (recorded in the event)')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; by?: string }) => {
      await runDbAck(options, io);
    });

  try {
    checkEnv(io.env);
    if (argv.length === 0) {
      program.outputHelp();
      return 2;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (with a "did you mean" where it has one).
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof InsituError) {
      line(io.stderr, `insitu: ${error.message} [${error.code}]`);
      return error.code === 'INSITU_USAGE' || error.code === 'INSITU_CONFIG_INVALID' ? 2 : 1;
    }
    line(io.stderr, `insitu: internal error: ${(error as Error)?.stack ?? String(error)} [INSITU_INTERNAL]`);
    return 70;
  }
}
