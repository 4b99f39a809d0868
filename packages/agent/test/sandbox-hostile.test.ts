// Regression tests for the sandbox attacks of issue 16: an application that plants a
// symlink where the agent used to connect (item 1), fills its writable run dir (item 3),
// runs as host root or forks without bound (item 6), and a shutdown that races a
// deployment update (item 5). Everything runs under the real sandbox.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, InsituError, waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Agent, bundleDigest, parseAgentConfig, type DeploymentStatus, type DesiredDeployment } from '../src/index.js';
import { salesRows, writeSqlite } from './fixtures.js';
import { writeProbeBundle } from './probe-app.js';

const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'silent' });
const PROVIDER = 'prv_00000000000000000000000000';

/**
 * The attack of issue 16 item 1. The app reads the host path of its own data socket in
 * /proc/self/mountinfo, derives the other deployments' data sockets from it, and points
 * `app.sock` — in its run dir, and at every other place it can guess — at them and at an
 * arbitrary host socket, with a symlink. It serves on another name (mode `elsewhere`) or
 * also on the descriptor the agent handed it (mode `fd`), answering `{ hostile: true }`.
 */
const HOSTILE_MAIN = String.raw`
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
const [mode, hostSocket] = process.argv.slice(2);
const fields = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/run/insitu/data.sock');
const ownData = fields[3];
const others = [];
for (let i = 0; i < 10; i++) others.push(ownData.replace(/\/d\d+\/data\.sock$/, '/d' + i + '/data.sock'));
const victim = others.find((t) => t !== ownData);
const planted = [];
const links = [['/run/insitu/app/app.sock', victim], ['/tmp/app.sock', hostSocket], [ownData.replace(/data\.sock$/, 'i0/app.sock'), victim], [ownData.replace(/data\.sock$/, 'app.sock'), hostSocket]];
for (const [place, target] of links) {
  try { rmSync(place, { force: true }); symlinkSync(target, place); planted.push(place + ' -> ' + target); } catch (e) { console.log('cannot plant', place, e.code); }
}
console.log('planted', JSON.stringify(planted));
const handler = (req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ hostile: true, url: req.url })); };
createServer(handler).listen('/run/insitu/app/other.sock');
if (mode === 'fd') createServer(handler).listen({ fd: Number(process.env.INSITU_LISTEN_FD) });
`;

function writeBundle(dir: string, name: string, main: string, manifest: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.mjs'), main);
  writeFileSync(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name,
      version: '1.0.0',
      runtime: 'node',
      entry: 'main.mjs',
      datasets: [],
      endpoints: [{ method: 'GET', path: '/hello' }],
      limits: { memoryMb: 128, cpuSeconds: 30, processes: 48, openFiles: 128, requestTimeoutMs: 3000 },
      ...manifest,
    }),
  );
  return dir;
}

