import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, datasetBody, expectStatus, makeOrg, startApi } from './fixtures.js';

for (const target of databaseTargets()) {
  describe(`dataset output policies on the platform (${target.dialect})`, () => {
    let api: Api;
    let acme: OrgWorld;
    let globex: OrgWorld;

    before(async () => {
      api = await startApi(target);
      acme = await makeOrg(api, 'acme');
      globex = await makeOrg(api, 'globex');
    });
    after(async () => {
      await api?.close();
    });

    const url = (id: string) => `/api/v1/datasets/${id}/policy`;

    it("shows the agent's policy, the platform's, and the stricter of both as the effective one", async () => {
      // The agent reports its config's policy with the metadata.
      expectStatus(
        await api.call('PUT', `/api/v1/providers/${acme.providerId}/datasets/public_sales`, {
          token: acme.tokens.agent,
          body: datasetBody({ policy: { aggregatesOnly: true, minGroupSize: 10, neverLeave: ['amount'] } }),
        }),
        200,
      );
      const set = expectStatus(
        await api.call('PUT', url(acme.publicDatasetId), {
          token: acme.tokens.admin,
          // Looser where it says less (aggregatesOnly false, k 3), tighter where it says more.
          body: { aggregatesOnly: false, minGroupSize: 3, neverLeave: ['id'], maxRowsPerAnswer: 100 },
        }),
        200,
      );
      assert.deepEqual(set.agentPolicy, { aggregatesOnly: true, minGroupSize: 10, neverLeave: ['amount'] });
      assert.deepEqual(set.platformPolicy, {
        aggregatesOnly: false,
        minGroupSize: 3,
        neverLeave: ['id'],
        maxRowsPerAnswer: 100,
      });
      assert.deepEqual(set.policy, {
        aggregatesOnly: true,
        minGroupSize: 10,
        neverLeave: ['amount', 'id'],
        maxRowsPerAnswer: 100,
      });
      // Anyone who sees the dataset sees its policy; a later metadata sync keeps the platform's.
      expectStatus(
        await api.call('PUT', `/api/v1/providers/${acme.providerId}/datasets/public_sales`, {
          token: acme.tokens.agent,
          body: datasetBody({ policy: { aggregatesOnly: true } }),
        }),
        200,
      );
      const seen = expectStatus(
        await api.call('GET', `/api/v1/datasets/${acme.publicDatasetId}`, { token: globex.tokens.user }),
        200,
      );
      assert.deepEqual(seen.policy, {
        aggregatesOnly: true,
        minGroupSize: 3,
        neverLeave: ['id'],
        maxRowsPerAnswer: 100,
      });
      const listed = expectStatus(
        await api.call('GET', `/api/v1/datasets?provider=${acme.providerId}`, { token: globex.tokens.user }),
        200,
      );
      assert.deepEqual(
        listed.items.find((d: { id: string }) => d.id === acme.publicDatasetId).platformPolicy,
        seen.platformPolicy,
      );
    });

    it("sends the provider's agents the platform policies with the desired state, and {} removes one", async () => {
      expectStatus(
        await api.call('PUT', url(acme.privateDatasetId), { token: acme.tokens.admin, body: { minGroupSize: 4 } }),
        200,
      );
      const desired = expectStatus(
        await api.call('GET', '/api/v1/agents/self/desired', { token: acme.tokens.agent }),
        200,
      );
      assert.deepEqual(
        desired.policies.find((p: { dataset: string }) => p.dataset === 'private_payroll'),
        { dataset: 'private_payroll', policy: { minGroupSize: 4 } },
      );
      const other = expectStatus(
        await api.call('GET', '/api/v1/agents/self/desired', { token: globex.tokens.agent }),
        200,
      );
      assert.deepEqual(other.policies, [], "another provider's agents get none of them");
      const cleared = expectStatus(
        await api.call('PUT', url(acme.privateDatasetId), { token: acme.tokens.admin, body: {} }),
        200,
      );
      assert.deepEqual(cleared.platformPolicy, {});
      const after = expectStatus(
        await api.call('GET', '/api/v1/agents/self/desired', { token: acme.tokens.agent }),
        200,
      );
      assert.ok(!after.policies.some((p: { dataset: string }) => p.dataset === 'private_payroll'));
    });

    it('validates the policy and refuses everyone but the provider organisation administrators', async () => {
      for (const body of [
        { minGroupSize: 1 },
        { minGroupSize: 2.5 },
        { maxRowsPerAnswer: 0 },
        { neverLeave: ['a', 'a'] },
        { noise: { epsilonPerQuery: 0, budget: 1 } },
        { noise: { epsilonPerQuery: 1 } },
        { aggregatesOnly: 'yes' },
        { minGroupSze: 5 },
      ]) {
        const answer = await api.call('PUT', url(acme.publicDatasetId), { token: acme.tokens.admin, body });
        assert.equal(answer.statusCode, 400, JSON.stringify(body));
        assert.equal(JSON.parse(answer.body).error.code, 'INSITU_VALIDATION');
      }
      for (const token of [acme.tokens.provider, acme.tokens.developer, globex.tokens.admin, acme.tokens.agent]) {
        const answer = await api.call('PUT', url(acme.publicDatasetId), { token, body: { minGroupSize: 50 } });
        assert.equal(answer.statusCode, 403);
      }
      const missing = await api.call('PUT', url('ds_00000000000000000000000000'), {
        token: acme.tokens.admin,
        body: {},
      });
      assert.equal(missing.statusCode, 404);
    });
  });
}
