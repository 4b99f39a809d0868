import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_AUTH_HEADER, signClusterRequest } from '@insitu/core';
import { databaseTargets } from '@insitu/test-helpers';
import { expectStatus, makeOrg, startApi, type Api } from './fixtures.js';

const SECRET = 'operator-cluster-secret-0123456789abcdef';
const signed = (path: string, secret = SECRET) => ({
  [CLUSTER_AUTH_HEADER]: signClusterRequest(secret, 'node1', 'POST', path),
});

for (const target of databaseTargets()) {
  describe(`the operator's cluster endpoints (${target.dialect})`, () => {
    let api: Api;
    before(async () => {
      api = await startApi(target, { cluster: { secret: SECRET } });
    });
    after(async () => {
      await api?.close();
    });

    it('refuse unsigned, wrongly signed and replayed-for-another-path requests', async () => {
      expectStatus(await api.call('POST', '/api/v1/cluster/probe', { body: {} }), 401);
      expectStatus(
        await api.call('POST', '/api/v1/cluster/probe', {
          body: {},
          headers: signed('/api/v1/cluster/probe', 'another-secret-0123456789abcdef-xx'),
        }),
        401,
      );
      expectStatus(
        await api.call('POST', '/api/v1/cluster/probe', { body: {}, headers: signed('/api/v1/cluster/events') }),
        401,
      );
      expectStatus(await api.call('POST', '/api/v1/cluster/probe', { body: {}, token: api.adminToken }), 401);
    });

    it('the deep probe writes and reads the database, leaves nothing behind, and lists the agents', async () => {
      const world = await makeOrg(api, 'probe-org');
      const before = expectStatus(await api.call('GET', '/api/v1/events?limit=500', { token: api.adminToken }), 200)
        .items.length as number;
      const answer = expectStatus(
        await api.call('POST', '/api/v1/cluster/probe', { body: {}, headers: signed('/api/v1/cluster/probe') }),
        200,
      );
      assert.equal(answer.database.ok, true);
      assert.deepEqual(answer.sessions, [], 'no agent session on this node');
      assert.ok(
        answer.agents.some((a: { id: string }) => a.id === world.agentId),
        'enrolled agents are listed (for agent-offline)',
      );
      const after = expectStatus(
        await api.call('GET', '/api/v1/events?limit=500', { token: api.adminToken }),
        200,
      ).items;
      assert.equal(after.length, before, 'the probe row is gone');
      assert.ok(!after.some((e: { kind: string }) => e.kind === 'platform.probe'));
    });

    it("copies the operator's events once (ids kept) and filters them by kind prefix", async () => {
      const events = [
        {
          id: 'evt_01kbq0000000000000000000a1',
          at: '2026-12-02T10:00:00.000Z',
          node: 'node2',
          type: 'restart',
          service: 'server',
          reason: 'server restarted after: exited with code 1',
        },
        {
          id: 'evt_01kbq0000000000000000000a2',
          at: '2026-12-02T10:00:01.000Z',
          node: 'node1',
          type: 'moved',
          service: 'dbmanager',
          reason: 'moved dbmanager from node2 to node3: node2 lost',
        },
      ];
      const first = expectStatus(
        await api.call('POST', '/api/v1/cluster/events', {
          body: { events },
          headers: signed('/api/v1/cluster/events'),
        }),
        200,
      );
      assert.equal(first.added, 2);
      const again = expectStatus(
        await api.call('POST', '/api/v1/cluster/events', {
          body: { events },
          headers: signed('/api/v1/cluster/events'),
        }),
        200,
      );
      assert.equal(again.added, 0, 'a repeated copy adds nothing');
      const listed = expectStatus(
        await api.call('GET', '/api/v1/events?kind=operator.', { token: api.adminToken }),
        200,
      ).items;
      assert.deepEqual(
        listed.map((e: { kind: string }) => e.kind),
        ['operator.moved', 'operator.restart'],
      );
      assert.equal(listed[0].message, 'moved dbmanager from node2 to node3: node2 lost');
      assert.equal(listed[0].subject, 'dbmanager@node1');
      const moved = expectStatus(
        await api.call('GET', '/api/v1/events?kind=operator.moved', { token: api.adminToken }),
        200,
      ).items;
      assert.equal(moved.length, 1);
      expectStatus(await api.call('GET', '/api/v1/events?kind=Operator%25', { token: api.adminToken }), 400);
      const bad = await api.call('POST', '/api/v1/cluster/events', {
        body: { events: [{ ...events[0], id: 'not-an-id' }] },
        headers: signed('/api/v1/cluster/events'),
      });
      expectStatus(bad, 400);
    });
  });
}
