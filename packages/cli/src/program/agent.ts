import { InsituError, type LogLevel } from '@insitu/core/basics';
import { type Command, Option } from 'commander';
import { positiveInt, logLevel, dataDir, type CommandContext } from './options.js';

/**
 * Registers `agent` (the provider agent) and `agent token` (its enrolment tokens). Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerAgent(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  const agentCommand = program
    .command('agent')
    .description(
      'run the provider agent: enrol once, publish the metadata of the sources in agent.yaml, run deployed applications',
    )
    // Not commander's requiredOption: that would be demanded of `insitu agent token` as well.
    .option('--config <file>', 'agent config (agent.yaml): sources, sync interval, sandbox, limits (required)')
    .option('--platform <urls>', 'platform URL, or URLs of several nodes separated by commas (env INSITU_URL)')
    .option('--ca <file>', "the platform CA to pin (PEM; the platform's tls/ca.pem)")
    .option('--token <token>', 'single-use enrolment token, needed on the first run only')
    .addOption(dataDir())
    .option('--name <name>', 'agent name shown on the platform (default: config name, else host name)')
    .option(
      '--no-sandbox',
      'run applications without bubblewrap (only if agent.yaml sets sandbox.allowNoSandbox; warns)',
    )
    .option('--once', 'enrol, sync the metadata once, print the report and exit')
    .option('--json', 'with --once: print the report as JSON')
    .addOption(logLevel())
    .action(
      async (options: {
        config?: string;
        platform?: string;
        ca?: string;
        token?: string;
        dataDir?: string;
        name?: string;
        sandbox?: boolean;
        once?: boolean;
        json?: boolean;
        logLevel?: LogLevel;
      }) => {
        const { config } = options;
        if (!config)
          throw new InsituError(
            'INSITU_USAGE',
            "required option '--config <file>' not specified (the agent's agent.yaml)",
          );
        ctx.exitCode = await (await import('../commands/agent.js')).runAgent({ ...options, config }, io);
      },
    );

  const agentTokenOptions = (command: Command) =>
    command
      .option('--ttl <seconds>', 'valid for this long (60 to 2,592,000; default: the platform setting)', (v: string) =>
        positiveInt(v, '--ttl', 30 * 86400),
      )
      .option('--note <text>', 'a note shown in the token list')
      .addOption(new Option('--url <url>', 'platform URL (env INSITU_URL; default from the data dir config)'))
      .addOption(
        new Option(
          '--token <token>',
          'bearer token (env INSITU_TOKEN; default: the session insitu login saved for the URL)',
        ),
      )
      .addOption(new Option('--profile <name>', 'saved sign-in to use'))
      .addOption(dataDir())
      .option('--json', 'print the result as JSON');
  agentTokenOptions(
    agentCommand
      .command('token <provider>')
      .description("a single-use enrolment token for a provider's agent (provider name or id); printed once"),
  ).action(async (providerRef: string, _options: unknown, command: Command) => {
    // `--token`, `--data-dir` and `--json` are options of `insitu agent` too, which commander may give it: read both.
    const options = command.optsWithGlobals<{
      url?: string;
      token?: string;
      profile?: string;
      dataDir?: string;
      json?: boolean;
      ttl?: number;
      note?: string;
    }>();
    await (await import('../commands/catalog.js')).runAgentToken(providerRef, options, io);
  });
}
