import { join } from 'node:path';
import { InsituError, type Logger } from '@insitu/core';
import { Agent } from './agent.js';
import { MetadataSync, type SyncReport } from './catalog/metadata-sync.js';
import { watchSources } from './catalog/watch-sources.js';
import type { AgentConfig } from './config/agent-config.js';
import { obtainCredential } from './identity/credential.js';
import { PlatformClient } from './identity/platform-client.js';
import { PlatformBundleSource, PlatformLink } from './platform/platform-link.js';
import { configInvalid } from './errors.js';

/** How to start a {@link ProviderAgent}. */
export interface ProviderAgentOptions {
  config: Readonly<AgentConfig>;
  /** Names the config in messages. */
  configName?: string;
  dataDir: string;
  /** Platform node URLs (`https://…`, or `http://…` when both sides allow plain TCP). */
  platforms: readonly string[];
  /** The platform CA to pin. */
  ca?: Buffer;
  /** Single-use enrolment token: needed on the first run only. */
  token?: string;
  name: string;
  version: string;
  logger: Logger;
  /** Run applications without bubblewrap (the config must allow it; warns). */
  noSandbox?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * A provider agent wired to the platform: enrolled (or re-using its stored credential),
 * its metadata sync (now, on a timer, when a SQLite or CSV file changes), its tunnel and
 * deployments ({@link PlatformLink}). `insitu agent` and `insitu up` both run one.
 */
export class ProviderAgent {
  private link: PlatformLink | undefined;
  private unwatch: () => void = () => undefined;

  private constructor(
    readonly agent: Agent,
    readonly sync: MetadataSync,
    readonly client: PlatformClient,
    readonly identity: {
      agentId: string;
      providerId: string;
      providerName: string;
      enrolled: boolean;
      credential: string;
    },
    private readonly options: ProviderAgentOptions,
  ) {}

  /** Enrol (or reuse the credential), check the config against it, and build the agent. Nothing runs yet. */
  static async create(options: ProviderAgentOptions): Promise<ProviderAgent> {
    const [primary] = options.platforms;
    if (!primary || options.platforms.some((u) => !/^https?:\/\//.test(u))) {
      throw new InsituError(
        'INSITU_USAGE',
        `the platform is named by http(s) URLs, got "${options.platforms.join(',')}"`,
      );
    }
    const client = new PlatformClient(primary, undefined, options.ca ? { ca: options.ca } : {});
    const identity = await obtainCredential({
      client,
      dataDir: options.dataDir,
      ...(options.token ? { token: options.token } : {}),
      name: options.name,
      version: options.version,
      logger: options.logger,
    });
    const providerId = identity.agent.providerId;
    if (options.config.providerId && options.config.providerId !== providerId) {
      throw configInvalid(
        `${options.configName ?? 'agent config'}: providerId is ${options.config.providerId}, but this agent's credential belongs to provider ${providerId}`,
      );
    }
    const provider = await client.provider(providerId);
    const agent = await Agent.create({
      config: options.config,
      dataDir: options.dataDir,
      logger: options.logger,
      provider: { id: provider.id, name: provider.name },
      agentId: identity.agent.id,
      bundleSource: new PlatformBundleSource(client),
      noSandbox: options.noSandbox === true,
      ...(options.env ? { env: options.env } : {}),
    });
    // Noised answers are paid from the provider's budget at the platform, summed over its agents.
    agent.setBudgetLedger((caller, dataset, epsilon, budget) =>
      client.chargePrivacyBudget(caller, dataset, epsilon, budget),
    );
    const sync = new MetadataSync({
      registry: agent.registry,
      client,
      providerId,
      stateFile: join(options.dataDir, 'published.json'),
      intervalMs: options.config.sync.intervalSeconds * 1000,
      logger: options.logger,
    });
    return new ProviderAgent(
      agent,
      sync,
      client,
      {
        agentId: identity.agent.id,
        providerId,
        providerName: provider.name,
        enrolled: identity.enrolled,
        credential: identity.credential,
      },
      options,
    );
  }

  /** Dial the platform, start running its deployments, and keep the catalog in sync. Returns the first sync's report. */
  async start(): Promise<SyncReport> {
    const { options } = this;
    this.link = new PlatformLink({
      agent: this.agent,
      client: this.client,
      credential: this.identity.credential,
      platforms: options.platforms,
      ...(options.ca ? { ca: options.ca } : {}),
      allowPlainText: options.platforms.some((u) => u.startsWith('http://')),
      logger: options.logger,
      agentVersion: options.version,
    });
    await this.link.start();
    const report = await this.sync.start();
    this.unwatch = watchSources(
      options.config.sources,
      () => {
        options.logger.info('a source file changed: syncing the metadata');
        this.sync.syncNow().catch(() => undefined);
      },
      { logger: options.logger },
    );
    return report;
  }

  async close(): Promise<void> {
    this.unwatch();
    this.sync.stop();
    await this.link?.close();
    await this.agent.close();
  }
}
