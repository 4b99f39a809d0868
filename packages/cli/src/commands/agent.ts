import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { InsituError, VERSION, createLogger, type LogLevel } from '@insitu/core';
import { ProviderAgent, defaultAgentName, loadAgentConfig, type SyncReport } from '@insitu/agent';
import { dataDirOf, ensureDataDir, type DataDirOptions } from '../data-dir.js';
import { line, untilAborted, type CliIo } from '../io.js';

export interface AgentCommandOptions extends DataDirOptions {
  platform?: string;
  /** PEM file of the platform CA to pin (the platform's `tls/ca.pem`). */
  ca?: string;
  token?: string;
  name?: string;
  sandbox?: boolean;
  once?: boolean;
  logLevel?: LogLevel;
  json?: boolean;
}

/** What `insitu agent --once` prints. */
export interface AgentOnceReport {
  agentId: string;
  providerId: string;
  enrolled: boolean;
  sync: SyncReport;
}

/**
 * Run the provider agent: enrol (or reuse the stored credential), sync the metadata of
 * the configured sources now, on a timer, on SIGHUP and when a SQLite or CSV file
 * changes, and run the applications the
 * platform deploys here. With `--once`: enrol, sync once, print the report and exit.
 */
export async function runAgent(options: AgentCommandOptions, io: CliIo): Promise<number> {
  if (!options.config) throw new InsituError('INSITU_USAGE', 'insitu agent needs --config agent.yaml');
  const platformUrl = options.platform ?? io.env.INSITU_URL;
  if (!platformUrl) throw new InsituError('INSITU_USAGE', 'insitu agent needs --platform URL (or INSITU_URL)');
  const configFile = isAbsolute(options.config) ? options.config : resolve(io.cwd, options.config);
  const config = loadAgentConfig(configFile);
  const dataDir = dataDirOf(options, io);
  await ensureDataDir(dataDir);
  const logger = createLogger({
    name: 'agent',
    level: options.logLevel ?? 'info',
    destination: options.once ? io.stderr : io.stdout,
  });
  const platforms = platformUrl
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  const [primary] = platforms;
  if (!primary || platforms.some((u) => !/^https?:\/\//.test(u)))
    throw new InsituError('INSITU_USAGE', `--platform takes http(s) URLs separated by commas, got "${platformUrl}"`);
  let ca: Buffer | undefined;
  if (options.ca) {
    try {
      ca = await readFile(isAbsolute(options.ca) ? options.ca : resolve(io.cwd, options.ca));
    } catch (error) {
      throw new InsituError('INSITU_USAGE', `cannot read --ca ${options.ca}: ${(error as Error).message}`);
    }
  }
  const runtime = await ProviderAgent.create({
    config,
    configName: configFile,
    dataDir,
    platforms,
    ...(ca ? { ca } : {}),
    ...(options.token ? { token: options.token } : {}),
    name: options.name ?? config.name ?? defaultAgentName(),
    version: VERSION,
    logger,
    noSandbox: options.sandbox === false,
    env: io.env,
  });
  const { identity, sync } = runtime;
  const onHangup = () => {
    logger.info('SIGHUP: syncing the metadata now');
    sync.syncNow().catch(() => undefined);
  };
  try {
    if (options.once) {
      const report = await sync.syncNow();
      const result: AgentOnceReport = {
        agentId: identity.agentId,
        providerId: identity.providerId,
        enrolled: identity.enrolled,
        sync: report,
      };
      if (options.json) line(io.stdout, JSON.stringify(result));
      else {
        line(
          io.stdout,
          `agent ${identity.agentId} of provider ${identity.providerName} (${identity.providerId})${identity.enrolled ? ', enrolled now' : ''}`,
        );
        line(io.stdout, `published: ${report.published.join(', ') || 'nothing'}`);
        if (report.removed.length > 0) line(io.stdout, `removed: ${report.removed.join(', ')}`);
        for (const error of report.errors)
          line(io.stdout, `error: ${error.source ?? error.dataset ?? ''} ${error.message} [${error.code}]`);
      }
      return report.errors.length > 0 ? 1 : 0;
    }
    process.on('SIGHUP', onHangup);
    await runtime.start();
    logger.info(
      {
        agentId: identity.agentId,
        providerId: identity.providerId,
        sandbox: runtime.agent.sandboxed ? 'bubblewrap' : 'none',
      },
      'agent running; waiting for deployments',
    );
    await untilAborted(io.signal);
    logger.info('shutting down');
    return 0;
  } finally {
    process.off('SIGHUP', onHangup);
    await runtime.close();
  }
}
