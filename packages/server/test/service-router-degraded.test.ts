// The gateway routes to a deployment an agent reports `degraded` (some instances down, at
// least one ready), and not to one with no ready instance; the report goes through the
// agent API and the reconciler as an agent sends it, the routes are read from the store.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_AUTH_HEADER, signClusterRequest } from '@insitu/core';
import { databaseTargets } from '@insitu/test-helpers';
import { ServiceRouter } from '../src/gateway/service-router.js';
import { type Api, type OrgWorld, expectStatus, makeOrg, startApi } from './fixtures.js';

const SECRET = 'operator-cluster-secret-0123456789abcdef';

for (const target of databaseTargets()) {
  describe(`service routing of degraded deployments on ${target.dialect}`, () => {
    let api: Api;
    let acme: OrgWorld;
    let appId = '';
    let deploymentId = '';
    let versionId = '';

    const report = async (state: string, ready: number, reason?: string): Promise<void> => {
      expectStatus(
        await api.call('PUT', '/api/v1/agents/self/status', {
          token: acme.tokens.agent,
          body: { deployments: [{ id: deploymentId, state, ready, desired: 2, ...(reason ? { reason } : {}) }] },
        }),
        204,
      );
    };
    /** What the gateway would route to now: the versions that run, with where. */
    const routed = async () => {
      const router = new ServiceRouter(api.store, { ttlMs: 0, staleAfterMs: 60_000, now: Date.now });
      return (await router.routes(appId)).running.map((v) => [v.versionId, v.targets.map((t) => t.deploymentId)]);
    };
    const events = async (): Promise<string[]> => {
      const page = expectStatus(
        await api.call('GET', `/api/v1/events?subject=${deploymentId}`, { token: acme.tokens.admin }),
        200,
      ) as { items: Array<{ kind: string }> };
      return page.items.map((e) => e.kind);
    };

    before(async () => {
      api = await startApi(target, { cluster: { secret: SECRET } });
      acme = await makeOrg(api, 'acme');
      const createdBy = acme.userIds.developer;
      appId = (await api.store.apps.create({ orgId: acme.orgId, name: 'stats', description: '', createdBy })).id;
      const { version } = await api.store.apps.createVersion({
        appId,
        version: '1.0.0',
        major: 1,
        digest: 'a'.repeat(64),
        size: 1,
        manifest: { name: 'stats', version: '1.0.0', runtime: 'node', entry: 'main.js', datasets: [], endpoints: [] },
        files: [],
        submittedBy: createdBy,
        datasets: [],
      });
      versionId = version.id;
      deploymentId = (
        await api.store.deployments.create({ appId, versionId, providerId: acme.providerId, replicas: 2, createdBy })
      ).id;
    });
    after(async () => {
      await api?.close();
    });

    it('routes to a degraded deployment, and not once no instance is ready', async () => {
      await report('running', 2);
      assert.deepEqual(await routed(), [[versionId, [deploymentId]]]);

      // One instance of two was killed: the other still serves, so the gateway still sends calls there.
      await report(
        'degraded',
        1,
        '1 of 2 instances serve; instance i0 backoff after: killed by SIGKILL [INSITU_NOT_READY]',
      );
      assert.deepEqual(await routed(), [[versionId, [deploymentId]]]);
      const [status] = expectStatus(
        await api.call('GET', `/api/v1/deployments/${deploymentId}`, { token: acme.tokens.provider }),
        200,
      ).agents;
      assert.deepEqual([status.state, status.ready, status.desired], ['degraded', 1, 2]);
      // Losing instances while serving is worth an event; the return to running too.
      assert.deepEqual(await events(), ['deployment.degraded']);

      await report('crash-looping', 0, 'instance i0 keeps crashing: exited with code 3 [INSITU_APP_UNAVAILABLE]');
      assert.deepEqual(await routed(), []);
      // A degraded report that says 0 are ready serves nothing either.
      await report('degraded', 0);
      assert.deepEqual(await routed(), []);

      await report('running', 2);
      assert.deepEqual(await routed(), [[versionId, [deploymentId]]]);
      assert.deepEqual((await events()).sort(), [
        'deployment.crash-looping',
        'deployment.degraded',
        'deployment.running',
      ]);
    });

    it('records a crash loop of one instance of a degraded deployment once, not a start that is half way', async () => {
      await report('starting', 0);
      const before = (await events()).length;
      // The first instance of a start is ready, the second not yet: no event.
      await report('degraded', 1, '1 of 2 instances serve; instance i1 starting [INSITU_NOT_READY]');
      assert.equal((await events()).length, before);
      // The second keeps crashing while the first serves: one event, not one per report.
      const looping = 'instance i1 keeps crashing: exited with code 3; 1 of 2 instances serve [INSITU_APP_UNAVAILABLE]';
      await report('degraded', 1, looping);
      await report('degraded', 1, looping);
      const all = await events();
      assert.deepEqual(all.slice(0, all.length - before), ['deployment.degraded']);
      assert.deepEqual(await routed(), [[versionId, [deploymentId]]]);
    });

    it('prefers an older version that runs complete to a newer one that only serves degraded', async () => {
      await report('running', 2);
      const createdBy = acme.userIds.developer;
      const { version: next } = await api.store.apps.createVersion({
        appId,
        version: '1.1.0',
        major: 1,
        digest: 'b'.repeat(64),
        size: 1,
        manifest: { name: 'stats', version: '1.1.0', runtime: 'node', entry: 'main.js', datasets: [], endpoints: [] },
        files: [],
        submittedBy: createdBy,
        datasets: [],
      });
      const upgrade = (
        await api.store.deployments.create({
          appId,
          versionId: next.id,
          providerId: acme.providerId,
          replicas: 2,
          createdBy,
        })
      ).id;
      const both = async (upgraded: { state: string; ready: number }): Promise<void> => {
        expectStatus(
          await api.call('PUT', '/api/v1/agents/self/status', {
            token: acme.tokens.agent,
            body: {
              deployments: [
                { id: deploymentId, state: 'running', ready: 2, desired: 2 },
                { id: upgrade, ...upgraded, desired: 2 },
              ],
            },
          }),
          204,
        );
      };
      const picked = async () => {
        const router = new ServiceRouter(api.store, { ttlMs: 0, staleAfterMs: 60_000, now: Date.now });
        return ServiceRouter.pick(await router.routes(appId), 1)?.version;
      };
      // The rolling upgrade's first instance is ready: the old version, whole, keeps the calls.
      await both({ state: 'degraded', ready: 1 });
      assert.equal(await picked(), '1.0.0');
      await both({ state: 'running', ready: 2 });
      assert.equal(await picked(), '1.1.0');
      await api.store.deployments.update(upgrade, { state: 'removed' });
    });

    it("lists a degraded deployment's crash-looping instance for the operator's app-crash-looping alert", async () => {
      const crashLooping = async (): Promise<string[]> => {
        const probe = expectStatus(
          await api.call('POST', '/api/v1/cluster/probe', {
            body: {},
            headers: {
              [CLUSTER_AUTH_HEADER]: signClusterRequest(SECRET, 'node1', 'POST', '/api/v1/cluster/probe'),
            },
          }),
          200,
        ) as { crashLooping: Array<{ deploymentId: string }> };
        return probe.crashLooping.map((c) => c.deploymentId);
      };
      await report(
        'degraded',
        1,
        '1 of 2 instances serve; instance i1 backoff after: killed by SIGKILL [INSITU_NOT_READY]',
      );
      assert.deepEqual(await crashLooping(), [], 'an instance in back-off is no crash loop');
      await report(
        'degraded',
        1,
        'instance i1 keeps crashing: exited with code 3; 1 of 2 instances serve [INSITU_APP_UNAVAILABLE]',
      );
      assert.deepEqual(await crashLooping(), [deploymentId]);
      await report('crash-looping', 0, 'instance i1 keeps crashing: exited with code 3 [INSITU_APP_UNAVAILABLE]');
      assert.deepEqual(await crashLooping(), [deploymentId]);
      await report('running', 2);
      assert.deepEqual(await crashLooping(), []);
    });
  });
}
