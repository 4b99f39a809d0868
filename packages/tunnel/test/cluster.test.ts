import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InsituError, waitFor } from '@insitu/core';
import { createLocalDirectory, type SessionDirectory, type TunnelClient } from '@insitu/tunnel';
import { echoHandler, startAgent, startPlatform, text, waitRoutable, type TestPlatform } from './helpers.js';

describe('tunnel: two platform nodes sharing a session directory', () => {
  const platforms: TestPlatform[] = [];
  let agent: TunnelClient | undefined;
  after(async () => {
    await agent?.close(200);
    await Promise.all(platforms.map((p) => p.close().catch(() => undefined)));
  });

  it('forwards a request from the node without the session, and keeps serving through the second session when a node dies', async () => {
    const directory = createLocalDirectory();
    const secret = 'cluster-secret-for-tests-only-0123456789';
    const a = await startPlatform({ nodeId: 'node-a', cluster: { directory, secret } });
    const b = await startPlatform({ nodeId: 'node-b', cluster: { directory, secret } });
    const c = await startPlatform({ nodeId: 'node-c', cluster: { directory, secret } });
    platforms.push(a, b, c);
    for (const p of [a, b, c]) await directory.registerNode(p.tunnel.nodeId, p.url);
    // The agent holds sessions to a and b only; c has none.
    agent = await startAgent([a.url, b.url], echoHandler('agent'), { providerId: 'prv_c', sessions: 2 });
    await waitFor(() => directory.lookup('prv_c').length === 2, { what: 'both sessions published' });
    const viaC = await c.tunnel.request({
      providerId: 'prv_c',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/fw',
      body: 'hello',
      headers: { 'x-test': 'fw' },
    });
    assert.equal(viaC.forwarded, true);
    assert.ok(['node-a', 'node-b'].includes(viaC.nodeId));
    assert.deepEqual(JSON.parse(await text(viaC)), {
      agent: 'agent',
      method: 'POST',
      path: '/fw',
      body: 'hello',
      header: 'fw',
    });
    await assert.rejects(
      c.tunnel.request({ providerId: 'prv_nobody', method: 'GET', path: '/' }),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_TUNNEL_NO_ROUTE',
    );

    // Node a dies: its directory entries go (as its lease would expire), the agent keeps its session to b.
    await a.close();
    directory.removeNode('node-a');
    for (let i = 0; i < 10; i++) {
      const response = await c.tunnel.request({
        providerId: 'prv_c',
        service: 'app@1.0.0',
        method: 'GET',
        path: `/after${i}`,
      });
      assert.equal(response.nodeId, 'node-b');
      await text(response);
    }
    const direct = await b.tunnel.request({ providerId: 'prv_c', method: 'GET', path: '/b' });
    assert.equal(direct.forwarded, false);
    await text(direct);
  });
});

describe('tunnel: a forwarded call whose route is lost before it is sent', () => {
  const platforms: TestPlatform[] = [];
  const agents: TunnelClient[] = [];
  after(async () => {
    await Promise.all(agents.map((a) => a.close(200)));
    await Promise.all(platforms.map((p) => p.close().catch(() => undefined)));
  });

  it('waits for the agent to come back on another node instead of failing, and fails with a coded 503 when it never does', async () => {
    const directory = createLocalDirectory();
    // Node a's withdrawals never reach the directory: the other nodes still see its
    // sessions while it goes down, as they do in a cluster until its lease expires.
    const lagging: SessionDirectory = { ...directory, unpublish: async () => undefined };
    const secret = 'cluster-secret-for-tests-only-0123456789';
    const a = await startPlatform({ nodeId: 'node-a', cluster: { directory: lagging, secret } });
    const c = await startPlatform({ nodeId: 'node-c', cluster: { directory, secret } });
    platforms.push(a, c);
    for (const p of [a, c]) await directory.registerNode(p.tunnel.nodeId, p.url);
    const first = await startAgent([a.url], echoHandler('first'), {
      providerId: 'prv_move',
      agentId: 'agtmove1',
      sessions: 1,
    });
    agents.push(first);
    await waitFor(() => directory.lookup('prv_move').length === 1, { what: 'the session on node a published' });

    // Node a goes down (a rolling restart): its session is gone, but c still sees it there.
    await a.close();
    assert.equal(directory.lookup('prv_move')[0]?.nodeId, 'node-a');
    assert.equal(c.tunnel.table.candidates('prv_move', 'app@1.0.0').length, 0);
    const call = c.tunnel.request({
      providerId: 'prv_move',
      service: 'app@1.0.0',
      method: 'GET',
      path: '/moved',
      deadlineMs: 20_000,
    });
    // The agent's session re-forms on node c only after the call was made.
    const second = await startAgent([c.url], echoHandler('second'), {
      providerId: 'prv_move',
      agentId: 'agtmove2',
      sessions: 1,
      waitSessions: 0,
    });
    agents.push(second);
    const response = await call;
    assert.equal(response.status, 200);
    assert.equal(response.nodeId, 'node-c');
    assert.equal((JSON.parse(await text(response)) as { agent: string }).agent, 'second');
    await waitRoutable(c.tunnel, 1, 'prv_move');

    // A route that never re-forms: a coded 503 within the deadline, nothing hangs.
    await second.close(200);
    await waitFor(() => c.tunnel.table.candidates('prv_move', 'app@1.0.0').length === 0, {
      what: 'the session on c gone',
    });
    await assert.rejects(
      c.tunnel.request({
        providerId: 'prv_move',
        service: 'app@1.0.0',
        method: 'GET',
        path: '/never',
        deadlineMs: 1500,
      }),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_TUNNEL_UNAVAILABLE' && e.status === 503,
    );
  });
});
