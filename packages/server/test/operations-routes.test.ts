// The Operations routes the console's Operations page reads: the operator's nodes and
// services, alerts and silences, all from what the operator publishes in coord. Only platform
// administrators may read or change them; bad input is coded; silence changes are audited.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, expectStatus, makeOrg, startApi } from './fixtures.js';

const target = databaseTargets()[0];

describe('operations routes: operator view, alerts and silences (platform admins)', { skip: !target }, () => {
  let api: Api;
  let acme: OrgWorld;

  before(async () => {
    if (!target) return;
    api = await startApi(target);
    acme = await makeOrg(api, 'acme');
    const coord = api.app.coordinator;
    const now = Date.now();
    // What two operator nodes publish (packages/operator/src/records.ts); node-3 joined once and is gone.
    await coord.put('operator/members/node-1', '{}');
    await coord.put('operator/members/node-3', '{}');
    await coord.put(
      'operator/nodes/node-1',
      JSON.stringify({
        node: 'node-1',
        pid: 4242,
        version: '0.1.0',
        startedAt: new Date(now - 60_000).toISOString(),
        heartbeatAt: new Date(now - 1_000).toISOString(),
        capable: ['server', 'dbmanager'],
        services: {
          server: {
            state: 'ready',
            pid: 4300,
            since: new Date(now - 50_000).toISOString(),
            restarts: 2,
            restartsInWindow: 1,
            readiness: { ok: true, at: new Date(now).toISOString(), ms: 3, failures: 0 },
            lastExit: { at: new Date(now - 51_000).toISOString(), code: 1, signal: null, reason: 'exited with code 1' },
          },
          dbmanager: {
            state: 'failed',
            since: new Date(now - 10_000).toISOString(),
            restarts: 5,
            restartsInWindow: 5,
            failed: { at: new Date(now - 10_000).toISOString(), reason: 'restart budget spent' },
          },
        },
      }),
    );
    await coord.put(
      'operator/alerts',
      JSON.stringify({
        leader: 'node-1',
        at: new Date(now).toISOString(),
        active: [
          {
            item: {
              key: 'insitu/service-failed/dbmanager@node-1',
              cluster: 'insitu',
              condition: 'service-failed',
              subject: 'dbmanager@node-1',
              severity: 'critical',
              state: 'firing',
              summary: 'dbmanager failed on node-1',
              details: { node: 'node-1', service: 'dbmanager' },
              firstSeenAt: new Date(now - 9_000).toISOString(),
              lastSeenAt: new Date(now).toISOString(),
              count: 3,
            },
            notifiedAt: now - 8_000,
          },
        ],
      }),
    );
    await api.store.events.add({
      orgId: null,
      kind: 'operator.alert-resolved-sent',
      subject: 'node-lost',
      message: '[RESOLVED] node-2 lost → webhook',
    });
  });
  after(async () => {
    await api?.close();
  });

  it('shows nodes (up and lost), their services with health and restarts, and nothing to anyone but platform admins', async () => {
    const view = expectStatus(await api.call('GET', '/api/v1/cluster/operator', { token: api.adminToken }), 200);
    assert.equal(view.leader, null, 'no operator campaigns here');
    assert.deepEqual(
      view.nodes.map((n: { node: string; state: string }) => `${n.node}:${n.state}`),
      ['node-1:up', 'node-3:lost'],
    );
    type Row = {
      name: string;
      state: string;
      restarts: number;
      lastExit?: { reason: string };
      failed?: { reason: string };
    };
    const services = view.nodes[0].services as Row[];
    const server = services.find((s) => s.name === 'server');
    const dbmanager = services.find((s) => s.name === 'dbmanager');
    assert.ok(server && dbmanager);
    assert.equal(server.state, 'ready');
    assert.equal(server.restarts, 2);
    assert.equal(server.lastExit?.reason, 'exited with code 1');
    assert.equal(dbmanager.state, 'failed');
    assert.equal(dbmanager.failed?.reason, 'restart budget spent');
    assert.ok(view.nodes[0].leaseAgeMs >= 1_000);

    assert.equal((await api.call('GET', '/api/v1/cluster/operator')).statusCode, 401);
    for (const role of ['admin', 'provider', 'developer', 'user', 'agent'] as const) {
      for (const url of ['/api/v1/cluster/operator', '/api/v1/alerts', '/api/v1/silences']) {
        const answer = await api.call('GET', url, { token: acme.tokens[role] });
        assert.equal(answer.statusCode, 403, `${role} ${url}: ${answer.body}`);
        assert.equal(JSON.parse(answer.body).error.code, 'INSITU_FORBIDDEN');
      }
    }
  });

  it('lists open alerts with their mute state and the latest resolutions', async () => {
    const alerts = expectStatus(await api.call('GET', '/api/v1/alerts', { token: api.adminToken }), 200);
    assert.equal(alerts.leader, 'node-1');
    assert.deepEqual(
      alerts.open.map((a: { condition: string; subject: string; count: number }) => [a.condition, a.subject, a.count]),
      [['service-failed', 'dbmanager@node-1', 3]],
    );
    assert.deepEqual(
      alerts.resolved.map((r: { condition: string }) => r.condition),
      ['node-lost'],
    );
  });

  it('creates, lists and expires silences, records who did it, and refuses bad input with coded errors', async () => {
    const body = { matchers: [{ label: 'service', value: 'db*' }], durationMinutes: 30, comment: 'maintenance' };
    for (const role of ['admin', 'provider', 'developer', 'user'] as const) {
      const answer = await api.call('POST', '/api/v1/silences', { token: acme.tokens[role], body });
      assert.equal(answer.statusCode, 403, role);
    }
    assert.equal((await api.call('POST', '/api/v1/silences', { body })).statusCode, 401);
    for (const bad of [
      { ...body, matchers: [] },
      { ...body, matchers: [{ label: 'colour', value: 'red' }] },
      { ...body, matchers: [{ label: 'node', value: 'node 1; rm' }] },
      { ...body, durationMinutes: 0 },
      { ...body, durationMinutes: 60 * 24 * 31 },
      { ...body, extra: true },
    ]) {
      const answer = await api.call('POST', '/api/v1/silences', { token: api.adminToken, body: bad });
      assert.equal(answer.statusCode, 400, JSON.stringify(bad));
      assert.equal(JSON.parse(answer.body).error.code, 'INSITU_VALIDATION');
    }

    const before = Date.now();
    const silence = expectStatus(await api.call('POST', '/api/v1/silences', { token: api.adminToken, body }), 201);
    assert.match(silence.id, /^sil_/);
    const minutes = (Date.parse(silence.endsAt) - before) / 60_000;
    assert.ok(minutes > 29 && minutes <= 30.1, `ends in ${minutes} min`);
    // Stored where the operator's leader reads silences.
    const stored = JSON.parse((await api.app.coordinator.get(`operator/silences/${silence.id}`)) ?? '{}');
    assert.deepEqual(stored.matchers, [{ label: 'service', value: 'db*' }]);
    const listed = expectStatus(await api.call('GET', '/api/v1/silences', { token: api.adminToken }), 200);
    assert.deepEqual(
      listed.items.map((s: { id: string }) => s.id),
      [silence.id],
    );

    assert.equal(
      (await api.call('DELETE', `/api/v1/silences/${silence.id}`, { token: acme.tokens.admin })).statusCode,
      403,
    );
    expectStatus(await api.call('DELETE', `/api/v1/silences/${silence.id}`, { token: api.adminToken }), 204);
    const after = expectStatus(await api.call('GET', '/api/v1/silences', { token: api.adminToken }), 200);
    assert.deepEqual(after.items, []);
    const again = await api.call('DELETE', `/api/v1/silences/${silence.id}`, { token: api.adminToken });
    assert.equal(again.statusCode, 404);
    assert.equal(JSON.parse(again.body).error.code, 'INSITU_NOT_FOUND');
    assert.equal(
      (await api.call('DELETE', '/api/v1/silences/not-a-silence', { token: api.adminToken })).statusCode,
      400,
    );

    const me = expectStatus(await api.call('GET', '/api/v1/users/me', { token: api.adminToken }), 200);
    const events = expectStatus(
      await api.call('GET', `/api/v1/events?subject=${silence.id}`, { token: api.adminToken }),
      200,
    );
    assert.deepEqual(events.items.map((e: { kind: string }) => e.kind).sort(), [
      'operator.silence-added',
      'operator.silence-expired',
    ]);
    for (const e of events.items as { message: string }[]) assert.ok(e.message.includes(me.user.id), e.message);
    // The same actions as operator events in coord, under the same ids (the leader's copy adds nothing twice).
    const coordEvents = [...(await api.app.coordinator.list('operator/events/')).values()].map(
      (v) => JSON.parse(v) as { type: string; subject: string },
    );
    assert.deepEqual(
      coordEvents
        .filter((e) => e.subject === silence.id)
        .map((e) => e.type)
        .sort(),
      ['silence-added', 'silence-expired'],
    );
  });
});