describe('a hostile application cannot make the agent connect anywhere but its own socket (issue 16 item 1)', () => {
  let dir = '';
  let agent: Agent;
  let front: Server;
  let hostServer: Server;
  let hostConnections = 0;
  let base = '';
  const desired: DesiredDeployment[] = [];

  async function call(path: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
    const response = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
    return { status: response.status, text: await response.text() };
  }

  function deployment(id: string): DeploymentStatus | undefined {
    return agent.status().deployments.find((d) => d.id === id);
  }

  before(async () => {
    dir = await makeTempDir('insitu-agent-hostile-');
    writeSqlite(join(dir, 'secret.db'), salesRows(20));
    // An arbitrary host socket that must never see a connection from the agent.
    hostServer = createServer((_req, res) => res.end('{"host":"secret"}'));
    hostServer.on('connection', () => hostConnections++);
    const hostSocket = join(dir, 'host.sock');
    await new Promise<void>((resolve) => hostServer.listen(hostSocket, resolve));
    const config = parseAgentConfig(
      { sources: [{ name: 'shop', kind: 'sqlite', path: 'secret.db' }] },
      { what: 'test config', baseDir: dir },
    );
    agent = await Agent.create({
      config,
      dataDir: join(dir, 'agent'),
      logger,
      provider: { id: PROVIDER },
      restartPolicy: {
        initialBackoffMs: 100,
        maxBackoffMs: 500,
        healthIntervalMs: 200,
        healthTimeoutMs: 1000,
        startTimeoutMs: 2000,
        unhealthyThreshold: 2,
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
    // The victim (d0) may read `sales`; the hostile ones (d1, d2) may read nothing.
    const victim = writeProbeBundle(join(dir, 'victim'));
    desired.push({
      id: 'victim',
      app: 'probe',
      version: '1.0.0',
      digest: await bundleDigest(victim),
      replicas: 1,
      bundle: victim,
      datasets: [{ providerId: PROVIDER, dataset: 'sales' }],
    });
    await agent.applyDesired(desired);
    await waitFor(() => deployment('victim')?.state === 'running', { timeoutMs: 60_000, what: 'the victim to run' });
    for (const mode of ['elsewhere', 'fd']) {
      const bundle = writeBundle(join(dir, `hostile-${mode}`), `hostile-${mode}`, HOSTILE_MAIN, {
        args: [mode, hostSocket],
      });
      desired.push({
        id: `hostile-${mode}`,
        app: `hostile-${mode}`,
        version: '1.0.0',
        digest: await bundleDigest(bundle),
        replicas: 1,
        bundle,
        datasets: [],
      });
    }
    await agent.applyDesired(desired);
  });

  after(async () => {
    await agent?.close();
    front?.close();
    hostServer?.close();
    await removeDir(dir);
  });

  it('the victim serves its own rows (the data the attack is after is there)', async () => {
    const { status, text } = await call('/victim/data/sales');
    assert.equal(status, 200);
    assert.equal((JSON.parse(text) as { ok: boolean }).ok, true);
  });

  it("an app that points app.sock at another deployment's data socket and serves elsewhere is never ready; calls get a coded 503, never rows", async () => {
    // It planted its links and failed its health checks at least once (the agent probed its own socket, which nobody serves).
    await waitFor(() => (deployment('hostile-elsewhere')?.instances[0]?.restarts ?? 0) >= 1, {
      timeoutMs: 60_000,
      what: 'the hostile instance to fail its start check',
    });
    const instance = deployment('hostile-elsewhere')?.instances[0];
    assert.match(String(instance?.lastExit?.reason), /health/);
    assert.ok(
      instance?.lastExit?.output.some(
        (line) => line.startsWith('planted') && /\/run\/insitu\/app\/app\.sock -> \S+\/d0\/data\.sock/.test(line),
      ),
      'the attack was carried out',
    );
    assert.equal(deployment('hostile-elsewhere')?.readyReplicas, 0);
    for (const path of ['/healthz', '/v1/datasets', '/v1/datasets/sales']) {
      const { status, text } = await call(`/hostile-elsewhere${path}`);
      assert.equal(status, 503, path);
      assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'INSITU_APP_UNAVAILABLE');
    }
    const query = await call('/hostile-elsewhere/v1/datasets/sales/query', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(query.status, 503);
    assert.doesNotMatch(query.text, /Berlin|north|"columns"/);
    assert.equal(hostConnections, 0, 'the arbitrary host socket was never connected to');
  });

  it('an app that plants the links and serves its own socket is only ever reached on its own socket', async () => {
    await waitFor(() => deployment('hostile-fd')?.state === 'running', {
      timeoutMs: 60_000,
      what: 'the hostile app serving on its descriptor',
    });
    for (const path of ['/v1/datasets', '/v1/datasets/sales']) {
      const { status, text } = await call(`/hostile-fd${path}`);
      assert.equal(status, 200);
      assert.deepEqual(JSON.parse(text), { hostile: true, url: path });
    }
    const query = await call('/hostile-fd/v1/datasets/sales/query', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.deepEqual(JSON.parse(query.text), { hostile: true, url: '/v1/datasets/sales/query' });
    assert.equal(hostConnections, 0, 'the arbitrary host socket was never connected to');
  });
});

describe('the sandbox bounds what an application can do to the host (issue 16 items 3, 5, 6)', () => {
  let dir = '';
  let bundle = '';
  let digest = '';
  const agents: Agent[] = [];
  const fronts: Server[] = [];

  async function startAgent(options: {
    cgroups: boolean;
  }): Promise<{ agent: Agent; get: (path: string) => Promise<Record<string, unknown>> }> {
    const config = parseAgentConfig(
      { sources: [], sandbox: { cgroups: options.cgroups } },
      { what: 'test config', baseDir: dir },
    );
    const agent = await Agent.create({
      config,
      dataDir: join(dir, `agent-${agents.length}`),
      logger,
      provider: { id: PROVIDER },
      restartPolicy: { initialBackoffMs: 100, maxBackoffMs: 500 },
    });
    agents.push(agent);
    const front = createServer((req, res) => agent.handle(req, res, { deployment: 'probe' }));
    fronts.push(front);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
    const get = async (path: string) =>
      (await (await fetch(`${base}${path}`, { signal: AbortSignal.timeout(30_000) })).json()) as Record<
        string,
        unknown
      >;
    return { agent, get };
  }

  async function deploy(agent: Agent): Promise<void> {
    await agent.applyDesired([
      { id: 'probe', app: 'probe', version: '1.0.0', digest, replicas: 1, bundle, datasets: [] },
    ]);
    await waitFor(() => agent.status().deployments[0]?.state === 'running', {
      timeoutMs: 60_000,
      what: 'the probe to run',
    });
  }

  let get: (path: string) => Promise<Record<string, unknown>>;

  before(async () => {
    dir = await makeTempDir('insitu-agent-bounds-');
    bundle = writeProbeBundle(join(dir, 'probe'), { datasets: [] });
    digest = await bundleDigest(bundle);
    const started = await startAgent({ cgroups: true });
    get = started.get;
    await deploy(started.agent);
  });

  after(async () => {
    for (const agent of agents) await agent.close();
    for (const front of fronts) front.close();
    await removeDir(dir);
  });

  it('the run dir is a bounded tmpfs: writing past 16 MiB fails with ENOSPC inside the app', async () => {
    const fill = await get(`/fill?path=${encodeURIComponent('/run/insitu/app/big')}&mb=300`);
    assert.equal(fill.ok, false);
    assert.equal(fill.code, 'ENOSPC');
    assert.ok(Number(fill.written) <= 16 * 1024 * 1024, `wrote ${String(fill.written)} bytes`);
    assert.equal((await get('/hello')).uid, 65534, 'the app still serves');
  });

  it('runs as an unprivileged host uid, with the seccomp filter on: not host root even by mapping', async () => {
    const ids = await get('/ids');
    assert.equal(ids.uid, 65534);
    // uid_map lines: inside-start outside-start count. The app's uid must map to a host uid other than 0.
    const hostUid = String(ids.uidMap)
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number) as [number, number, number])
      .filter(([inside, , count]) => Number(ids.uid) >= inside && Number(ids.uid) < inside + count)
      .map(([inside, outside]) => outside + Number(ids.uid) - inside)[0];
    assert.notEqual(hostUid, undefined);
    assert.notEqual(hostUid, 0);
    assert.deepEqual(
      [(ids.chownToRoot as { ok: boolean }).ok, (ids.chownToRoot as { code: string }).code],
      [false, 'EPERM'],
    );
    assert.equal(ids.seccomp, '2', 'a seccomp filter is installed');
  });

  it('a fork bomb is bounded without cgroups too: the app is not root, so RLIMIT_NPROC binds it', async (t) => {
    if (process.getuid?.() !== 0)
      return t.skip('as a non-root agent the app maps to the agent uid, whose other processes count too');
    const bare = await startAgent({ cgroups: false });
    assert.equal(bare.agent.status().limits.processes, 'rlimit');
    await deploy(bare.agent);
    const fork = await bare.get('/fork');
    assert.ok(Number(fork.spawned) < 48, `spawned ${String(fork.spawned)} processes`);
    assert.equal(fork.error, 'EAGAIN');
    await bare.agent.close();
  });

  it('close() racing a deployment update starts nothing and leaves nothing running', async () => {
    const { agent } = await startAgent({ cgroups: true });
    await deploy(agent);
    const closing = agent.close();
    const update = agent.applyDesired([
      { id: 'probe', app: 'probe', version: '1.0.0', digest, replicas: 2, bundle, datasets: [] },
      { id: 'late', app: 'probe', version: '1.0.0', digest, replicas: 1, bundle, datasets: [] },
    ]);
    const [closed, updated] = await Promise.allSettled([closing, update]);
    assert.equal(closed.status, 'fulfilled');
    assert.equal(updated.status, 'rejected');
    assert.ok(
      updated.status === 'rejected' &&
        updated.reason instanceof InsituError &&
        updated.reason.code === 'INSITU_UNAVAILABLE',
    );
    assert.deepEqual(agent.status().deployments, [], 'no deployment is left or started');
    await assert.rejects(
      agent.applyDesired([{ id: 'later', app: 'probe', version: '1.0.0', digest, replicas: 1, bundle, datasets: [] }]),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_UNAVAILABLE',
    );
    assert.deepEqual(agent.status().deployments, []);
  });
});
