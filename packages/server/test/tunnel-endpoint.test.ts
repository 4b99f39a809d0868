import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { InsituError, generateSecret, hashSecret, newId, waitFor } from '@insitu/core';
import { buildServer, createOrg, defaultServerConfig, initPlatform, signIn, type App } from '@insitu/server';
import { openStore, type Store } from '@insitu/store';
import { startEtcdCluster, type EtcdCluster } from '@insitu/test-helpers';
import { TunnelClient, type TunnelResponse } from '@insitu/tunnel';

const COST = { N: 2 ** 10, r: 8, p: 1 };

async function text(response: TunnelResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function seed(
  store: Store,
): Promise<{ providerId: string; agentId: string; credential: string; adminToken: string }> {
  const init = await initPlatform(store, { adminEmail: 'admin@example.org', password: 'correct horse battery' }, COST);
  const org = await createOrg(store, { name: `prov-${Math.random().toString(36).slice(2, 8)}`, status: 'active' });
  const provider = await store.providers.create({
    orgId: org.id,
    name: 'hospital',
    displayName: 'Hospital',
    description: '',
  });
  const credential = generateSecret('agt');
  const agent = await store.providers.createAgent({
    id: newId('agt'),
    providerId: provider.id,
    name: 'a1',
    credentialHash: hashSecret(credential),
    hostname: 'h',
    version: '0',
  });
  const session = await signIn(store, init.admin.email, 'correct horse battery', 3_600_000, COST);
  return { providerId: provider.id, agentId: agent.id, credential, adminToken: session.token };
}

function url(app: App): string {
  const address = app.server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

function agentClient(platforms: string[], credential: string, name: string, sessions = 1): TunnelClient {
  return new TunnelClient({
    platforms,
    credential,
    sessions,
    allowPlainText: true,
    services: [{ key: 'app@1.0.0' }],
    backoff: { baseMs: 50, maxMs: 300, rejectedMs: 60_000 },
    handler: (req, res) => {
      req.resume();
      res.end(JSON.stringify({ agent: name, path: req.url }));
    },
  });
}

describe('server: the tunnel endpoint on the API port', () => {
  let store: Store;
  let app: App;
  let seeded: Awaited<ReturnType<typeof seed>>;
  const clients: TunnelClient[] = [];
  before(async () => {
    store = await openStore({ kind: 'sqlite', path: ':memory:' });
    app = await buildServer({ config: defaultServerConfig({ log: { level: 'silent' } }), store });
    await app.listen({ host: '127.0.0.1', port: 0 });
    seeded = await seed(store);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close(200)));
    await app.close();
    await store.close();
  });

  it('accepts an enrolled agent, routes to it, and shows the session in /api/v1/cluster and /metrics', async () => {
    const client = agentClient([url(app)], seeded.credential, 'one').start();
    clients.push(client);
    await waitFor(() => app.tunnel.table.candidates(seeded.providerId, 'app@1.0.0').length === 1, {
      what: 'the agent routable',
    });
    const response = await app.tunnel.request({
      providerId: seeded.providerId,
      service: 'app@1.0.0',
      method: 'GET',
      path: '/x',
    });
    assert.deepEqual(JSON.parse(await text(response)), { agent: 'one', path: '/x' });
    const cluster = await app.inject({
      method: 'GET',
      url: '/api/v1/cluster',
      headers: { authorization: `Bearer ${seeded.adminToken}` },
    });
    assert.equal(cluster.statusCode, 200);
    const view = cluster.json<{
      coordination: { kind: string };
      tunnel: { sessions: Array<{ agentId: string; services: Array<{ key: string }> }> };
    }>();
    assert.equal(view.coordination.kind, 'memory');
    assert.equal(view.tunnel.sessions[0]?.agentId, seeded.agentId);
    assert.equal(view.tunnel.sessions[0]?.services[0]?.key, 'app@1.0.0');
    const metrics = await app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${seeded.adminToken}` },
    });
    assert.match(metrics.body, /^insitu_tunnel_sessions 1$/m);
    assert.match(metrics.body, /^insitu_tunnel_streams_total\{outcome="ok"\} 1$/m);
    assert.match(metrics.body, /^insitu_tunnel_bytes_total\{direction="from_agent"\} \d+/m);
  });

  it('answers 404 with a code for an upgrade to any other path, and keeps serving', async () => {
    const port = Number(new URL(url(app)).port);
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write(
          'GET /api/v1/other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: insitu-tunnel/1\r\n\r\n',
        ),
      );
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('close', () => resolve(data));
    });
    assert.match(answer, /^HTTP\/1.1 404/);
    assert.ok(answer.includes('INSITU_ROUTE_NOT_FOUND'));
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
  });

  it('closes the sessions of a revoked agent and refuses its credential from then on', async () => {
    const rejected = new Promise<InsituError>((resolve) => clients[0]?.once('rejected', resolve));
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/api/v1/agents/${seeded.agentId}`,
      headers: { authorization: `Bearer ${seeded.adminToken}` },
    });
    assert.equal(revoke.statusCode, 204);
    assert.equal((await rejected).code, 'INSITU_TUNNEL_CREDENTIAL_REJECTED');
    assert.equal(app.tunnel.sessions().length, 0);
    await assert.rejects(
      app.tunnel.request({ providerId: seeded.providerId, method: 'GET', path: '/' }),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_TUNNEL_NO_ROUTE' && e.status === 503,
    );
  });
});

