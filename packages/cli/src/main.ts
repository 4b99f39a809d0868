import { InsituError, LOG_LEVELS, VERSION, checkEnv, type LogLevel } from '@insitu/core/basics';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { line, resolveIo, type CliIo } from './io.js';

function portOption(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    throw new InvalidArgumentError(`--port must be a number from 0 to 65535, got "${value}"`);
  return Number(value);
}

function positiveInt(value: string, flag: string, max = 999_999_999): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new InvalidArgumentError(
      `${flag} must be a whole number from 1 to ${max.toLocaleString('en-US')}, got "${value}"`,
    );
  }
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
const configFile = () =>
  new Option('--config <file>', 'config file (env INSITU_CONFIG, default <data dir>/config.yaml)');

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
  const jsonErrors = argv.includes('--json');
  let exitCode = 0;
  const program = new Command('insitu')
    .description('Insitu: Data-as-a-Service where data never leaves the data provider')
    .version(VERSION, '-v, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      // With --json, a usage error is one JSON line on stderr too, without the human hint.
      writeErr: (s) => (jsonErrors ? undefined : io.stderr.write(s)),
      outputError: (s, write) => {
        if (jsonErrors)
          line(
            io.stderr,
            JSON.stringify({ error: { code: 'INSITU_USAGE', message: s.trim().replace(/^error: /, '') } }),
          );
        else write(s);
      },
    });

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
        await (await import('./commands/init.js')).runInit(options, io);
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
        await (await import('./commands/server.js')).runServer(options, io);
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
        await (await import('./commands/up.js')).runUp(options, io);
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
      exitCode = await (await import('./commands/status.js')).runStatus(options, io);
    });

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
        exitCode = await (await import('./commands/agent.js')).runAgent({ ...options, config }, io);
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
    await (await import('./commands/catalog.js')).runAgentToken(providerRef, options, io);
  });

  const app = program.command('app').description('data applications');
  app
    .command('dev <dir>')
    .description('run an application in the sandbox against local sample data and serve it on localhost')
    .option(
      '--data <file>',
      'sample data: FILE.csv, NAME=FILE.csv or a SQLite file (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--host <address>', 'address to serve on', '127.0.0.1')
    .option('--port <port>', 'port to serve on (0: any free one)', portOption, 0)
    .option('--no-sandbox', 'run without bubblewrap (warns; development only)')
    .option('--watch', 'reload the application when one of its files changes')
    .addOption(logLevel())
    .action(
      async (
        dir: string,
        options: {
          data: string[];
          host: string;
          port: number;
          sandbox?: boolean;
          watch?: boolean;
          logLevel?: LogLevel;
        },
      ) => {
        await (await import('./commands/app-dev.js')).runAppDev(dir, options, io);
      },
    );

  const url = () => new Option('--url <url>', 'platform URL (env INSITU_URL; default from the data dir config)');
  const token = () =>
    new Option(
      '--token <token>',
      'bearer token (env INSITU_TOKEN; default: the session insitu login saved for the URL)',
    );
  const profile = () =>
    new Option('--profile <name>', 'saved sign-in to use (insitu login --profile; default: default)');
  /** The options of every command that talks to a platform as a signed-in user. */
  const remote = (command: Command) =>
    command.addOption(url()).addOption(token()).addOption(profile()).addOption(dataDir()).addOption(json());
  const json = () => new Option('--json', 'print the result as JSON');
  type Remote = { url?: string; token?: string; dataDir?: string; json?: boolean; profile?: string };

  app
    .command('submit <dir>')
    .description(
      'pack a bundle directory canonically and submit it as a new version (creates the application on first submit)',
    )
    .requiredOption('--org <org>', 'organisation that owns the application (name or id)')
    .addOption(url())
    .addOption(token())
    .addOption(profile())
    .addOption(dataDir())
    .addOption(json())
    .action(async (dir: string, options: Remote & { org: string }) => {
      await (await import('./commands/app.js')).runAppSubmit(dir, options, io);
    });
  app
    .command('approve <id>')
    .description(
      'approve (or --reject) an approval request, or every pending request of a version (ver_…) addressed to your providers',
    )
    .option('--reject', 'reject instead of approving')
    .option('--reason <text>', 'why (required with --reject)')
    .option('--share-job-logs', "let the output lines of this version's jobs reach the submitter (default: not)")
    .option('--job-result-types <exts>', 'only these result file extensions of its jobs (e.g. json,csv)')
    .option('--job-max-result-bytes <n>', 'at most this many bytes per result file of its jobs', (v: string) =>
      positiveInt(v, '--job-max-result-bytes', 1024 * 1024 * 1024),
    )
    .addOption(url())
    .addOption(token())
    .addOption(profile())
    .addOption(dataDir())
    .addOption(json())
    .action(
      async (
        id: string,
        options: Remote & {
          reject?: boolean;
          reason?: string;
          shareJobLogs?: boolean;
          jobResultTypes?: string;
          jobMaxResultBytes?: number;
        },
      ) => {
        await (await import('./commands/app.js')).runAppApprove(id, options, io);
      },
    );
  app
    .command('deploy <version>')
    .description('run an approved version at a provider; rolls over the running version there')
    .requiredOption('--provider <idOrName>', 'provider to run it at')
    .option('--replicas <n>', 'instances per agent', (v: string) => positiveInt(v, '--replicas'))
    .option('--wait', 'follow the deployment until an agent runs it')
    .option(
      '--timeout <seconds>',
      'with --wait: give up after this long',
      (v: string) => positiveInt(v, '--timeout'),
      120,
    )
    .addOption(url())
    .addOption(token())
    .addOption(profile())
    .addOption(dataDir())
    .addOption(json())
    .action(
      async (
        versionId: string,
        options: Remote & { provider: string; replicas?: number; wait?: boolean; timeout: number },
      ) => {
        exitCode = await (await import('./commands/app.js')).runAppDeploy(versionId, options, io);
      },
    );

  const job = program.command('job').description('compute jobs: an approved version run once over the data');
  remote(
    job
      .command('run <version>')
      .description('run an approved job version (ver_… or APP@VERSION) once at a provider')
      .requiredOption('--provider <idOrName>', 'provider to run it at')
      .option('--args <json>', 'arguments the job reads (INSITU_JOB_ARGS)')
      .option('--wall-time <seconds>', 'wall-time budget', (v: string) => positiveInt(v, '--wall-time'))
      .option('--wait', 'follow the job until it ends (exit 1 unless it succeeded)')
      .option(
        '--timeout <seconds>',
        'with --wait: give up after this long',
        (v: string) => positiveInt(v, '--timeout'),
        3600,
      ),
  ).action(
    async (
      version: string,
      options: Remote & { provider: string; args?: string; wallTime?: number; wait?: boolean; timeout: number },
    ) => {
      exitCode = await (await import('./commands/job.js')).runJobRun(version, options, io);
    },
  );
  remote(job.command('status <id>').description('state, reason, times and result files of a job')).action(
    async (id: string, options: Remote) => {
      exitCode = await (await import('./commands/job.js')).runJobStatus(id, options, io);
    },
  );
  remote(job.command('list').description("your organisations' jobs, and jobs at your providers")).action(
    async (options: Remote) => {
      await (await import('./commands/job.js')).runJobList(options, io);
    },
  );
  remote(job.command('cancel <id>').description('cancel a queued or running job')).action(
    async (id: string, options: Remote) => {
      await (await import('./commands/job.js')).runJobCancel(id, options, io);
    },
  );
  remote(job.command('logs <id>').description("the job's output lines, when the provider lets them out")).action(
    async (id: string, options: Remote) => {
      await (await import('./commands/job.js')).runJobLogs(id, options, io);
    },
  );
  remote(
    job
      .command('results <id>')
      .description('list the result files of a job, or download them with --out')
      .option('--out <dir>', 'write every result file into this directory'),
  ).action(async (id: string, options: Remote & { out?: string }) => {
    await (await import('./commands/job.js')).runJobResults(id, options, io);
  });

  const service = program.command('service').description('published data services');
  service
    .command('publish <name>')
    .description('publish an application as a service at /s/<name>/…')
    .requiredOption('--app <app>', 'application to publish (name or id)')
    .option('--org <org>', 'organisation of the application, when its name is not unique')
    .addOption(new Option('--access <access>', 'who may call it').choices(['public', 'restricted']))
    .option('--rate <perSecond>', 'per-key rate limit (at most 1,000,000)', (v: string) =>
      positiveInt(v, '--rate', 1_000_000),
    )
    .option('--burst <n>', 'per-key burst (at most 1,000,000)', (v: string) => positiveInt(v, '--burst', 1_000_000))
    .option('--quota <n>', 'per-key daily quota (at most 1,000,000,000)', (v: string) =>
      positiveInt(v, '--quota', 1_000_000_000),
    )
    .option('--description <text>', 'what it answers')
    .addOption(url())
    .addOption(token())
    .addOption(profile())
    .addOption(dataDir())
    .addOption(json())
    .action(
      async (
        name: string,
        options: Remote & {
          app: string;
          access?: 'public' | 'restricted';
          rate?: number;
          burst?: number;
          quota?: number;
          description?: string;
        },
      ) => {
        await (await import('./commands/service.js')).runServicePublish(name, options, io);
      },
    );
  service
    .command('invoke <name> [path]')
    .description('call a service through the gateway with an API key and print the answer')
    .option('--key <key>', 'API key (isu_key_…)')
    .option('-X, --method <method>', 'HTTP method (default GET, or POST with -d, as curl)')
    .option('-d, --data <body>', 'request body (JSON)')
    .option('--major <n>', 'call major version n (/v<n>/…)', (v: string) => nonNegativeInt(v, '--major'))
    .option('-i, --include', 'print the status and headers too')
    .addOption(url())
    .addOption(dataDir())
    .action(
      async (
        name: string,
        path: string | undefined,
        options: Remote & { key?: string; method?: string; data?: string; major?: number; include?: boolean },
      ) => {
        exitCode = await (await import('./commands/service.js')).runServiceInvoke(name, path, options, io);
      },
    );

  const key = program.command('key').description('API keys');
  key
    .command('create')
    .description('create an API key for services; printed once')
    .requiredOption('--org <org>', 'organisation the key belongs to (name or id)')
    .requiredOption(
      '--service <nameOrId>',
      'service the key may call (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--name <name>', 'a label for the key', 'cli')
    .option('--ttl <seconds>', 'expire after this many seconds', (v: string) => positiveInt(v, '--ttl'))
    .addOption(url())
    .addOption(token())
    .addOption(profile())
    .addOption(dataDir())
    .addOption(json())
    .action(async (options: Remote & { org: string; service: string[]; name: string; ttl?: number }) => {
      await (await import('./commands/key.js')).runKeyCreate(options, io);
    });

  const audit = program.command('audit').description('the audit log');
  audit
    .command('verify')
    .description(
      "walk every record of the audit log's hash chain and compare it with its newest signed anchor (the data dir's anchor file, etcd when configured): on the data dir's database, or with --url through the API; exit 1 if broken, rewritten, truncated or emptied",
    )
    .addOption(dataDir())
    .addOption(configFile())
    .addOption(url())
    .addOption(token())
    .addOption(json())
    .action(async (options: Remote & { config?: string }) => {
      exitCode = await (await import('./commands/audit.js')).runAuditVerify(options, io);
    });

  app
    .command('reject <id>')
    .description('reject an approval request, or the pending ones of a version, with a reason the developer sees')
    .requiredOption('--reason <text>', 'why')
    .addOption(url())
    .addOption(token())
    .addOption(profile())
    .addOption(dataDir())
    .addOption(json())
    .action(async (id: string, options: Remote & { reason: string }) => {
      await (await import('./commands/app.js')).runAppApprove(id, { ...options, reject: true }, io);
    });
  remote(
    app
      .command('list')
      .description('applications of your organisations (platform admins: all)')
      .option('--org <org>', 'only of this organisation'),
  ).action(async (options: Remote & { org?: string }) => {
    await (await import('./commands/app.js')).runAppList(options, io);
  });
  remote(
    app
      .command('versions <app>')
      .description('the versions of an application, with their approvals')
      .option('--org <org>', 'organisation of the application, when its name is not unique'),
  ).action(async (name: string, options: Remote & { org?: string }) => {
    await (await import('./commands/app.js')).runAppVersions(name, options, io);
  });
  remote(
    app
      .command('approvals')
      .description('approval requests addressed to your providers, and those of your applications')
      .addOption(new Option('--state <state>', 'only in this state').choices(['pending', 'approved', 'rejected']))
      .option('--of <version>', 'only of this version (ver_… or APP@VERSION)'),
  ).action(async (options: Remote & { state?: string; of?: string }) => {
    await (await import('./commands/app.js')).runAppApprovals(options, io);
  });
  remote(app.command('undeploy <deployment>').description('stop a deployment at the provider (dep_…)')).action(
    async (deployment: string, options: Remote) => {
      await (await import('./commands/app.js')).runAppUndeploy(deployment, options, io);
    },
  );
  remote(
    app
      .command('logs <deployment>')
      .description(
        "the application's own output (stdout, stderr), streamed from the provider's agent, when the provider allows it (dep_…)",
      )
      .option(
        '--lines <n>',
        'how many of the last lines (at most 1000)',
        (v: string) => positiveInt(v, '--lines', 1000),
        100,
      )
      .option('--follow', 'keep streaming what it writes next, until Ctrl-C')
      .option('--allow', "for the provider: let the application's developers read its output")
      .option('--deny', "for the provider: no longer let the application's developers read its output"),
  ).action(
    async (
      deployment: string,
      options: Remote & { lines?: number; follow?: boolean; allow?: boolean; deny?: boolean },
    ) => {
      await (await import('./commands/app.js')).runAppLogs(deployment, options, io);
    },
  );

  remote(service.command('list').description('services you may call or own')).action(async (options: Remote) => {
    await (await import('./commands/service.js')).runServiceList(options, io);
  });
  remote(
    service.command('unpublish <name>').description('take a service off the gateway (its deployments keep running)'),
  ).action(async (name: string, options: Remote) => {
    await (await import('./commands/service.js')).runServiceUnpublish(name, options, io);
  });
  remote(
    service
      .command('grant <name>')
      .description('let an organisation call a restricted service (--revoke: stop it)')
      .requiredOption('--org <org>', 'the organisation (name or id)')
      .option('--revoke', 'withdraw the grant'),
  ).action(async (name: string, options: Remote & { org: string; revoke?: boolean }) => {
    await (await import('./commands/service.js')).runServiceGrant(name, options, io);
  });

  remote(
    key
      .command('list')
      .description("your organisations' API keys (no secrets), with their last use")
      .option('--org <org>', 'only of this organisation'),
  ).action(async (options: Remote & { org?: string }) => {
    await (await import('./commands/key.js')).runKeyList(options, io);
  });
  remote(key.command('revoke <keyId>').description('revoke an API key: calls with it get 401 at once')).action(
    async (id: string, options: Remote) => {
      await (await import('./commands/key.js')).runKeyRevoke(id, options, io);
    },
  );

  remote(
    audit
      .command('list')
      .description('call records, newest first (caller key, service, version, status, bytes, duration; never payloads)')
      .option('--service <name>', 'only calls of this service')
      .option('--limit <n>', 'how many (at most 1,000)', (v: string) => positiveInt(v, '--limit', 1000), 50),
  ).action(async (options: Remote & { service?: string; limit: number }) => {
    await (await import('./commands/records.js')).runAuditList(options, io);
  });

  remote(
    program
      .command('usage')
      .description(
        'metered calls, errors and bytes per day (or hour) of your keys, or of a service you own; with --jobs, compute jobs',
      )
      .option('--service <name>', 'of this service')
      .option('--key <keyId>', 'of this key')
      .option(
        '--jobs',
        'jobs your organisations submitted or ran at their providers: runs, outcomes, CPU and wall time',
      )
      .option('--version-id <versionId>', 'with --jobs: of this application version (ver_…)')
      .addOption(
        new Option(
          '--by <what>',
          'one row per key or service (calls), organisation, provider or version (--jobs)',
        ).choices(['key', 'service', 'org', 'provider', 'version']),
      )
      .option('--hourly', 'per hour instead of per day')
      .option('--since <time>', 'from this ISO time (default: 30 days ago)'),
  ).action(
    async (
      options: Remote & {
        service?: string;
        key?: string;
        jobs?: boolean;
        versionId?: string;
        by?: 'key' | 'service' | 'org' | 'provider' | 'version';
        hourly?: boolean;
        since?: string;
      },
    ) => {
      const records = await import('./commands/records.js');
      if (options.jobs) {
        if (options.service || options.key || options.by === 'key' || options.by === 'service')
          throw new InsituError(
            'INSITU_USAGE',
            '--jobs counts jobs: use --by org|provider|version and --version-id, not --service or --key',
          );
        await records.runJobUsage(
          { ...options, by: options.by, ...(options.versionId ? { version: options.versionId } : {}) },
          io,
        );
        return;
      }
      if (options.versionId || options.by === 'org' || options.by === 'provider' || options.by === 'version')
        throw new InsituError('INSITU_USAGE', '--version-id and --by org|provider|version go with --jobs');
      await records.runUsage({ ...options, by: options.by }, io);
    },
  );

  remote(
    program
      .command('events')
      .description("what happened to your organisations' applications, deployments, services and keys")
      .option('--kind <kind>', 'only events of this kind (ending in a dot: every kind starting so)')
      .option('--subject <id>', 'only events about this id')
      .option('--limit <n>', 'how many past events (at most 500)', (v: string) => positiveInt(v, '--limit', 500), 50)
      .option('--follow', 'keep printing new events until interrupted'),
  ).action(async (options: Remote & { kind?: string; subject?: string; limit: number; follow?: boolean }) => {
    await (await import('./commands/records.js')).runEvents(options, io);
  });

  remote(
    program
      .command('login')
      .description('sign in to a platform and keep the session for its URL in your profile file (mode 0600)')
      .requiredOption('--email <email>', 'your email', emailOption)
      .option('--password-stdin', 'read the password from standard input'),
  ).action(async (options: Remote & { email: string; passwordStdin?: boolean }) => {
    await (await import('./commands/accounts.js')).runLogin(options, io);
  });
  remote(program.command('logout').description('revoke the saved session for the URL and forget it')).action(
    async (options: Remote) => {
      await (await import('./commands/accounts.js')).runLogout(options, io);
    },
  );

  const org = program.command('org').description('organisations');
  remote(org.command('list').description('organisations you belong to (platform admins: all)')).action(
    async (options: Remote) => {
      await (await import('./commands/accounts.js')).runOrgList(options, io);
    },
  );
  remote(
    org
      .command('create <name>')
      .description('create an organisation (platform admins)')
      .option('--display-name <text>', 'its display name'),
  ).action(async (name: string, options: Remote & { displayName?: string }) => {
    await (await import('./commands/accounts.js')).runOrgCreate(name, options, io);
  });
  remote(org.command('show <org>').description('one organisation (name or id)')).action(
    async (ref: string, options: Remote) => {
      await (await import('./commands/accounts.js')).runOrgShow(ref, options, io);
    },
  );

  const user = program.command('user').description('users');
  remote(user.command('me').description('who you are signed in as, with your organisations and roles')).action(
    async (options: Remote) => {
      await (await import('./commands/accounts.js')).runUserMe(options, io);
    },
  );
  remote(user.command('list').description('every user (platform admins)')).action(async (options: Remote) => {
    await (await import('./commands/accounts.js')).runUserList(options, io);
  });

  const member = program.command('member').description('members of an organisation and their roles');
  remote(member.command('list <org>').description('members and roles')).action(async (ref: string, options: Remote) => {
    await (await import('./commands/accounts.js')).runMemberList(ref, options, io);
  });
  remote(
    member
      .command('add <org> <email>')
      .description("add a user (created if new) with roles; --password-stdin sets a new user's password")
      .addOption(
        new Option('--role <role>', 'a role (repeatable)')
          .choices(['admin', 'provider', 'developer', 'user'])
          .argParser((value: string, previous: string[] = []) => [...previous, value]),
      )
      .option('--name <name>', "a new user's name")
      .option('--password-stdin', "read a new user's password from standard input"),
  ).action(
    async (
      ref: string,
      email: string,
      options: Remote & { role?: string[]; name?: string; passwordStdin?: boolean },
    ) => {
      await (
        await import('./commands/accounts.js')
      ).runMemberAdd(ref, email, { ...options, role: options.role ?? [] }, io);
    },
  );
  remote(member.command('remove <org> <user>').description('remove a member (email or usr_…)')).action(
    async (ref: string, who: string, options: Remote) => {
      await (await import('./commands/accounts.js')).runMemberRemove(ref, who, options, io);
    },
  );

  const provider = program.command('provider').description('data providers');
  remote(
    provider
      .command('create <name>')
      .description("create a provider for an organisation (its providers' role)")
      .requiredOption('--org <org>', 'the organisation (name or id)')
      .option('--display-name <text>', 'display name')
      .option('--description <text>', 'what it offers'),
  ).action(async (name: string, options: Remote & { org: string; displayName?: string; description?: string }) => {
    await (await import('./commands/catalog.js')).runProviderCreate(name, options, io);
  });
  remote(provider.command('list').description('providers').option('--org <org>', 'only of this organisation')).action(
    async (options: Remote & { org?: string }) => {
      await (await import('./commands/catalog.js')).runProviderList(options, io);
    },
  );

  const catalog = program.command('catalog').description('the dataset catalog: metadata only, never rows');
  remote(
    catalog
      .command('search [words]')
      .description('find datasets by words, tags, provider or column')
      .option(
        '--tag <tag>',
        'with this tag (repeatable)',
        (value: string, previous: string[]) => [...previous, value],
        [] as string[],
      )
      .option('--provider <provider>', 'of this provider (name or id)')
      .option('--column <name>', 'with a column of this name')
      .option('--limit <n>', 'how many (at most 100)', (v: string) => positiveInt(v, '--limit', 100), 20),
  ).action(
    async (
      words: string | undefined,
      options: Remote & { tag: string[]; provider?: string; column?: string; limit: number },
    ) => {
      await (await import('./commands/catalog.js')).runCatalogSearch(words, options, io);
    },
  );
  remote(catalog.command('show <dataset>').description('a dataset and its columns: PROVIDER/DATASET or ds_…')).action(
    async (ref: string, options: Remote) => {
      await (await import('./commands/catalog.js')).runCatalogShow(ref, options, io);
    },
  );

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
      await (await import('./commands/backup.js')).runBackup(options, io);
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
        await (await import('./commands/backup.js')).runRestore(file, options, io);
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
      await (await import('./commands/admin.js')).runResetPassword(options, io);
    });

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
      await (await import('./commands/dbmanager.js')).runDbManager(options, io);
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
    await (await import('./commands/db.js')).runDbStatus(options, io);
  });
  dbOptions(db.command('switchover').description('planned switchover to a healthy replica, with no transaction lost'))
    .requiredOption('--to <member>', 'the member to promote')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; to: string }) => {
      await (await import('./commands/db.js')).runDbSwitchover(options, io);
    });
  dbOptions(
    db
      .command('ack')
      .description('acknowledge the last failover: ends the cooldown so automatic failover may happen again'),
  )
    .option('--by <name>', 'who acknowledges (recorded in the event)')
    .action(async (options: { config?: string; url?: string; token?: string; json?: boolean; by?: string }) => {
      await (await import('./commands/db.js')).runDbAck(options, io);
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
      const options = command.optsWithGlobals<{
        config?: string;
        systemd?: boolean;
        unitFile: string;
        user?: string;
        json?: boolean;
      }>();
      await (await import('./commands/node.js')).runNodeInstall(options, io);
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
      await (await import('./commands/operator.js')).runOperatorApply(options, io);
    });
  operator
    .command('status')
    .description(
      'nodes (lease age, leader), services per node (pid, state, restarts, last exit, probes), placements, alerts',
    )
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
        await (await import('./commands/operator.js')).runOperatorEvents(options, io);
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
        await (await import('./commands/operator.js')).runOperatorRestart({ ...options, service }, io);
      },
    );

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
    .description(
      'mute alerts matching label=value[,label=value] (labels: condition, subject, node, service, severity; * wildcards) for a while',
    )
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
    // With --json, a script reads the error as JSON too: one line on stderr, the shape of the API's error bodies.
    if (error instanceof InsituError) {
      if (jsonErrors) line(io.stderr, JSON.stringify({ error: { code: error.code, message: error.message } }));
      else line(io.stderr, `insitu: ${error.message} [${error.code}]`);
      return error.code === 'INSITU_USAGE' || error.code === 'INSITU_CONFIG_INVALID' ? 2 : 1;
    }
    if (jsonErrors)
      line(
        io.stderr,
        JSON.stringify({ error: { code: 'INSITU_INTERNAL', message: (error as Error)?.message ?? String(error) } }),
      );
    else line(io.stderr, `insitu: internal error: ${(error as Error)?.stack ?? String(error)} [INSITU_INTERNAL]`);
    return 70;
  }
}
