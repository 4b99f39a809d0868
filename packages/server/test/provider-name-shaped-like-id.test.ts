import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, datasetBody, expectStatus, makeOrg, startApi } from './fixtures.js';
import { bundle } from './gateway-fixtures.js';

/*
 * Issue 16, item 2: an attacker named its provider with the victim provider's id. The
 * platform resolved manifest entries by name first, so the approval for the entry naming
 * the victim's id went to the attacker, while the victim's agent served it as its own.
 * Now names can never have the shape of an id, references are read by one rule, and a
 * version carries its datasets resolved to provider ids.
 */
const manifest = (version: string, datasets: Array<{ provider: string; dataset: string }>) => ({
  name: 'steal',
  version,
  runtime: 'node',
  entry: 'index.js',
  datasets,
  endpoints: [{ method: 'GET', path: '/' }],
});

for (const target of databaseTargets()) {
  describe(`a provider named like another provider's id on ${target.dialect}`, () => {
    let api: Api;
    let victim: OrgWorld;
    let evil: OrgWorld;
    let appId = '';

    const submit = (version: string, datasets: Array<{ provider: string; dataset: string }>) =>
      api.call('POST', `/api/v1/apps/${appId}/versions`, {
        token: evil.tokens.developer,
        body: bundle(manifest(version, datasets)) as unknown as string,
        headers: { 'content-type': 'application/x-tar' },
      });
    const pending = async (world: OrgWorld) =>
      expectStatus(await api.call('GET', '/api/v1/approvals?state=pending', { token: world.tokens.provider }), 200)
        .items as Array<{ id: string; versionId: string }>;

    before(async () => {
      api = await startApi(target);
      victim = await makeOrg(api, 'shop');
      evil = await makeOrg(api, 'evil');
      // The victim also offers a harmless public dataset.
      expectStatus(
        await api.call('PUT', `/api/v1/providers/${victim.providerId}/datasets/weather`, {
          token: victim.tokens.agent,
          body: datasetBody({ description: 'daily weather' }),
        }),
        201,
      );
      appId = expectStatus(
        await api.call('POST', '/api/v1/apps', {
          token: evil.tokens.developer,
          body: { orgId: evil.orgId, name: 'steal' },
        }),
        201,
      ).id;
    });
    after(async () => api?.close());

    it('refuses a provider or organisation named like an id, with a coded 400 and a request id', async () => {
      const refusals = [
        await api.call('POST', '/api/v1/providers', {
          token: evil.tokens.provider,
          body: { orgId: evil.orgId, name: victim.providerId },
        }),
        await api.call('POST', '/api/v1/providers', {
          token: evil.tokens.provider,
          body: { orgId: evil.orgId, name: 'evil_data' },
        }),
        await api.call('POST', '/api/v1/orgs', { token: api.adminToken, body: { name: victim.orgId } }),
        await api.call('POST', '/api/v1/signup', {
          body: {
            org: { name: victim.orgId },
            user: { email: 'x@evil.test', name: 'X', password: 'a-long-enough-password' },
          },
        }),
      ];
      for (const response of refusals) {
        assert.equal(response.statusCode, 400, response.body);
        const { error } = JSON.parse(response.body) as { error: { code: string; message: string; requestId: string } };
        assert.equal(error.code, 'INSITU_VALIDATION');
        assert.match(error.requestId, /^req_/);
      }
      assert.equal(
        expectStatus(
          await api.call('GET', `/api/v1/providers?name=${victim.providerId}`, { token: evil.tokens.provider }),
          200,
        ).items.length,
        0,
      );
      assert.equal(
        expectStatus(await api.call('GET', `/api/v1/providers?org=${evil.orgId}`, { token: evil.tokens.provider }), 200)
          .items.length,
        1,
        'nothing was created',
      );
    });

    it("a legacy provider named like the victim's id captures nothing: the entry resolves to the victim, who alone is asked", async () => {
      // A row from before the rule (the API refuses it now): the attacker's provider bears the victim's id as its name.
      await api.store.db
        .updateTable('providers')
        .set({ name: victim.providerId })
        .where('id', '=', evil.providerId)
        .execute();
      const submitted = expectStatus(
        await submit('1.0.0', [
          { provider: 'shop-data', dataset: 'weather' },
          { provider: victim.providerId, dataset: 'public_sales' },
        ]),
        201,
      );
      assert.deepEqual(
        submitted.datasets.map((d: { providerId: string; dataset: string }) => [d.providerId, d.dataset]),
        [
          [victim.providerId, 'weather'],
          [victim.providerId, 'public_sales'],
        ],
      );
      assert.deepEqual(
        submitted.approvals.map((a: { providerId: string }) => a.providerId),
        [victim.providerId],
      );
      assert.deepEqual(await pending(evil), [], "the attacker's provider is asked nothing");
      const [request] = await pending(victim);
      assert.equal(request?.versionId, submitted.id);
      const detail = expectStatus(
        await api.call('GET', `/api/v1/approvals/${request?.id}`, { token: victim.tokens.provider }),
        200,
      );
      assert.deepEqual(
        detail.datasets,
        ['weather', 'public_sales'],
        'the victim sees both of its datasets in what it is asked to approve',
      );
      // The catalog filter and the name lookup read the id as an id, too.
      const byId = expectStatus(
        await api.call('GET', `/api/v1/datasets?provider=${victim.providerId}`, { token: evil.tokens.developer }),
        200,
      );
      assert.ok(
        byId.items.length > 0 && byId.items.every((d: { providerId: string }) => d.providerId === victim.providerId),
      );
      assert.deepEqual(
        expectStatus(
          await api.call('GET', `/api/v1/providers?name=${victim.providerId}`, { token: evil.tokens.developer }),
          200,
        ).items,
        [],
      );
      expectStatus(
        await api.call('POST', `/api/v1/approvals/${request?.id}/reject`, {
          token: victim.tokens.provider,
          body: { reason: 'no sales for you' },
        }),
        200,
      );
      await api.store.db
        .updateTable('providers')
        .set({ name: 'evil-data' })
        .where('id', '=', evil.providerId)
        .execute();
    });

    it("each provider's agents are sent only the resolved datasets of their own provider", async () => {
      const submitted = expectStatus(
        await submit('2.0.0', [
          { provider: 'shop-data', dataset: 'weather' },
          { provider: evil.providerId, dataset: 'public_sales' },
        ]),
        201,
      );
      for (const world of [victim, evil]) {
        const [request] = (await pending(world)).filter((r) => r.versionId === submitted.id);
        assert.ok(request, 'both providers are asked');
        expectStatus(
          await api.call('POST', `/api/v1/approvals/${request.id}/approve`, { token: world.tokens.provider, body: {} }),
          200,
        );
      }
      for (const world of [victim, evil]) {
        expectStatus(
          await api.call('POST', '/api/v1/deployments', {
            token: evil.tokens.developer,
            body: { versionId: submitted.id, providerId: world.providerId },
          }),
          201,
        );
      }
      const desiredOf = async (world: OrgWorld) =>
        expectStatus(await api.call('GET', '/api/v1/agents/self/desired', { token: world.tokens.agent }), 200)
          .deployments as Array<{ datasets: unknown }>;
      assert.deepEqual(
        (await desiredOf(victim)).map((d) => d.datasets),
        [[{ providerId: victim.providerId, dataset: 'weather' }]],
      );
      assert.deepEqual(
        (await desiredOf(evil)).map((d) => d.datasets),
        [[{ providerId: evil.providerId, dataset: 'public_sales' }]],
      );
    });

    it('finds an application by organisation and name, and nothing in organisations the caller is not in', async () => {
      const found = expectStatus(
        await api.call('GET', `/api/v1/apps?org=${evil.orgId}&name=steal`, { token: evil.tokens.developer }),
        200,
      );
      assert.deepEqual(
        found.items.map((a: { id: string }) => a.id),
        [appId],
      );
      assert.deepEqual(
        expectStatus(
          await api.call('GET', `/api/v1/apps?org=${evil.orgId}&name=steal`, { token: victim.tokens.developer }),
          200,
        ).items,
        [],
      );
      assert.equal(
        (await api.call('GET', '/api/v1/apps?name=steal', { token: evil.tokens.developer })).statusCode,
        400,
      );
    });
  });
}
