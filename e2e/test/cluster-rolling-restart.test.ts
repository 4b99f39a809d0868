// The whole platform under the DaaS-Operator, as docs/multi-node-install.md sets it up:
// three `insitu node` processes on etcd, each supervising a real `insitu server` (one
// MariaDB platform database, etcd coordination, a cluster secret), HAProxy in front of the
// three servers health-checking /readyz (as a user would front the cluster), and an agent
// of one provider dialling all three with a sandboxed application deployed and published.
// Checks: the leader's deep probes (database write and read through every server, etcd,
// the agent's built-in probe through the tunnel) raise nothing while all is well and raise
// one `agent-offline` alert, then one resolved, when the agent goes and comes back; and a
// rolling restart of the servers under steady calls through HAProxy drops no call.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { waitFor } from '@insitu/core';
import { createEtcdCoordinator, type Coordinator } from '@insitu/coord';
import { KEYS, parseRecord, type NodeRecord } from '@insitu/operator';
import {
  freePort,
  makeTempDir,
  removeDir,
  requireCommand,
  startEtcd,
  startMariaDb,
  startWebhookReceiver,
  type EtcdMember,
  type MariaDbInstance,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import {
  INSITU,
  InsituProcess,
  initPlatform,
  providerAndDeveloper,
  runInsitu,
  signInAs,
  publishApp,
  startAgent,
  writeBundle,
} from './support.js';

const NODES = ['node1', 'node2', 'node3'] as const;
type NodeName = (typeof NODES)[number];
const SECRET = 'e2e-cluster-secret-0123456789abcdef0123456789';
const PASSWORD = 'a-long-enough-password';
const CALLERS = 16;

interface AlertMessage {
  status: 'firing' | 'resolved';
  condition: string;
  alerts: { subject: string }[];
}

const CLUSTER_SPEC = {
  services: {
    server: {
      placement: 'every-node',
      liveness: { path: '/healthz', periodMs: 1000, timeoutMs: 1000, failureThreshold: 5 },
      readiness: { path: '/readyz', periodMs: 500, timeoutMs: 500 },
      startupGraceMs: 60_000,
      stopGraceMs: 15_000,
    },
  },
  deepProbes: { enabled: true, service: 'server' },
};

function haproxyConfig(port: number, servers: readonly number[]): string {
  return [
    'global',
    '  maxconn 2000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout check 2s',
    '  retries 3',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response',
    'frontend calls',
    `  bind 127.0.0.1:${port}`,
    '  default_backend servers',
    'backend servers',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    '  default-server inter 500ms fall 2 rise 2',
    ...servers.map((p, i) => `  server s${i + 1} 127.0.0.1:${p} check`),
    '',
  ].join('\n');
}

describe('the platform on three operator nodes behind HAProxy', { timeout: 600_000 }, () => {
  let dir = '';
  let db: MariaDbInstance | undefined;
  let etcd: EtcdMember | undefined;
  let hooks: WebhookReceiver | undefined;
  let coordinator: Coordinator | undefined;
  let haproxy: ChildProcess | undefined;
  let agent: InsituProcess | undefined;
  const nodes = new Map<NodeName, InsituProcess>();
  const nodeConfigs = new Map<NodeName, string>();
  const serverPorts = new Map<NodeName, number>();
  let frontPort = 0;
  let url = '';
  let key = '';
  const env: Record<string, string> = {};

  const serverUrl = (name: NodeName) => `http://127.0.0.1:${serverPorts.get(name) ?? 0}`;
  const ready = async (base: string) => {
    try {
      const response = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  };
  const record = async (name: NodeName) => parseRecord<NodeRecord>(await coordinator?.get(`${KEYS.nodes}${name}`));
  const alerts = (condition: string, status: 'firing' | 'resolved') =>
    (hooks?.accepted ?? []).filter(
      (r) => (r.body as AlertMessage).condition === condition && (r.body as AlertMessage).status === status,
    );

  before(async () => {
    const haproxyBin = await requireCommand('haproxy', 'haproxy');
    dir = await makeTempDir('insitu-e2e-rolling-');
    [db, etcd, hooks] = await Promise.all([startMariaDb(), startEtcd(), startWebhookReceiver()]);
    env.INSITU_DATABASE_PASSWORD = db.password;
    coordinator = createEtcdCoordinator({ endpoints: [etcd.endpoint] });

    // One platform database, initialised once; each node's server gets a copy of the data dir.
    const base = join(dir, 'platform');
    const admin = await initPlatform(base, {
      args: ['--database-url', `mysql://root@${db.host}:${db.port}/${db.database}`],
      env,
    });
    const config = parse(await readFile(join(base, 'config.yaml'), 'utf8')) as Record<string, unknown>;
    config.cluster = {
      ...(config.cluster as object | undefined),
      coordination: 'etcd',
      etcdEndpoints: [etcd.endpoint],
      secret: SECRET,
    };
    config.shutdown = { ...(config.shutdown as object | undefined), drainDelayMs: 3000 };
    await writeFile(join(base, 'config.yaml'), stringify(config));

    for (const name of NODES) {
      const port = await freePort();
      serverPorts.set(name, port);
      const data = join(dir, `server-${name}`);
      await cp(base, data, { recursive: true });
      const file = join(dir, `${name}.yaml`);
      await writeFile(
        file,
        stringify({
          node: name,
          dataDir: join(dir, `node-${name}`),
          coord: { endpoints: [etcd.endpoint] },
          services: {
            server: {
              command: [process.execPath, INSITU, 'server', '--data-dir', data, '--port', String(port)],
              env,
              health: `http://127.0.0.1:${port}`,
            },
          },
          cluster: { secret: SECRET },
          notify: { webhooks: [{ url: hooks.url }] },
          alerts: { groupWaitMs: 0, groupIntervalMs: 1000, agentOfflineMs: 3000 },
          timing: {
            nodeLeaseTtlMs: 6000,
            nodeRenewMs: 500,
            leaderLeaseTtlMs: 9000,
            leaderRetryMs: 300,
            tickMs: 200,
            deepProbeIntervalMs: 1000,
          },
          log: { level: 'info' },
        }),
      );
      nodeConfigs.set(name, file);
    }
    await writeFile(join(dir, 'cluster.yaml'), stringify(CLUSTER_SPEC));
    for (const name of NODES) {
      const proc = new InsituProcess(name, ['node', '--config', nodeConfigs.get(name) ?? '']);
      nodes.set(name, proc);
      await proc.waitForOutput(/joined/, 60_000);
    }
    const applied = await runInsitu([
      'operator',
      'apply',
      '-f',
      join(dir, 'cluster.yaml'),
      '--config',
      nodeConfigs.get('node1') ?? '',
    ]);
    assert.equal(applied.code, 0, applied.stderr);
    await waitFor(async () => (await Promise.all(NODES.map((n) => ready(serverUrl(n))))).every(Boolean), {
      timeoutMs: 120_000,
      what: 'three servers ready',
    });
    url = serverUrl('node1');

    // HAProxy in front, health-checking readiness.
    frontPort = await freePort();
    await writeFile(
      join(dir, 'haproxy.cfg'),
      haproxyConfig(
        frontPort,
        NODES.map((n) => serverPorts.get(n) ?? 0),
      ),
    );
    haproxy = spawn(haproxyBin, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let haproxyErr = '';
    haproxy.stderr?.on('data', (c: Buffer) => (haproxyErr += c.toString()));
    await waitFor(() => ready(`http://127.0.0.1:${frontPort}`), {
      timeoutMs: 30_000,
      what: `HAProxy to answer (${haproxyErr})`,
    });

    // A provider with an agent dialling all three servers, a developer, an approved and published application.
    const adminToken = await signInAs(url, admin);
    const { acme, dev } = await providerAndDeveloper(url, adminToken, { password: PASSWORD });
    await writeFile(join(dir, 'orders.csv'), 'region,amount\nnorth,1\nsouth,2\n');
    await writeFile(
      join(dir, 'agent.yaml'),
      'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: csv\n    files: ./orders.csv\n    datasets:\n      orders: { description: Orders }\n',
    );
    agent = await startAgent(dir, NODES.map(serverUrl).join(','), acme.agentToken, { name: 'agent-a' });

    const app = join(dir, 'app');
    await writeBundle(
      app,
      {
        name: 'who',
        version: '1.0.0',
        runtime: 'node',
        entry: 'index.js',
        datasets: [{ provider: 'acme-data', dataset: 'orders' }],
        endpoints: [{ method: 'GET', path: '/whoami' }],
      },
      { 'index.js': "import { serve } from '@insitu/sdk';\nserve({ 'GET /whoami': () => ({ ok: true }) });\n" },
    );
    ({ key } = await publishApp(url, {
      bundle: app,
      service: 'who',
      developer: dev,
      approver: acme,
      reason: 'fine',
      rate: { rate: 100000, burst: 100000 },
    }));
    // Every server can answer a call (locally or through a peer holding the session).
    for (const name of NODES) {
      await waitFor(
        async () => {
          const response = await fetch(`${serverUrl(name)}/s/who/whoami`, {
            headers: { authorization: `Bearer ${key}` },
            signal: AbortSignal.timeout(5000),
          });
          await response.arrayBuffer();
          return response.ok;
        },
        { timeoutMs: 60_000, what: `a call through ${name}` },
      );
    }
  });

  after(async () => {
    await agent?.stop();
    haproxy?.kill('SIGTERM');
    await Promise.all([...nodes.values()].map((proc) => proc.stop('SIGTERM')));
    await coordinator?.close();
    await Promise.all([db?.stop(), etcd?.stop(), hooks?.stop()]);
    if (process.env.KEEP_TEST_DIR) {
      for (const [name, proc] of nodes) await writeFile(join(dir, `${name}.out`), proc.output);
      if (agent) await writeFile(join(dir, 'agent.out'), agent.output);
      process.stdout.write(`kept ${dir}\n`);
    } else if (dir) await removeDir(dir);
  });

  it('deep probes pass while all is well; a lost agent raises one agent-offline alert, and one resolved when it is back', async () => {
    // Several rounds of deep probes (every second) with everything up: nothing fires.
    await waitFor(async () => (await record('node1'))?.services.server?.state === 'ready', {
      timeoutMs: 30_000,
      what: 'node1 server ready in its record',
    });
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const fired = (hooks?.accepted ?? [])
      .filter((r) => (r.body as AlertMessage).status === 'firing')
      .map((r) => (r.body as AlertMessage).condition);
    assert.deepEqual(fired, [], 'no alert while the database, etcd and the agent answer the deep probes');

    await agent?.stop();
    await waitFor(() => alerts('agent-offline', 'firing').length === 1, {
      timeoutMs: 60_000,
      what: 'the agent-offline alert',
    });
    agent = await startAgent(dir, NODES.map(serverUrl).join(','), undefined, { name: 'agent-a' });
    await waitFor(() => alerts('agent-offline', 'resolved').length === 1, {
      timeoutMs: 60_000,
      what: 'the agent-offline alert resolved',
    });
    assert.equal(alerts('agent-offline', 'firing').length, 1, 'one firing message for the incident');
    // The agent is back on every server before the next test calls through them.
    for (const name of NODES) {
      await waitFor(
        async () => {
          const response = await fetch(`${serverUrl(name)}/s/who/whoami`, {
            headers: { authorization: `Bearer ${key}` },
            signal: AbortSignal.timeout(5000),
          });
          await response.arrayBuffer();
          return response.ok;
        },
        { timeoutMs: 60_000, what: `a call through ${name} after the agent came back` },
      );
    }
  });

  it('a rolling restart of the servers under steady calls through HAProxy drops no call', async () => {
    const pids = new Map<NodeName, number | undefined>();
    for (const name of NODES) pids.set(name, (await record(name))?.services.server?.pid);
    let running = true;
    let succeeded = 0;
    const failures: string[] = [];
    const caller = async () => {
      while (running) {
        try {
          const response = await fetch(`http://127.0.0.1:${frontPort}/s/who/whoami`, {
            headers: { authorization: `Bearer ${key}` },
            signal: AbortSignal.timeout(30_000),
          });
          const text = await response.text();
          if (response.ok) succeeded++;
          else failures.push(`${response.status} ${text.slice(0, 200)}`);
        } catch (error) {
          failures.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
      }
    };
    const callers = Array.from({ length: CALLERS }, () => caller());
    await waitFor(() => succeeded >= 200, { timeoutMs: 60_000, what: 'steady calls before the restart' });
    const result = await runInsitu([
      'operator',
      'restart',
      'server',
      '--rolling',
      '--json',
      '--config',
      nodeConfigs.get('node2') ?? '',
    ]);
    const during = succeeded;
    await waitFor(() => succeeded >= during + 200, { timeoutMs: 60_000, what: 'steady calls after the restart' });
    running = false;
    await Promise.all(callers);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const command = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
      state: string;
      steps: { node: string; state: string }[];
    };
    assert.equal(command.state, 'done');
    assert.deepEqual(
      command.steps.map((s) => `${s.node}:${s.state}`),
      ['node1:ready', 'node2:ready', 'node3:ready'],
    );
    for (const name of NODES)
      assert.notEqual((await record(name))?.services.server?.pid, pids.get(name), `the server on ${name} restarted`);
    process.stdout.write(
      `# rolling restart under ${CALLERS} callers: ${succeeded} calls succeeded, ${failures.length} failed\n`,
    );
    assert.deepEqual(
      failures.slice(0, 20),
      [],
      `no call failed (${failures.length} of ${succeeded + failures.length})`,
    );
  });
});
