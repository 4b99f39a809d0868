import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { createLocalDirectory, type TunnelClient } from '@insitu/tunnel';
import { echoHandler, startAgent, startPlatform, text, type TestPlatform } from './helpers.js';

/**
 * A TCP relay to `port` that can be cut like a network link: `cut()` drops every byte in both
 * directions from then on and closes nothing (no FIN, no RST), as a node whose link went down.
 */
async function startLink(port: number): Promise<{ url: string; cut(): void; close(): Promise<void> }> {
  let down = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    inbound.on('data', (chunk: Buffer) => {
      if (!down) outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => {
      if (!down) inbound.write(chunk);
    });
    inbound.on('end', () => {
      if (!down) outbound.end();
    });
    outbound.on('end', () => {
      if (!down) inbound.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => {
      down = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// Regression (3+2 bed, partition-mgmt): calls a node forwarded to a peer whose link had just gone
// down waited out the whole call deadline, because a peer cut off sends no FIN and its pooled
// HTTP/2 connection looked open. Now an unanswered PING destroys that connection and the call goes
// to the next node that holds a session; a connection to the cut-off node is not waited for longer
// than the dial timeout.
describe('tunnel: a request forwarded to a peer that is cut off from the network', () => {
  const platforms: TestPlatform[] = [];
  const agents: TunnelClient[] = [];
  let link: Awaited<ReturnType<typeof startLink>> | undefined;
  after(async () => {
    await Promise.all(agents.map((agent) => agent.close(200)));
    await Promise.all(platforms.map((p) => p.close().catch(() => undefined)));
    await link?.close();
  });

  it('goes to the next node with a session instead of waiting out its deadline', async () => {
    const directory = createLocalDirectory();
    const secret = 'cluster-secret-for-tests-only-0123456789';
    const a = await startPlatform({ nodeId: 'node-a', cluster: { directory, secret } });
    const b = await startPlatform({ nodeId: 'node-b', cluster: { directory, secret } });
    const c = await startPlatform({ nodeId: 'node-c', cluster: { directory, secret } });
    platforms.push(a, b, c);
    link = await startLink(a.port);
    // Peers reach node-a through the link that will be cut.
    await directory.registerNode('node-a', link.url);
    await directory.registerNode('node-b', b.url);
    await directory.registerNode('node-c', c.url);
    agents.push(
      await startAgent([a.url], echoHandler('on-a'), { providerId: 'prv_cut' }),
      await startAgent([b.url], echoHandler('on-b'), { providerId: 'prv_cut' }),
    );
    await waitFor(() => directory.lookup('prv_cut').length === 2, { what: 'both sessions published' });
    const call = (path: string) => c.tunnel.request({ providerId: 'prv_cut', method: 'GET', path, deadlineMs: 30_000 });

    // A pooled connection from c to a exists (as between running nodes).
    await waitFor(
      async () => {
        const response = await call('/warm');
        await text(response);
        return response.nodeId === 'node-a';
      },
      { timeoutMs: 20_000, what: 'a call forwarded through node-a' },
    );

    link.cut();
    // Node a's sessions are still in the directory (its lease has not expired yet): each call
    // picks a or b first at random. Every one must be answered, by b.
    const answeredBy: string[] = [];
    for (let i = 0; i < 8; i++) {
      const response = await call(`/after-cut-${i}`);
      const body = JSON.parse(await text(response)) as { agent: string };
      answeredBy.push(`${response.nodeId}/${body.agent}`);
    }
    assert.deepEqual(answeredBy, Array<string>(8).fill('node-b/on-b'));
  });
});
