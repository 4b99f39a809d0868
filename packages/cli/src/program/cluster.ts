import { type LogLevel } from '@insitu/core/basics';
import { type Command, Option } from 'commander';
import { portOption, positiveInt, logLevel, json, type CommandContext } from './options.js';

/**
 * Registers `dbmanager`, `db`, `node`, `operator` and `alerts`: the management cluster. Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerCluster(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('dbmanager')
    .description(
      'run the MySQL-Manager of the platform database cluster until interrupted (one acts, the others watch); logs JSON lines to stdout',
    )
    .option('--config <file>', 'dbmanager config file (env INSITU_DBMANAGER_CONFIG)')
    .option('--admin-port <port>', 'admin API port, 0 for any free one', portOption)
    .addOption(logLevel())
    .option('--json', 'print the ready line as JSON')
    .action(async (options: { config?: string; adminPort?: number; logLevel?: LogLevel; json?: boolean }) => {
      await (await import('../commands/dbmanager.js')).runDbManager(options, io);
    });

  const db = program
    .command('db')
    .description('the platform database cluster: status, planned switchover, acknowledge a failover');
  const dbOptions = (command: Command) =>
    command
      .option(
        '--config <file>',
        'dbmanager config file, to find the elected manager through coord (env INSITU_DBMANAGER_CONFIG)',
      )
      .option('--url <url>', 'admin URL of a dbmanager (env INSITU_DBMANAGER_URL)')
      .option('--token <token>', 'admin token of the dbmanager (env INSITU_DBMANAGER_TOKEN)')
      .option('--json', 'print the result as JSON');
  dbOptions(
    db.command('status').description('topology, roles, GTID positions, lag, alerts and the last actions'),
  ).action(async (options: { config?: string; url?: string; token?: string; json?: boolean }) => {
    await (await import('../commands/db.js')).runDbStatus(options, io);
  });
  dbOptions(db.command('switchover').description('planned switchover to a healthy replica, with no transaction lost'))
    .requiredOption('--to <member>', 'the member to promote')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; to: string }) => {
      await (await import('../commands/db.js')).runDbSwitchover(options, io);
    });
  dbOptions(
    db
      .command('ack')
      .description('acknowledge the last failover: ends the cooldown so automatic failover may happen again'),
  )
    .option('--by <name>', 'who acknowledges (recorded in the event)')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; by?: string }) => {
      await (await import('../commands/db.js')).runDbAck(options, io);
    });

  const nodeConfig = () => new Option('--config <file>', 'node config, node.yaml (env INSITU_NODE_CONFIG)');
  const nodeCommand = program
    .command('node')
    .description(
      "run this management node until interrupted: its platform services as supervised children, the operator's leader election; logs JSON lines to stdout",
    )
    .addOption(nodeConfig())
    .addOption(logLevel())
    .option('--json', 'log the ready line as JSON')
    .action(async (options: { config?: string; logLevel?: LogLevel; json?: boolean }) => {
      await (await import('../commands/node.js')).runNode(options, io);
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
      const options = command.optsWithGlobals<{
        config?: string;
        systemd?: boolean;
        unitFile: string;
        user?: string;
        json?: boolean;
      }>();
      await (await import('../commands/node.js')).runNodeInstall(options, io);
    });

  const operator = program
    .command('operator')
    .description("the DaaS-Operator: desired state of the platform's services, status, events, restarts");
  operator
    .command('apply')
    .description('validate a cluster spec, show what it changes, and store it in coord')
    .requiredOption('-f, --file <file>', 'cluster.yaml')
    .option('--dry-run', 'show the changes only')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { file: string; dryRun?: boolean; config?: string; json?: boolean }) => {
      await (await import('../commands/operator.js')).runOperatorApply(options, io);
    });
  operator
    .command('status')
    .description(
      'nodes (lease age, leader), services per node (pid, state, restarts, last exit, probes), placements, alerts',
    )
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { config?: string; json?: boolean }) => {
      await (await import('../commands/operator.js')).runOperatorStatus(options, io);
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
    .action(
      async (options: {
        config?: string;
        json?: boolean;
        follow?: boolean;
        node?: string;
        service?: string;
        type?: string;
        limit: number;
      }) => {
        await (await import('../commands/operator.js')).runOperatorEvents(options, io);
      },
    );
  operator
    .command('restart <service>')
    .description(
      'restart a service (and clear its failed mark): on every node at once, one node at a time with --rolling, or on --node',
    )
    .option('--rolling', 'one node at a time, each ready again before the next')
    .option('--node <node>', 'only on this node')
    .option('--timeout <seconds>', 'give up waiting after this long', (v: string) => positiveInt(v, '--timeout'), 600)
    .addOption(nodeConfig())
    .addOption(json())
    .action(
      async (
        service: string,
        options: { config?: string; json?: boolean; rolling?: boolean; node?: string; timeout: number },
      ) => {
        await (await import('../commands/operator.js')).runOperatorRestart({ ...options, service }, io);
      },
    );

  const alerts = program.command('alerts').description("the operator's alerts and silences");
  alerts
    .command('list')
    .description('active alerts (and whether silenced or inhibited) and silences in force')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (options: { config?: string; json?: boolean }) => {
      await (await import('../commands/operator.js')).runAlertsList(options, io);
    });
  alerts
    .command('silence <matcher>')
    .description(
      'mute alerts matching label=value[,label=value] (labels: condition, subject, node, service, severity; * wildcards) for a while',
    )
    .requiredOption('--for <duration>', 'how long: 90s, 30m, 2h, 1d')
    .option('--comment <text>', 'why')
    .addOption(nodeConfig())
    .addOption(json())
    .action(async (matcher: string, options: { config?: string; json?: boolean; for: string; comment?: string }) => {
      await (await import('../commands/operator.js')).runAlertsSilence({ ...options, matcher }, io);
    });
}
