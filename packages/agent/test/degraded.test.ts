// A deployment with one of its replicas killed keeps serving: the agent reports it
// `degraded` (not `starting`), keeps announcing it on the tunnel, and calls sent through
// the platform side of the tunnel keep being answered by the instance that is left.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEPLOYMENT_HEADER, createLogger, waitFor } from '@insitu/core';
import { createTunnelServer, type TunnelServer } from '@insitu/tunnel';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Agent, bundleDigest, parseAgentConfig, type DeploymentStatus } from '../src/index.js';
import { PlatformClient, type DeploymentReport } from '../src/identity/platform-client.js';
import { PlatformLink } from '../src/platform/platform-link.js';
import { salesRows, writeSqlite } from './fixtures.js';
import { writeProbeBundle } from './probe-app.js';

const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'silent' });

const PROVIDER = 'prv_00000000000000000000000000';
const SALES = [{ providerId: PROVIDER, dataset: 'sales' }];
const CREDENTIAL = 'isu_agt_degraded_test';

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

describe('a deployment with a replica down keeps serving (degraded)', () => {
  let dir = '';
  let agent: Agent;
  let link: PlatformLink;
  let tunnel: TunnelServer;
  let platform: Server;
  let desired: unknown = { deployments: [] };
  /** Every status report the agent sent, in order. */
  const reports: DeploymentReport[][] = [];

  function deployment(): DeploymentStatus | undefined {
    return agent.status().deployments.find((d) => d.id === 'probe');
  }

  /** The deployment keys the agent's tunnel sessions announce to the platform. */
  function announced(): string[] {
    return tunnel.sessions().flatMap((s) => s.services.map((service) => service.key));
  }

  /** A call as the gateway sends it: down the tunnel to whichever session announces the deployment. */
  async function call(): Promise<{ status: number; answer: unknown }> {
    const response = await tunnel.request({
      providerId: PROVIDER,
      service: 'probe',
      method: 'GET',
      path: '/hello',
      headers: { [DEPLOYMENT_HEADER]: 'probe' },
      deadlineMs: 30_000,
    });
    let text = '';
    for await (const chunk of response.body) text += String(chunk);
    return { status: response.status, answer: JSON.parse(text) as unknown };
  }

  before(async () => {
    dir = await makeTempDir('insitu-agent-degraded-');
    writeSqlite(join(dir, 'shop.db'), salesRows(5));
    const bundle = writeProbeBundle(join(dir, 'probe'));
    const digest = await bundleDigest(bundle);
    desired = {
      deployments: [
        {
          id: 'probe',
          app: 'probe',
          version: '1.0.0',
          digest,
          replicas: 2,
          bundle,
          state: 'active',
          datasets: SALES,
        },
      ],
    };
    tunnel = createTunnelServer({
      nodeId: 'node-degraded',
      authenticate: async (credential) =>
        credential === CREDENTIAL ? { agentId: 'agt_degraded', providerId: PROVIDER } : undefined,
      timings: { pingIntervalMs: 1000, pingTimeoutMs: 5000 },
    });
    // The platform's agent API, as far as the link uses it: desired deployments, jobs, status reports.
    platform = createServer((req, res) => {
      void (async () => {
        if (req.method === 'GET' && req.url === '/api/v1/agents/self/desired') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(desired));
        } else if (req.method === 'GET' && req.url === '/api/v1/agents/self/jobs') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jobs: [] }));
        } else if (req.method === 'PUT' && req.url === '/api/v1/agents/self/status') {
          reports.push((JSON.parse(await body(req)) as { deployments: DeploymentReport[] }).deployments);
          res.writeHead(204).end();
        } else {
          await body(req);
          res.writeHead(404).end();
        }
      })();
    });
    platform.on('upgrade', (req, socket, head) => {
      if (!tunnel.handleUpgrade(req, socket as Socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => platform.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(platform.address() as { port: number }).port}`;

    agent = await Agent.create({
      config: parseAgentConfig(
        { sources: [{ name: 'shop', kind: 'sqlite', path: 'shop.db' }] },
        { what: 'test config', baseDir: dir },
      ),
      dataDir: join(dir, 'agent'),
      logger,
      provider: { id: PROVIDER, name: 'acme' },
      // A long first back-off: the killed instance stays down long enough to call the other one.
      restartPolicy: { initialBackoffMs: 20_000, maxBackoffMs: 20_000, healthIntervalMs: 250, startTimeoutMs: 30_000 },
    });
    await agent.registry.refresh();
    link = new PlatformLink({
      agent,
      client: new PlatformClient(url, CREDENTIAL),
      credential: CREDENTIAL,
      platforms: [url],
      allowPlainText: true,
      logger,
      heartbeatMs: 1000,
    });
    await link.start();
  });

  after(async () => {
    await link?.close();
    await agent?.close();
    await tunnel?.close(500);
    platform?.closeAllConnections();
    await new Promise<void>((resolve) => (platform ? platform.close(() => resolve()) : resolve()));
    await removeDir(dir);
  });

  it('reports degraded, stays announced and keeps answering calls while one of two instances is down', async () => {
    await waitFor(() => deployment()?.state === 'running' && deployment()?.readyReplicas === 2, {
      timeoutMs: 120_000,
      what: 'the deployment running with 2 instances',
    });
    await waitFor(() => announced().includes('probe'), { timeoutMs: 30_000, what: 'the deployment to be announced' });
    assert.equal((await call()).status, 200);

    const victim = deployment()?.instances[0];
    assert.ok(victim?.pid);
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(
      () =>
        deployment()?.state === 'degraded' &&
        deployment()?.instances.find((i) => i.id === victim.id)?.state === 'backoff',
      { timeoutMs: 30_000, what: 'the deployment to be reported degraded, the killed instance in back-off' },
    );
    const degraded = deployment();
    assert.equal(degraded?.readyReplicas, 1);
    assert.equal(degraded?.reason?.code, 'INSITU_NOT_READY');
    assert.match(
      String(degraded?.reason?.message),
      new RegExp(`^1 of 2 instances serve; instance ${victim.id} backoff after: .*SIGKILL`),
    );
    // The platform hears it too (what the gateway routes on), and the tunnel still routes to it.
    await waitFor(() => reports.at(-1)?.find((r) => r.id === 'probe')?.state === 'degraded', {
      timeoutMs: 30_000,
      what: 'a degraded status report',
    });
    assert.deepEqual(announced(), ['probe']);
    for (let i = 0; i < 5; i++) {
      const { status, answer } = await call();
      assert.equal(status, 200);
      assert.equal(typeof (answer as { pid?: unknown }).pid, 'number');
    }
    // The calls above were answered while it was degraded, not after the instance came back.
    assert.equal(deployment()?.state, 'degraded');
    assert.equal(deployment()?.instances.find((i) => i.id === victim.id)?.state, 'backoff');

    await waitFor(() => deployment()?.state === 'running' && deployment()?.readyReplicas === 2, {
      timeoutMs: 120_000,
      what: 'the killed instance to be back',
    });
    assert.equal(deployment()?.reason, undefined);
    await waitFor(() => reports.at(-1)?.find((r) => r.id === 'probe')?.state === 'running', {
      timeoutMs: 30_000,
      what: 'a running status report',
    });
    assert.equal((await call()).status, 200);
  });
});
