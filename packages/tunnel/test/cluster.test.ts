import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InsituError, waitFor } from '@insitu/core';
import { createLocalDirectory, type TunnelClient } from '@insitu/tunnel';
import { echoHandler, startAgent, startPlatform, text, type TestPlatform } from './helpers.js';

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
