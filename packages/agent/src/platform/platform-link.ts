import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AGENT_LOGS_PATH,
  AGENT_PROBE_PATH,
  AgentDesiredSchema,
  type AgentDesired,
  AgentJobsSchema,
  DEPLOYMENT_HEADER,
  assertValid,
  servesCalls,
  type Logger,
} from '@insitu/core';
import {
  RAW_STREAM_HANDLER,
  TunnelClient,
  WORK_TARGET,
  type RawStreamCapable,
  type WorkTargetCapable,
  type ServiceAnnouncement,
  type TunnelHandler,
} from '@insitu/tunnel';
import type { Agent, AgentStatus } from '../agent.js';
import { answerLogs } from './logs-answer.js';
import { JobQueue } from './job-queue.js';
import type { BundleSource, DesiredDeployment, FetchedBundle } from '../apps/bundle-source.js';
import type { DeploymentReport, PlatformClient } from '../identity/platform-client.js';

/**
 * Bundles from the platform: downloaded with the agent credential into a temp file. The
 * agent verifies the digest before it starts anything, so the download need not be trusted.
 */
export class PlatformBundleSource implements BundleSource {
  constructor(private readonly client: PlatformClient) {}

  async fetch(deployment: DesiredDeployment): Promise<FetchedBundle> {
    const data = await this.client.bundle(deployment.bundle);
    const dir = await mkdtemp(join(tmpdir(), 'insitu-bundle-'));
    const path = join(dir, 'bundle.tar');
    await writeFile(path, data, { mode: 0o600 });
    return { path, dispose: () => rm(dir, { recursive: true, force: true }) };
  }
}

/** How to build a {@link PlatformLink}. */
export interface PlatformLinkOptions {
  agent: Agent;
  client: PlatformClient;
  credential: string;
  /** Platform node URLs; sessions go to two different ones when there are several. */
  platforms: readonly string[];
  ca?: string | Buffer;
  allowPlainText?: boolean;
  logger: Logger;
  /** Fetch the desired deployments this often even without a push (default 10 s). */
  pollIntervalMs?: number;
  /** Report status this often even without a change (default 15 s): a heartbeat. */
  heartbeatMs?: number;
  agentVersion?: string;
}

function report(status: AgentStatus): DeploymentReport[] {
  return status.deployments.map((d) => ({
    id: d.id,
    state: d.state,
    ready: d.readyReplicas,
    desired: d.desiredReplicas,
    // The code stays last and whole: the platform reads it (`reportsCrashLoop`).
    ...(d.reason ? { reason: `${d.reason.message.slice(0, 1900)} [${d.reason.code}]` } : {}),
  }));
}

/**
 * Everything between a running agent and the platform: the reverse tunnel (calls for a
 * deployment go to the agent's local balancer; the agent announces the deployments it
 * runs so the platform routes only to ready ones), the desired deployments (pushed as a
 * `desired` command through the tunnel, and polled as a fallback), and status reports
 * (on every change, throttled, and as a heartbeat).
 */
export class PlatformLink {
  readonly tunnel: TunnelClient;
  readonly jobs: JobQueue;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private applying: Promise<void> = Promise.resolve();
  private lastAnnounced = '';
  private closed = false;
  private readonly onStatus = (status: AgentStatus) => this.statusChanged(status);

  constructor(private readonly options: PlatformLinkOptions) {
    const { agent } = options;
    this.tunnel = new TunnelClient({
      platforms: options.platforms,
      credential: options.credential,
      ...(options.ca ? { ca: options.ca } : {}),
      ...(options.allowPlainText ? { allowPlainText: true } : {}),
      ...(options.agentVersion ? { agentVersion: options.agentVersion } : {}),
      logger: options.logger.child({ subsystem: 'tunnel' }),
      handler: PlatformLink.handler(agent),
      workConnections: agent.config.tunnel.workConnections,
    });
    this.tunnel.onCommand('desired', async (payload: unknown) => {
      const desired = assertValid(AgentDesiredSchema, payload, {
        what: 'desired command',
        code: 'INSITU_TUNNEL_BAD_FRAME',
      });
      const { deployments } = desired;
      // Acknowledge at once; starting applications can take longer than a command may.
      this.apply(desired).catch((error: unknown) =>
        options.logger.warn({ err: error }, 'applying the desired deployments failed'),
      );
      return { accepted: deployments.length };
    });
    const jobConfig = agent.config.jobs;
    this.jobs = new JobQueue({
      agent,
      client: options.client,
      logger: options.logger.child({ subsystem: 'jobs' }),
      concurrency: jobConfig.concurrency,
      shareLogs: jobConfig.shareLogs,
    });
    this.tunnel.onCommand('jobs', async (payload: unknown) => {
      const { jobs } = assertValid(AgentJobsSchema, payload, { what: 'jobs command', code: 'INSITU_TUNNEL_BAD_FRAME' });
      this.jobs.apply(jobs);
      return { accepted: jobs.length };
    });
    this.tunnel.on('rejected', (error: Error) =>
      options.logger.error({ err: error }, 'the platform refused this agent credential; enrol again with a new token'),
    );
  }

