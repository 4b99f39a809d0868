import { InsituError } from '@insitu/core/basics';
import { type Command, Option } from 'commander';
import {
  positiveInt,
  dataDir,
  configFile,
  url,
  token,
  remote,
  json,
  type Remote,
  type CommandContext,
} from './options.js';

/**
 * Registers `audit`, `usage` and `events`: what happened on the platform. Each action imports its command's module when it runs, so
 * `insitu --help` loads none of the platform's packages.
 */
export function registerRecords(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
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
      ctx.exitCode = await (await import('../commands/audit.js')).runAuditVerify(options, io);
    });

  remote(
    audit
      .command('list')
      .description('call records, newest first (caller key, service, version, status, bytes, duration; never payloads)')
      .option('--service <name>', 'only calls of this service')
      .option('--limit <n>', 'how many (at most 1,000)', (v: string) => positiveInt(v, '--limit', 1000), 50),
  ).action(async (options: Remote & { service?: string; limit: number }) => {
    await (await import('../commands/records.js')).runAuditList(options, io);
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
      const records = await import('../commands/records.js');
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
    await (await import('../commands/records.js')).runEvents(options, io);
  });
}
