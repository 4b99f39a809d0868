import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { connect as connectHttp2, createServer as createHttp2Server } from 'node:http2';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Agent, bundleDigest, parseAgentConfig, type DeploymentStatus } from '../src/index.js';
import { salesRows, writeSqlite } from './fixtures.js';
import { writeProbeBundle } from './probe-app.js';

const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'silent' });

/** The resolved dataset list the platform sends with each deployment of the probe (provider id as in the agent's options). */
const SALES = [{ providerId: 'prv_00000000000000000000000000', dataset: 'sales' }];

describe('sandboxed applications: each attack fails, the agent stays up and other instances keep serving', () => {
  let dir = '';
  let agent: Agent;
  let front: Server;
  let base = '';
  let tcp: TcpServer;
  let tcpPort = 0;
  let digest = '';
  let bundle = '';

  async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: response.status, body };
  }

  function deployment(id: string): DeploymentStatus | undefined {
    return agent.status().deployments.find((d) => d.id === id);
  }

  async function running(id: string, replicas: number): Promise<void> {
    await waitFor(() => deployment(id)?.state === 'running' && deployment(id)?.readyReplicas === replicas, {
      timeoutMs: 60_000,
      what: `${id} running with ${replicas} instances`,
    });
  }

  /** The other deployment still answers: the attack did not spill over. */
  async function witnessServes(): Promise<void> {
    const { status, body } = await get('/witness/hello');
    assert.equal(status, 200);
    assert.equal(typeof body.pid, 'number');
  }

  before(async () => {
    dir = await makeTempDir('insitu-agent-sbx-');
    writeSqlite(join(dir, 'shop.db'), salesRows(20));
    writeSqlite(join(dir, 'secret.db'), salesRows(3));
    writeFileSync(join(dir, 'host-secret.txt'), 'do not read me');
    bundle = writeProbeBundle(join(dir, 'probe'));
    digest = await bundleDigest(bundle);
    const config = parseAgentConfig(
      {
        sources: [
          { name: 'shop', kind: 'sqlite', path: 'shop.db' },
          { name: 'other', kind: 'sqlite', path: 'secret.db', datasets: { sales: { name: 'secret_sales' } } },
        ],
      },
      { what: 'test config', baseDir: dir },
    );
    agent = await Agent.create({
      config,
      dataDir: join(dir, 'agent'),
      logger,
      provider: { id: 'prv_00000000000000000000000000', name: 'acme' },
      restartPolicy: {
        initialBackoffMs: 100,
        maxBackoffMs: 1000,
        healthIntervalMs: 250,
        healthTimeoutMs: 2000,
        startTimeoutMs: 30_000,
      },
    });
    await agent.registry.refresh();
    front = createServer((req, res) => {
      const [, id, ...rest] = (req.url ?? '/').split('/');
      req.url = `/${rest.join('/')}`;
      agent.handle(req, res, { deployment: id ?? '' });
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
    tcp = createTcpServer((socket) => socket.end('hello from the host\n'));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    tcpPort = (tcp.address() as { port: number }).port;
    await agent.applyDesired([
      { id: 'probe', app: 'probe', version: '1.0.0', digest, replicas: 2, bundle, datasets: SALES },
      { id: 'witness', app: 'probe', version: '1.0.0', digest, replicas: 1, bundle, datasets: SALES },
    ]);
    await running('probe', 2);
    await running('witness', 1);
  });

  after(async () => {
    await agent?.close();
    front?.close();
    tcp?.close();
    await removeDir(dir);
  });

  it('serves through the local balancer, spread over the instances, as an unprivileged user', async () => {
    const pids = new Set<unknown>();
    for (let i = 0; i < 6; i++) {
      const { status, body } = await get('/probe/hello');
      assert.equal(status, 200);
      assert.equal(body.uid, 65534);
      pids.add(`${String(body.pid)}/${i % 2}`);
    }
    const statuses = deployment('probe')?.instances.map((i) => i.pid);
    assert.equal(new Set(statuses).size, 2, 'two instances with their own processes');
  });

  it('serves requests that arrive over HTTP/2, as the tunnel will hand them over', async () => {
    const h2 = createHttp2Server((req, res) => agent.handle(req, res, { deployment: 'witness' }));
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    const client = connectHttp2(`http://127.0.0.1:${(h2.address() as { port: number }).port}`);
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = client.request({ ':method': 'GET', ':path': '/hello' });
        let status = 0;
        let body = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (body += chunk));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
        stream.end();
      });
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.body) as { uid: number }).uid, 65534);
    } finally {
      client.close();
      h2.close();
    }
  });

  it('cannot read a host file outside the bundle', async () => {
    for (const path of [join(dir, 'host-secret.txt'), join(dir, 'shop.db'), '/etc/shadow', '/root/.bashrc']) {
      const { body } = await get(`/probe/read?path=${encodeURIComponent(path)}`);
      assert.equal(body.ok, false, path);
      assert.equal(body.code, 'ENOENT', path);
    }
    assert.equal(
      (await get(`/probe/read?path=${encodeURIComponent('/app/insitu.json')}`)).body.ok,
      true,
      'its own bundle is readable',
    );
    await witnessServes();
  });

  it('cannot write outside /tmp', async () => {
    for (const path of ['/app/evil.js', '/usr/evil', '/run/insitu/evil', '/etc/evil']) {
      const { body } = await get(`/probe/write?path=${encodeURIComponent(path)}`);
      assert.equal(body.ok, false, path);
      assert.match(String(body.code), /EROFS|EACCES|ENOENT|EPERM/, path);
    }
    assert.equal(
      (await get(`/probe/write?path=${encodeURIComponent('/tmp/scratch')}`)).body.ok,
      true,
      '/tmp is writable',
    );
    assert.equal(
      (await get(`/witness/read?path=${encodeURIComponent('/tmp/scratch')}`)).body.ok,
      false,
      "another instance's /tmp is its own",
    );
    await witnessServes();
  });

  it('cannot open a TCP connection to loopback (no network)', async () => {
    const { body } = await get(`/probe/tcp?port=${tcpPort}`);
    assert.equal(body.ok, false);
    assert.match(String(body.code), /ECONNREFUSED|ENETUNREACH|EACCES/);
    const outside = await get(`/probe/tcp?port=80&host=${encodeURIComponent('1.1.1.1')}`);
    assert.equal(outside.body.ok, false);
    await witnessServes();
  });

  it('reads declared datasets through the data API, and nothing else', async () => {
    const ok = await get('/probe/data/sales?city=Berlin');
    assert.equal(ok.body.ok, true);
    assert.ok(Array.isArray(ok.body.rows) && ok.body.rows.length > 0);
    const undeclared = await get('/probe/data/secret_sales');
    assert.deepEqual([undeclared.body.ok, undeclared.body.code], [false, 'INSITU_DATASET_NOT_DECLARED']);
    const injected = await get(`/probe/data/sales?city=${encodeURIComponent("x' OR '1'='1")}`);
    assert.deepEqual(injected.body.rows, []);
    const badColumn = await get(`/probe/data/sales?column=${encodeURIComponent('id" FROM sales; --')}`);
    assert.deepEqual([badColumn.body.ok, badColumn.body.code], [false, 'INSITU_DATA_QUERY_INVALID']);
    await witnessServes();
  });

  it('cannot fork without bound', async (t) => {
    if (agent.status().limits.processes !== 'cgroup')
      return t.skip('needs a writable cgroup pids controller (v1, or a delegated v2 subtree; run as root)');
    const { status, body } = await get('/probe/fork');
    assert.equal(status, 200);
    assert.ok(Number(body.spawned) < 48, `spawned ${String(body.spawned)} processes`);
    assert.equal(body.error, 'EAGAIN');
    await witnessServes();
  });

  it('dies alone when it allocates without bound, and is restarted', async (t) => {
    if (agent.status().limits.memory !== 'cgroup')
      return t.skip('needs a writable cgroup memory controller (v1, or a delegated v2 subtree; run as root)');
    const before = deployment('probe')?.instances.reduce((n, i) => n + i.restarts, 0) ?? 0;
    const { status } = await get('/probe/alloc').catch(() => ({ status: 0 }));
    assert.notEqual(status, 200);
    await waitFor(() => (deployment('probe')?.instances.reduce((n, i) => n + i.restarts, 0) ?? 0) > before, {
      timeoutMs: 30_000,
      what: 'the instance to be restarted',
    });
    const exit = deployment('probe')?.instances.find((i) => i.lastExit)?.lastExit;
    assert.match(String(exit?.reason), /memory|SIGKILL/);
    await witnessServes();
    await running('probe', 2);
  });

  it('is stopped at its CPU time limit and restarted; a hanging request is answered 504', async () => {
    const hang = await get('/probe/hang');
    assert.deepEqual(
      [hang.status, hang.body.error && (hang.body.error as { code: string }).code],
      [504, 'INSITU_APP_TIMEOUT'],
    );
    const before = deployment('witness')?.instances[0]?.restarts ?? 0;
    assert.equal((await get('/witness/spin')).status, 200);
    await waitFor(() => (deployment('witness')?.instances[0]?.restarts ?? 0) > before, {
      timeoutMs: 60_000,
      what: 'the spinning instance to hit its CPU limit',
    });
    assert.match(String(deployment('witness')?.instances[0]?.lastExit?.reason), /CPU/);
    await running('witness', 1);
    await witnessServes();
  });

  it('notices a killed instance and repairs it', async () => {
    await running('probe', 2);
    const victim = deployment('probe')?.instances[0];
    assert.ok(victim?.pid);
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(
      () => (deployment('probe')?.instances.find((i) => i.id === victim.id)?.restarts ?? 0) > victim.restarts,
      { timeoutMs: 30_000, what: 'the kill to be noticed' },
    );
    await running('probe', 2);
    assert.notEqual(deployment('probe')?.instances.find((i) => i.id === victim.id)?.pid, victim.pid);
    await witnessServes();
  });

  it('refuses and reports a bundle whose digest does not match, without touching the others', async () => {
    const wrong = 'a'.repeat(64);
    await agent.applyDesired([
      { id: 'probe', app: 'probe', version: '1.0.0', digest, replicas: 2, bundle, datasets: SALES },
      { id: 'witness', app: 'probe', version: '1.0.0', digest, replicas: 1, bundle, datasets: SALES },
      { id: 'tampered', app: 'probe', version: '1.0.0', digest: wrong, replicas: 1, bundle },
    ]);
    const status = await agent.settled('tampered');
    assert.equal(status?.state, 'failed');
    assert.equal(status?.reason?.code, 'INSITU_BUNDLE_DIGEST_MISMATCH');
    assert.match(String(status?.reason?.message), new RegExp(digest));
    assert.equal((await get('/tampered/hello')).status, 503);
    await witnessServes();
    assert.equal(deployment('probe')?.state, 'running');
  });

  it('stops what is no longer desired', async () => {
    await agent.applyDesired([
      { id: 'witness', app: 'probe', version: '1.0.0', digest, replicas: 1, bundle, datasets: SALES },
    ]);
    assert.equal(deployment('probe'), undefined);
    assert.equal((await get('/probe/hello')).status, 503);
    await witnessServes();
  });
});
