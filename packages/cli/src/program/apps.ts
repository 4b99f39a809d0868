import { type LogLevel } from '@insitu/core/basics';
import { type Command, Option } from 'commander';
import {
  portOption,
  positiveInt,
  nonNegativeInt,
  logLevel,
  dataDir,
  url,
  profile,
  remote,
  type Remote,
  type CommandContext,
} from './options.js';

/**
 * Registers `app`, `job`, `service` and `key`: applications, jobs, published services and API keys. Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerApps(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  const app = program.command('app').description('data applications');
  app
    .command('dev <dir>')
    .description('run an application in the sandbox against local sample data and serve it on localhost')
    .option(
      '--data <file>',
      'sample data: FILE.csv or NAME=FILE.csv (one dataset), FILE.db or NAME=FILE.db (a dataset per table); repeatable',
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
        await (await import('../commands/app-dev.js')).runAppDev(dir, options, io);
      },
    );

  remote(
    app
      .command('submit <dir>')
      .description(
        'pack a bundle directory canonically and submit it as a new version (creates the application on first submit)',
      )
      .requiredOption('--org <org>', 'organisation that owns the application (name or id)'),
  ).action(async (dir: string, options: Remote & { org: string }) => {
    await (await import('../commands/app.js')).runAppSubmit(dir, options, io);
  });
  remote(
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
      ),
  ).action(
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
      await (await import('../commands/app.js')).runAppApprove(id, options, io);
    },
  );
  remote(
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
      ),
  ).action(
    async (
      versionId: string,
      options: Remote & { provider: string; replicas?: number; wait?: boolean; timeout: number },
    ) => {
      ctx.exitCode = await (await import('../commands/app.js')).runAppDeploy(versionId, options, io);
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
      ctx.exitCode = await (await import('../commands/job.js')).runJobRun(version, options, io);
    },
  );
  remote(job.command('status <id>').description('state, reason, times and result files of a job')).action(
    async (id: string, options: Remote) => {
      ctx.exitCode = await (await import('../commands/job.js')).runJobStatus(id, options, io);
    },
  );
  remote(job.command('list').description("your organisations' jobs, and jobs at your providers")).action(
    async (options: Remote) => {
      await (await import('../commands/job.js')).runJobList(options, io);
    },
  );
  remote(job.command('cancel <id>').description('cancel a queued or running job')).action(
    async (id: string, options: Remote) => {
      await (await import('../commands/job.js')).runJobCancel(id, options, io);
    },
  );
  remote(job.command('logs <id>').description("the job's output lines, when the provider lets them out")).action(
    async (id: string, options: Remote) => {
      await (await import('../commands/job.js')).runJobLogs(id, options, io);
    },
  );
  remote(
    job
      .command('results <id>')
      .description('list the result files of a job, or download them with --out')
      .option('--out <dir>', 'write every result file into this directory'),
  ).action(async (id: string, options: Remote & { out?: string }) => {
    await (await import('../commands/job.js')).runJobResults(id, options, io);
  });

  const service = program.command('service').description('published data services');
  remote(
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
      .option('--description <text>', 'what it answers'),
  ).action(
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
      await (await import('../commands/service.js')).runServicePublish(name, options, io);
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
    .addOption(profile())
    .addOption(dataDir())
    .action(
      async (
        name: string,
        path: string | undefined,
        options: Remote & { key?: string; method?: string; data?: string; major?: number; include?: boolean },
      ) => {
        ctx.exitCode = await (await import('../commands/service.js')).runServiceInvoke(name, path, options, io);
      },
    );

  const key = program.command('key').description('API keys');
  remote(
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
      .option('--ttl <seconds>', 'expire after this many seconds', (v: string) => positiveInt(v, '--ttl')),
  ).action(async (options: Remote & { org: string; service: string[]; name: string; ttl?: number }) => {
    await (await import('../commands/key.js')).runKeyCreate(options, io);
  });

  remote(
    app
      .command('reject <id>')
      .description('reject an approval request, or the pending ones of a version, with a reason the developer sees')
      .requiredOption('--reason <text>', 'why'),
  ).action(async (id: string, options: Remote & { reason: string }) => {
    await (await import('../commands/app.js')).runAppApprove(id, { ...options, reject: true }, io);
  });
  remote(
    app
      .command('list')
      .description('applications of your organisations (platform admins: all)')
      .option('--org <org>', 'only of this organisation'),
  ).action(async (options: Remote & { org?: string }) => {
    await (await import('../commands/app.js')).runAppList(options, io);
  });
  remote(
    app
      .command('versions <app>')
      .description('the versions of an application, with their approvals')
      .option('--org <org>', 'organisation of the application, when its name is not unique'),
  ).action(async (name: string, options: Remote & { org?: string }) => {
    await (await import('../commands/app.js')).runAppVersions(name, options, io);
  });
  remote(
    app
      .command('approvals')
      .description('approval requests addressed to your providers, and those of your applications')
      .addOption(new Option('--state <state>', 'only in this state').choices(['pending', 'approved', 'rejected']))
      .option('--of <version>', 'only of this version (ver_… or APP@VERSION)'),
  ).action(async (options: Remote & { state?: string; of?: string }) => {
    await (await import('../commands/app.js')).runAppApprovals(options, io);
  });
  remote(app.command('undeploy <deployment>').description('stop a deployment at the provider (dep_…)')).action(
    async (deployment: string, options: Remote) => {
      await (await import('../commands/app.js')).runAppUndeploy(deployment, options, io);
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
      await (await import('../commands/app.js')).runAppLogs(deployment, options, io);
    },
  );

  remote(service.command('list').description('services you may call or own')).action(async (options: Remote) => {
    await (await import('../commands/service.js')).runServiceList(options, io);
  });
  remote(
    service.command('unpublish <name>').description('take a service off the gateway (its deployments keep running)'),
  ).action(async (name: string, options: Remote) => {
    await (await import('../commands/service.js')).runServiceUnpublish(name, options, io);
  });
  remote(
    service
      .command('grant <name>')
      .description('let an organisation call a restricted service (--revoke: stop it)')
      .requiredOption('--org <org>', 'the organisation (name or id)')
      .option('--revoke', 'withdraw the grant'),
  ).action(async (name: string, options: Remote & { org: string; revoke?: boolean }) => {
    await (await import('../commands/service.js')).runServiceGrant(name, options, io);
  });

  remote(
    key
      .command('list')
      .description("your organisations' API keys (no secrets), with their last use")
      .option('--org <org>', 'only of this organisation'),
  ).action(async (options: Remote & { org?: string }) => {
    await (await import('../commands/key.js')).runKeyList(options, io);
  });
  remote(key.command('revoke <keyId>').description('revoke an API key: calls with it get 401 at once')).action(
    async (id: string, options: Remote) => {
      await (await import('../commands/key.js')).runKeyRevoke(id, options, io);
    },
  );
}
