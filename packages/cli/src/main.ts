import { InsituError, LOG_LEVELS, VERSION, checkEnv, type LogLevel } from '@insitu/core/basics';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { line, resolveIo, type CliIo } from './io.js';

function portOption(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError(`--port must be a number from 0 to 65535, got "${value}"`);
  return Number(value);
}

function positiveInt(value: string, flag: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`${flag} must be a positive integer, got "${value}"`);
  return Number(value);
}

function nonNegativeInt(value: string, flag: string): number {
  if (!/^\d{1,6}$/.test(value)) throw new InvalidArgumentError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

function emailOption(value: string): string {
  if (!/^[^\s@]{1,64}@[^\s@]{1,189}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not an email address`);
  return value;
}

const logLevel = () => new Option('--log-level <level>', 'log level').choices(LOG_LEVELS);
const dataDir = () => new Option('--data-dir <dir>', 'data directory (env INSITU_DATA_DIR, default ./.insitu)');
const configFile = () => new Option('--config <file>', 'config file (env INSITU_CONFIG, default <data dir>/config.yaml)');

/**
 * The `insitu` command line. Parses flags, loads the one command's module it runs (so
 * `insitu --help` loads none of the platform's packages), calls library functions, and turns errors
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
      await (await import('./commands/init.js')).runInit(options, io);
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
      await (await import('./commands/server.js')).runServer(options, io);
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
      await (await import('./commands/up.js')).runUp(options, io);
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
      exitCode = await (await import('./commands/status.js')).runStatus(options, io);
    });

  program
    .command('agent')
    .description('run the provider agent: enrol once, publish the metadata of the sources in agent.yaml, run deployed applications')
    .requiredOption('--config <file>', 'agent config (agent.yaml): sources, sync interval, sandbox, limits')
    .option('--platform <urls>', 'platform URL, or URLs of several nodes separated by commas (env INSITU_URL)')
    .option('--ca <file>', "the platform CA to pin (PEM; the platform's tls/ca.pem)")
    .option('--token <token>', 'single-use enrolment token, needed on the first run only')
    .addOption(dataDir())
    .option('--name <name>', 'agent name shown on the platform (default: config name, else host name)')
    .option('--no-sandbox', 'run applications without bubblewrap (only if agent.yaml sets sandbox.allowNoSandbox; warns)')
    .option('--once', 'enrol, sync the metadata once, print the report and exit')
    .option('--json', 'with --once: print the report as JSON')
    .addOption(logLevel())
    .action(async (options: { config: string; platform?: string; ca?: string; token?: string; dataDir?: string; name?: string; sandbox?: boolean; once?: boolean; json?: boolean; logLevel?: LogLevel }) => {
      exitCode = await (await import('./commands/agent.js')).runAgent(options, io);
    });

  const app = program.command('app').description('data applications');
  app
    .command('dev <dir>')
    .description('run an application in the sandbox against local sample data and serve it on localhost')
    .option('--data <file>', 'sample data: FILE.csv, NAME=FILE.csv or a SQLite file (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--host <address>', 'address to serve on', '127.0.0.1')
    .option('--port <port>', 'port to serve on (0: any free one)', portOption, 0)
    .option('--no-sandbox', 'run without bubblewrap (warns; development only)')
    .addOption(logLevel())
    .action(async (dir: string, options: { data: string[]; host: string; port: number; sandbox?: boolean; logLevel?: LogLevel }) => {
      await (await import('./commands/app-dev.js')).runAppDev(dir, options, io);
    });

  const url = () => new Option('--url <url>', 'platform URL (env INSITU_URL; default from the data dir config)');
  const token = () => new Option('--token <token>', 'bearer token (env INSITU_TOKEN)');
  const json = () => new Option('--json', 'print the result as JSON');
  type Remote = { url?: string; token?: string; dataDir?: string; json?: boolean };

  app
    .command('submit <dir>')
    .description('pack a bundle directory canonically and submit it as a new version (creates the application on first submit)')
    .requiredOption('--org <id>', 'organisation that owns the application')
    .addOption(url()).addOption(token()).addOption(dataDir()).addOption(json())
    .action(async (dir: string, options: Remote & { org: string }) => {
      await (await import('./commands/app.js')).runAppSubmit(dir, options, io);
    });
  app
    .command('approve <id>')
    .description('approve (or --reject) an approval request, or every pending request of a version (ver_…) addressed to your providers')
    .option('--reject', 'reject instead of approving')
    .option('--reason <text>', 'why (required with --reject)')
    .addOption(url()).addOption(token()).addOption(dataDir()).addOption(json())
    .action(async (id: string, options: Remote & { reject?: boolean; reason?: string }) => {
      await (await import('./commands/app.js')).runAppApprove(id, options, io);
    });
  app
    .command('deploy <versionId>')
    .description('run an approved version at a provider; rolls over the running version there')
    .requiredOption('--provider <idOrName>', 'provider to run it at')
    .option('--replicas <n>', 'instances per agent', (v: string) => positiveInt(v, '--replicas'))
    .option('--wait', 'follow the deployment until an agent runs it')
    .option('--timeout <seconds>', 'with --wait: give up after this long', (v: string) => positiveInt(v, '--timeout'), 120)
    .addOption(url()).addOption(token()).addOption(dataDir()).addOption(json())
    .action(async (versionId: string, options: Remote & { provider: string; replicas?: number; wait?: boolean; timeout: number }) => {
      exitCode = await (await import('./commands/app.js')).runAppDeploy(versionId, options, io);
    });

  const service = program.command('service').description('published data services');
  service
    .command('publish <name>')
    .description('publish an application as a service at /s/<name>/…')
    .requiredOption('--app <id>', 'application to publish')
    .addOption(new Option('--access <access>', 'who may call it').choices(['public', 'restricted']))
    .option('--rate <perSecond>', 'per-key rate limit', (v: string) => positiveInt(v, '--rate'))
    .option('--burst <n>', 'per-key burst', (v: string) => positiveInt(v, '--burst'))
    .option('--quota <n>', 'per-key daily quota', (v: string) => positiveInt(v, '--quota'))
    .option('--description <text>', 'what it answers')
    .addOption(url()).addOption(token()).addOption(dataDir()).addOption(json())
    .action(async (name: string, options: Remote & { app: string; access?: 'public' | 'restricted'; rate?: number; burst?: number; quota?: number; description?: string }) => {
      await (await import('./commands/service.js')).runServicePublish(name, options, io);
    });
  service
    .command('invoke <name> [path]')
    .description('call a service through the gateway with an API key and print the answer')
    .option('--key <key>', 'API key (isu_key_…)')
    .option('-X, --method <method>', 'HTTP method', 'GET')
    .option('-d, --data <body>', 'request body (JSON)')
    .option('--major <n>', 'call major version n (/v<n>/…)', (v: string) => nonNegativeInt(v, '--major'))
    .option('-i, --include', 'print the status and headers too')
    .addOption(url()).addOption(dataDir())
    .action(async (name: string, path: string | undefined, options: Remote & { key?: string; method: string; data?: string; major?: number; include?: boolean }) => {
      exitCode = await (await import('./commands/service.js')).runServiceInvoke(name, path, options, io);
    });

  program
    .command('key')
    .description('API keys')
    .command('create')
    .description('create an API key for services; printed once')
    .requiredOption('--org <id>', 'organisation the key belongs to')
    .requiredOption('--service <nameOrId>', 'service the key may call (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option('--name <name>', 'a label for the key', 'cli')
    .option('--ttl <seconds>', 'expire after this many seconds', (v: string) => positiveInt(v, '--ttl'))
    .addOption(url()).addOption(token()).addOption(dataDir()).addOption(json())
    .action(async (options: Remote & { org: string; service: string[]; name: string; ttl?: number }) => {
      await (await import('./commands/key.js')).runKeyCreate(options, io);
    });

  program
    .command('audit')
    .description('the audit log')
    .command('verify')
    .description("walk every record of the audit log's hash chain and compare it with its newest signed anchor (the data dir's anchor file, etcd when configured): on the data dir's database, or with --url through the API; exit 1 if broken, rewritten, truncated or emptied")
    .addOption(dataDir()).addOption(configFile()).addOption(url()).addOption(token()).addOption(json())
    .action(async (options: Remote & { config?: string }) => {
      exitCode = await (await import('./commands/audit.js')).runAuditVerify(options, io);
    });

  program
    .command('dbmanager')
    .description('run the MySQL-Manager of the platform database cluster until interrupted (one acts, the others watch); logs JSON lines to stdout')
    .option('--config <file>', 'dbmanager config file (env INSITU_DBMANAGER_CONFIG)')
    .option('--admin-port <port>', 'admin API port, 0 for any free one', portOption)
    .addOption(logLevel())
    .option('--json', 'print the ready line as JSON')
    .action(async (options: { config?: string; adminPort?: number; logLevel?: LogLevel; json?: boolean }) => {
      await (await import('./commands/dbmanager.js')).runDbManager(options, io);
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
      await (await import('./commands/db.js')).runDbStatus(options, io);
    },
  );
  dbOptions(db.command('switchover').description('planned switchover to a healthy replica, with no transaction lost'))
    .requiredOption('--to <member>', 'the member to promote')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; to: string }) => {
      await (await import('./commands/db.js')).runDbSwitchover(options, io);
    });
  dbOptions(db.command('ack').description('acknowledge the last failover: ends the cooldown so automatic failover may happen again'))
    .option('--by <name>', 'who acknowledges (recorded in the event)')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; by?: string }) => {
      await (await import('./commands/db.js')).runDbAck(options, io);
    });

  const nodeConfig = () => new Option('--config <file>', 'node config, node.yaml (env INSITU_NODE_CONFIG)');
  const nodeCommand = program
    .command('node')
    .description("run this management node until interrupted: its platform services as supervised children, the operator's leader election; logs JSON lines to stdout")
    .addOption(nodeConfig())
    .addOption(logLevel())
    .option('--json', 'log the ready line as JSON')
    .action(async (options: { config?: string; logLevel?: LogLevel; json?: boolean }) => {
      await (await import('./commands/node.js')).runNode(options, io);
    });
  nodeCommand
    .command('install')
    .description('install `insitu node` as a service of the init system')
    .option('--systemd', 'write a systemd unit')
    .option('--unit-file <path>', 'where to write the unit', '/etc/systemd/system/insitu-node.service')
    .option('--user <user>', 'run as this user')
    .addOption(nodeConfig())
    .option('--json', 'print the result as JSON')
    .action(async (_options: unknown, command: Command) => {
      // `--config` is also an option of `insitu node` itself, which commander gives it: read both.
      const options = command.optsWithGlobals<{ config?: string; systemd?: boolean; unitFile: string; user?: string; json?: boolean }>();
      await (await import('./commands/node.js')).runNodeInstall(options, io);
    });

  const operator = program.command('operator').description("the DaaS-Operator: desired state of the platform's services, status, events, restarts");
  operator
    .command('apply')
    .description('validate a cluster spec, show what it changes, and store it in coord')
    .requiredOption('-f, --file <file>', 'cluster.yaml')
    .option('--dry-run', 'show the changes only')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { file: string; dryRun?: boolean; config?: string; json?: boolean }) => {
      await (await import('./commands/operator.js')).runOperatorApply(options, io);
    });
  operator
    .command('status')
    .description('nodes (lease age, leader), services per node (pid, state, restarts, last exit, probes), placements, alerts')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { config?: string; json?: boolean }) => {
      await (await import('./commands/operator.js')).runOperatorStatus(options, io);
    });
  operator
    .command('events')
    .description("the operator's actions and observations, each with its reason")
    .option('--follow', 'keep printing new events until interrupted')
    .option('--node <node>', 'only events of (or about) this node')
    .option('--service <service>', 'only events of this service')
    .option('--type <type>', 'only events of this type (restart, failed, moved, alert-sent, …)')
    .option('--limit <n>', 'how many past events', (v: string) => positiveInt(v, '--limit'), 50)
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { config?: string; json?: boolean; follow?: boolean; node?: string; service?: string; type?: string; limit: number }) => {
      await (await import('./commands/operator.js')).runOperatorEvents(options, io);
    });
  operator
    .command('restart <service>')
    .description('restart a service (and clear its failed mark): on every node at once, one node at a time with --rolling, or on --node')
    .option('--rolling', 'one node at a time, each ready again before the next')
    .option('--node <node>', 'only on this node')
    .option('--timeout <seconds>', 'give up waiting after this long', (v: string) => positiveInt(v, '--timeout'), 600)
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (service: string, options: { config?: string; json?: boolean; rolling?: boolean; node?: string; timeout: number }) => {
      await (await import('./commands/operator.js')).runOperatorRestart({ ...options, service }, io);
    });

  const alerts = program.command('alerts').description("the operator's alerts and silences");
  alerts
    .command('list')
    .description('active alerts (and whether silenced or inhibited) and silences in force')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { config?: string; json?: boolean }) => {
      await (await import('./commands/operator.js')).runAlertsList(options, io);
    });
  alerts
    .command('silence <matcher>')
    .description('mute alerts matching label=value[,label=value] (labels: condition, subject, node, service, severity; * wildcards) for a while')
    .requiredOption('--for <duration>', 'how long: 90s, 30m, 2h, 1d')
    .option('--comment <text>', 'why')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (matcher: string, options: { config?: string; json?: boolean; for: string; comment?: string }) => {
      await (await import('./commands/operator.js')).runAlertsSilence({ ...options, matcher }, io);
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