describe('server: two platform nodes on a real etcd cluster', () => {
  let etcd: EtcdCluster | undefined;
  let store: Store;
  const apps: App[] = [];
  const clients: TunnelClient[] = [];
  before(async () => {
    etcd = await startEtcdCluster({ members: 3 });
    store = await openStore({ kind: 'sqlite', path: ':memory:' });
  });
  /** Nodes on the test's etcd cluster, in a namespace of their own. */
  const clusterConfig = () =>
    defaultServerConfig({
      log: { level: 'silent' },
      cluster: {
        coordination: 'etcd',
        etcdEndpoints: etcd?.endpoints ?? [],
        etcdNamespace: `t-${Math.random().toString(36).slice(2, 8)}/`,
        secret: 'a-cluster-secret-of-at-least-32-characters',
      },
    });
  after(async () => {
    await Promise.all(clients.map((c) => c.close(200)));
    for (const app of apps) await app.close().catch(() => undefined);
    await store.close();
    await etcd?.stop();
  });

  it('pushes a deployment change made through one node to agents connected only to another', async () => {
    const config = clusterConfig();
    // Its own platform database: the other test of this suite seeds the shared one.
    const own = await openStore({ kind: 'sqlite', path: ':memory:' });
    const nodes: App[] = [];
    let client: TunnelClient | undefined;
    try {
      for (const nodeId of ['push-a', 'push-b']) {
        const app = await buildServer({ config, store: own, nodeId });
        nodes.push(app);
        await app.listen({ host: '127.0.0.1', port: 0 });
      }
      const [a, b] = nodes;
      assert.ok(a && b);
      const seeded = await seed(own);
      // The agent holds a session with b only; it never polls (a bare tunnel client).
      client = agentClient([url(b)], seeded.credential, 'agent');
      const pushed: unknown[] = [];
      client.onCommand('desired', (payload) => {
        pushed.push(payload);
        return { ok: true };
      });
      client.start();
      await waitFor(() => client?.status().sessions.length === 1, { what: 'a session with b' });
      assert.equal(a.tunnel.sessions().length, 0);
      a.insitu.reconciler.changed(seeded.providerId);
      await waitFor(() => pushed.length > 0, {
        timeoutMs: 10_000,
        what: 'the desired state to reach the agent through b',
      });
      assert.deepEqual(pushed[0], { deployments: [], policies: [] });
    } finally {
      await client?.close(200);
      for (const app of nodes) await app.close().catch(() => undefined);
      await own.close();
    }
  });

  it('stops a key revoked through one node on the others at once, without waiting for their caches', async () => {
    const config = clusterConfig();
    const own = await openStore({ kind: 'sqlite', path: ':memory:' });
    const nodes: App[] = [];
    try {
      // Node b's clock stands still: its gateway caches never expire by age, so only the
      // cluster signal can make it forget the key.
      const frozen = Date.now();
      for (const [nodeId, now] of [
        ['key-a', Date.now],
        ['key-b', () => frozen],
      ] as const) {
        const app = await buildServer({ config, store: own, nodeId, now });
        nodes.push(app);
        await app.listen({ host: '127.0.0.1', port: 0 });
      }
      const [a, b] = nodes;
      assert.ok(a && b);
      const init = await initPlatform(
        own,
        { adminEmail: 'admin@example.org', password: 'correct horse battery' },
        COST,
      );
      const session = await signIn(own, init.admin.email, 'correct horse battery', 3_600_000, COST);
      const application = await own.apps.create({
        orgId: init.org.id,
        name: 'stats',
        description: '',
        createdBy: init.admin.id,
      });
      await own.services.create({
        name: 'stats',
        orgId: init.org.id,
        appId: application.id,
        description: '',
        access: 'public',
        limits: {
          ratePerSecond: 1000,
          burst: 1000,
          dailyQuota: 1_000_000,
          maxRequestBytes: 1024,
          maxResponseBytes: 1024,
          timeoutMs: 1000,
        },
      });
      const created = await a.inject({
        method: 'POST',
        url: '/api/v1/keys',
        headers: { authorization: `Bearer ${session.token}` },
        payload: { orgId: init.org.id, name: 'k', services: ['stats'] },
      });
      assert.equal(created.statusCode, 201, created.body);
      const { id, key } = JSON.parse(created.body) as { id: string; key: string };
      const call = async () =>
        JSON.parse(
          (await b.inject({ method: 'GET', url: '/s/stats/x', headers: { authorization: `Bearer ${key}` } })).body,
        ) as { error: { code: string } };
      // The key passes on b (the service has no running version, which is checked after the key).
      assert.equal((await call()).error.code, 'INSITU_SERVICE_UNAVAILABLE');
      const revoked = await a.inject({
        method: 'DELETE',
        url: `/api/v1/keys/${id}`,
        headers: { authorization: `Bearer ${session.token}` },
      });
      assert.equal(revoked.statusCode, 204, revoked.body);
      await waitFor(async () => (await call()).error.code === 'INSITU_KEY_INVALID', {
        timeoutMs: 10_000,
        what: 'node b to refuse the revoked key',
      });
    } finally {
      for (const app of nodes) await app.close().catch(() => undefined);
      await own.close();
    }
  });

  it('serves a request arriving at the node without the session through the other, and survives a node’s death', async () => {
    const config = clusterConfig();
    for (const nodeId of ['node-a', 'node-b', 'node-c']) {
      const app = await buildServer({ config, store, nodeId });
      await app.listen({ host: '127.0.0.1', port: 0 });
      apps.push(app);
    }
    const [a, b, c] = apps;
    assert.ok(a && b && c);
    assert.equal(a.coordinator.kind, 'etcd');
    const seeded = await seed(store);
    // Sessions to a and b; c holds none.
    const client = agentClient([url(a), url(b)], seeded.credential, 'agent', 2).start();
    clients.push(client);
    await waitFor(() => client.status().sessions.length === 2, { what: 'two sessions' });
    await waitFor(
      async () => {
        const r: TunnelResponse | undefined = await c.tunnel
          .request({ providerId: seeded.providerId, service: 'app@1.0.0', method: 'GET', path: '/via-c' })
          .catch(() => undefined);
        if (!r) return false;
        await text(r);
        return r.forwarded;
      },
      { timeoutMs: 15_000, what: 'node c to forward' },
    );
    const response = await c.tunnel.request({
      providerId: seeded.providerId,
      service: 'app@1.0.0',
      method: 'GET',
      path: '/via-c',
    });
    assert.equal(response.forwarded, true);
    assert.deepEqual(JSON.parse(await text(response)), { agent: 'agent', path: '/via-c' });

    // Node a dies abruptly (its etcd lease is left to expire): b's session keeps serving,
    // directly and for c.
    apps.splice(apps.indexOf(a), 1);
    await a.coordinator.close({ revokeLeases: false });
    a.server.closeAllConnections();
    await a.close().catch(() => undefined);
    const direct = await b.tunnel.request({
      providerId: seeded.providerId,
      service: 'app@1.0.0',
      method: 'GET',
      path: '/b',
    });
    assert.equal(direct.forwarded, false);
    await text(direct);
    await waitFor(
      async () => {
        const r: TunnelResponse | undefined = await c.tunnel
          .request({
            providerId: seeded.providerId,
            service: 'app@1.0.0',
            method: 'GET',
            path: '/after',
            deadlineMs: 3000,
          })
          .catch(() => undefined);
        if (!r) return false;
        await text(r);
        return r.nodeId === b.tunnel.nodeId;
      },
      { timeoutMs: 20_000, what: 'c to forward to b once a is gone' },
    );
    for (let i = 0; i < 5; i++) {
      const r: TunnelResponse = await c.tunnel.request({
        providerId: seeded.providerId,
        service: 'app@1.0.0',
        method: 'GET',
        path: `/n${i}`,
      });
      assert.equal(r.nodeId, b.tunnel.nodeId);
      await text(r);
    }
  });
});
