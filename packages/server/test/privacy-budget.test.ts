import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, enrolAgent, makeOrg, startApi } from './fixtures.js';

/*
 * The privacy budget of noised answers is the provider's, summed at the platform over all
 * its agents: two agents of one provider cannot spend twice the budget between them.
 */
for (const target of databaseTargets()) {
  describe(`provider-wide privacy budget on ${target.dialect}`, () => {
    let api: Api;
    let acme: OrgWorld;
    let other: OrgWorld;
    let secondAgent = '';

    const charge = (token: string, body: Record<string, unknown>) =>
      api.call('POST', '/api/v1/agents/self/privacy-budget/charge', { token, body });

    before(async () => {
      api = await startApi(target);
      acme = await makeOrg(api, 'acme');
      other = await makeOrg(api, 'otherco');
      secondAgent = (await enrolAgent(api, acme.tokens.provider, acme.providerId, 'acme-agent-2')).credential;
    });
    after(async () => {
      await api.close();
    });

    it("sums both agents' charges against one budget, and refuses without charging", async () => {
      const spend = { key: 'dep_a', dataset: 'sales', budget: 2 };
      assert.equal((await charge(acme.tokens.agent, { ...spend, epsilon: 1.5 })).statusCode, 204);
      const refused = await charge(secondAgent, { ...spend, epsilon: 1 });
      assert.equal(refused.statusCode, 403, 'the second agent sees what the first one spent');
      assert.equal(JSON.parse(refused.body).error.code, 'INSITU_POLICY_BUDGET_SPENT');
      assert.match(JSON.parse(refused.body).error.message, /1\.5 of 2/);
      assert.equal(
        (await charge(secondAgent, { ...spend, epsilon: 0.5 })).statusCode,
        204,
        'the refusal charged nothing',
      );
      assert.equal((await charge(acme.tokens.agent, { ...spend, epsilon: 0.1 })).statusCode, 403);
      // Another dataset, another key, another provider: other budgets.
      assert.equal((await charge(secondAgent, { ...spend, dataset: 'orders', epsilon: 1 })).statusCode, 204);
      assert.equal((await charge(secondAgent, { ...spend, key: 'dep_b', epsilon: 1 })).statusCode, 204);
      assert.equal((await charge(other.tokens.agent, { ...spend, epsilon: 2 })).statusCode, 204);
    });

    it('concurrent charges from two agents add up: exactly budget / epsilon of them fit', async () => {
      const spend = { key: 'job-version:abc', dataset: 'sales', budget: 1, epsilon: 0.1 };
      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, i) => charge(i % 2 === 0 ? acme.tokens.agent : secondAgent, spend)),
      );
      const statuses = answers.map((a) => a.statusCode);
      assert.equal(statuses.filter((s) => s === 204).length, 10, `statuses: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 403).length, 14);
    });

    it('validates the charge and needs an agent credential', async () => {
      assert.equal(
        (await charge(acme.tokens.agent, { key: 'k', dataset: 'd', epsilon: 0, budget: 1 })).statusCode,
        400,
      );
      assert.equal((await charge(acme.tokens.agent, { key: 'k', dataset: 'd', epsilon: 1 })).statusCode, 400);
      assert.equal(
        (await charge(acme.tokens.provider, { key: 'k', dataset: 'd', epsilon: 1, budget: 1 })).statusCode,
        403,
        'a user cannot spend a budget',
      );
    });
  });
}