  /**
   * The tunnel handler: each call goes to the local balancer of the deployment the
   * gateway named, on the raw HTTP/2 stream API, with the compatibility form for
   * everything else; and, for work connections, the instance socket they pipe to.
   */
  static handler(agent: Agent): TunnelHandler & RawStreamCapable & WorkTargetCapable {
    const probeAnswer = () => JSON.stringify({ status: 'ok', agent: 'insitu-agent', at: new Date().toISOString() });
    const handler = ((req: Http2ServerRequest, res: Http2ServerResponse) => {
      if (req.url.startsWith(`${AGENT_LOGS_PATH}/`)) {
        answerLogs(agent, req.url, {
          respond: (status, headers) => res.writeHead(status, headers),
          write: (text) => res.write(text),
          end: (text) => res.end(text ?? ''),
          onClose: (fn) => res.on('close', fn),
        });
        return;
      }
      if (req.url === AGENT_PROBE_PATH) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(probeAnswer());
        return;
      }
      const deployment = req.headers[DEPLOYMENT_HEADER];
      agent.handle(req, res, { deployment: typeof deployment === 'string' ? deployment : '' });
    }) as TunnelHandler & RawStreamCapable & WorkTargetCapable;
    handler[RAW_STREAM_HANDLER] = (stream, headers) => {
      const path = String(headers[':path'] ?? '');
      if (path.startsWith(`${AGENT_LOGS_PATH}/`)) {
        answerLogs(agent, path, {
          respond: (status, answerHeaders) => stream.respond({ ':status': status, ...answerHeaders }),
          write: (text) => stream.write(text),
          end: (text) => stream.end(text ?? ''),
          onClose: (fn) => stream.on('close', fn),
        });
        return;
      }
      if (headers[':path'] === AGENT_PROBE_PATH) {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(probeAnswer());
        return;
      }
      const deployment = headers[DEPLOYMENT_HEADER];
      agent.handleStream(stream, headers, { deployment: typeof deployment === 'string' ? deployment : '' });
    };
    // The data plane: a work connection bound to a deployment pipes to one of its ready instances.
    handler[WORK_TARGET] = (service) => agent.workTarget(service);
    return handler;
  }

  /** Dial the platform, fetch the desired deployments, and keep both up to date. */
  async start(): Promise<void> {
    this.options.agent.on('status', this.onStatus);
    this.tunnel.start();
    await this.refresh().catch((error: unknown) =>
      this.options.logger.warn({ err: error }, 'could not fetch the desired deployments; will retry'),
    );
    this.pollTimer = setInterval(() => {
      this.refresh().catch((error: unknown) =>
        this.options.logger.warn({ err: error }, 'could not fetch the desired deployments; will retry'),
      );
    }, this.options.pollIntervalMs ?? 10_000);
    this.pollTimer.unref();
    this.heartbeatTimer = setInterval(() => this.sendReport(), this.options.heartbeatMs ?? 15_000);
    this.heartbeatTimer.unref();
  }

  /** Fetch and apply the desired deployments now. */
  async refresh(): Promise<void> {
    await this.apply(await this.options.client.desired());
    if (!this.closed) this.jobs.apply(await this.options.client.jobs());
  }

  private apply({ deployments, policies }: AgentDesired): Promise<void> {
    // One reconciliation at a time, in the order the desired states arrived.
    const next = this.applying.then(() => {
      if (this.closed) return undefined;
      this.options.agent.setPlatformPolicies(policies ?? []);
      return this.options.agent.applyDesired(
        deployments.map((d) => ({
          id: d.id,
          app: d.app,
          version: d.version,
          digest: d.digest,
          replicas: d.replicas,
          bundle: d.bundle,
          datasets: d.datasets,
        })),
      );
    });
    this.applying = next.catch(() => undefined);
    return next;
  }

  private statusChanged(status: AgentStatus): void {
    // A degraded deployment (some instances down, at least one ready) keeps serving.
    const running: ServiceAnnouncement[] = status.deployments
      .filter((d) => servesCalls({ state: d.state, ready: d.readyReplicas }))
      .map((d) => ({ key: d.id, capacity: Math.max(1, d.readyReplicas * 64) }));
    const announced = JSON.stringify(running);
    if (announced !== this.lastAnnounced) {
      this.lastAnnounced = announced;
      this.tunnel.announce(running);
    }
    // Reports are throttled: a burst of changes becomes one report.
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      this.sendReport();
    }, 200);
  }

  private sendReport(): void {
    if (this.closed) return;
    this.options.client
      .reportStatus(report(this.options.agent.status()))
      .catch((error: unknown) =>
        this.options.logger.warn({ err: error }, 'could not report the deployment status; will retry'),
      );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.options.agent.off('status', this.onStatus);
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reportTimer) clearTimeout(this.reportTimer);
    await this.jobs.close();
    await this.tunnel.close();
    await this.applying;
  }
}
