import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import {
  type Api,
  type OrgWorld,
  TEST_PASSWORD,
  datasetBody,
  enrolAgent,
  expectStatus,
  makeOrg,
  startApi,
} from './fixtures.js';

/*
 * Every endpoint × every role × own/other organisation. The resources belong to "acme";
 * "globex" is the other organisation. Each cell runs a real request and checks the status;
 * cells that change things act on fresh resources made for them.
 */
type Actor =
  | 'anonymous'
  | 'platformAdmin'
  | 'admin'
  | 'provider'
  | 'developer'
  | 'user'
  | 'otherOrgAdmin'
  | 'agent'
  | 'otherAgent';
const ACTORS: Actor[] = [
  'anonymous',
  'platformAdmin',
  'admin',
  'provider',
  'developer',
  'user',
  'otherOrgAdmin',
  'agent',
  'otherAgent',
];

interface Ctx {
  api: Api;
  acme: OrgWorld;
  globex: OrgWorld;
  n: () => number;
}
interface Cell {
  method: string;
  url: string;
  body?: unknown;
}
interface Row {
  name: string;
  request: (ctx: Ctx) => Promise<Cell> | Cell;
  /** Expected status for each actor, in ACTORS order. */
  expect: [number, number, number, number, number, number, number, number, number];
  /** Undo what a successful cell did, so later cells see the same world. */
  undo?: (ctx: Ctx) => Promise<void>;
}

const ROWS: Row[] = [
  {
    name: 'GET /users/me',
    request: () => ({ method: 'GET', url: '/api/v1/users/me' }),
    expect: [401, 200, 200, 200, 200, 200, 200, 403, 403],
  },
  {
    name: 'GET /users',
    request: () => ({ method: 'GET', url: '/api/v1/users' }),
    expect: [401, 200, 403, 403, 403, 403, 403, 403, 403],
  },
  {
    name: 'GET /orgs',
    request: () => ({ method: 'GET', url: '/api/v1/orgs' }),
    expect: [401, 200, 200, 200, 200, 200, 200, 403, 403],
  },
  {
    name: 'POST /orgs',
    request: (c) => ({ method: 'POST', url: '/api/v1/orgs', body: { name: `org-${c.n()}` } }),
    expect: [401, 201, 403, 403, 403, 403, 403, 403, 403],
  },
  {
    name: 'GET /orgs/:id',
    request: (c) => ({ method: 'GET', url: `/api/v1/orgs/${c.acme.orgId}` }),
    expect: [401, 200, 200, 200, 200, 200, 404, 403, 403],
  },
  {
    name: 'PATCH /orgs/:id',
    request: (c) => ({ method: 'PATCH', url: `/api/v1/orgs/${c.acme.orgId}`, body: { displayName: 'Acme Inc.' } }),
    expect: [401, 200, 200, 403, 403, 403, 404, 403, 403],
  },
  {
    name: 'POST /orgs/:id/approve',
    request: (c) => ({ method: 'POST', url: `/api/v1/orgs/${c.acme.orgId}/approve` }),
    expect: [401, 200, 403, 403, 403, 403, 404, 403, 403],
  },
  {
    name: 'POST /orgs/:id/suspend',
    request: (c) => ({ method: 'POST', url: `/api/v1/orgs/${c.acme.orgId}/suspend` }),
    expect: [401, 200, 403, 403, 403, 403, 404, 403, 403],
    undo: async (c) => {
      expectStatus(await c.api.call('POST', `/api/v1/orgs/${c.acme.orgId}/approve`, { token: c.api.adminToken }), 200);
    },
  },
  {
    name: 'GET /orgs/:id/members',
    request: (c) => ({ method: 'GET', url: `/api/v1/orgs/${c.acme.orgId}/members` }),
    expect: [401, 200, 200, 200, 200, 200, 404, 403, 403],
  },
  {
    name: 'POST /orgs/:id/members',
    request: (c) => ({
      method: 'POST',
      url: `/api/v1/orgs/${c.acme.orgId}/members`,
      body: { email: `new${c.n()}@acme.test`, password: TEST_PASSWORD, roles: ['user'] },
    }),
    expect: [401, 201, 201, 403, 403, 403, 404, 403, 403],
  },
  {
    name: 'PUT /orgs/:id/members/:userId',
    request: (c) => ({
      method: 'PUT',
      url: `/api/v1/orgs/${c.acme.orgId}/members/${c.acme.userIds.developer}`,
      body: { roles: ['developer'] },
    }),
    expect: [401, 200, 200, 403, 403, 403, 404, 403, 403],
  },
  {
    name: 'DELETE /orgs/:id/members/:userId',
    request: async (c) => {
      const member = expectStatus(
        await c.api.call('POST', `/api/v1/orgs/${c.acme.orgId}/members`, {
          token: c.api.adminToken,
          body: { email: `gone${c.n()}@acme.test`, password: TEST_PASSWORD, roles: ['user'] },
        }),
        201,
      );
      return { method: 'DELETE', url: `/api/v1/orgs/${c.acme.orgId}/members/${member.user.id}` };
    },
    expect: [401, 204, 204, 403, 403, 403, 404, 403, 403],
  },
  {
    name: 'POST /providers',
    request: (c) => ({
      method: 'POST',
      url: '/api/v1/providers',
      body: { orgId: c.acme.orgId, name: `prov-${c.n()}` },
    }),
    expect: [401, 201, 201, 201, 403, 403, 404, 403, 403],
  },
  {
    name: 'GET /providers',
    request: () => ({ method: 'GET', url: '/api/v1/providers' }),
    expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
  },
  {
    name: 'GET /providers/:id',
    request: (c) => ({ method: 'GET', url: `/api/v1/providers/${c.acme.providerId}` }),
    expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
  },
  {
    name: 'PATCH /providers/:id',
    request: (c) => ({
      method: 'PATCH',
      url: `/api/v1/providers/${c.acme.providerId}`,
      body: { description: 'edited' },
    }),
    expect: [401, 200, 200, 200, 403, 403, 403, 403, 403],
  },
  {
    name: 'POST /tokens',
    request: (c) => ({ method: 'POST', url: '/api/v1/tokens', body: { providerId: c.acme.providerId } }),
    expect: [401, 201, 201, 201, 403, 403, 403, 403, 403],
  },
  {
    name: 'GET /tokens',
    request: (c) => ({ method: 'GET', url: `/api/v1/tokens?provider=${c.acme.providerId}` }),
    expect: [401, 200, 200, 200, 403, 403, 403, 403, 403],
  },
  {
    name: 'DELETE /tokens/:id',
    request: async (c) => {
      const token = expectStatus(
        await c.api.call('POST', '/api/v1/tokens', {
          token: c.acme.tokens.provider,
          body: { providerId: c.acme.providerId },
        }),
        201,
      );
      return { method: 'DELETE', url: `/api/v1/tokens/${token.id}` };
    },
    expect: [401, 204, 204, 204, 403, 403, 404, 403, 403],
  },
  {
    name: 'GET /agents?provider',
    request: (c) => ({ method: 'GET', url: `/api/v1/agents?provider=${c.acme.providerId}` }),
    expect: [401, 200, 200, 200, 403, 403, 403, 403, 403],
  },
  {
    name: 'GET /agents/:id',
    request: (c) => ({ method: 'GET', url: `/api/v1/agents/${c.acme.agentId}` }),
    expect: [401, 200, 200, 200, 200, 200, 404, 403, 403],
  },
  {
    name: 'DELETE /agents/:id',
    request: async (c) => {
      const agent = await enrolAgent(c.api, c.acme.tokens.provider, c.acme.providerId, `spare-${c.n()}`);
      return { method: 'DELETE', url: `/api/v1/agents/${agent.id}` };
    },
    expect: [401, 204, 204, 204, 403, 403, 404, 403, 403],
  },
  {
    name: 'GET /agents/self',
    request: () => ({ method: 'GET', url: '/api/v1/agents/self' }),
    expect: [401, 403, 403, 403, 403, 403, 403, 200, 200],
  },
  {
    name: 'GET /datasets',
    request: () => ({ method: 'GET', url: '/api/v1/datasets' }),
    expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
  },
  {
    name: 'GET /datasets/:id public',
    request: (c) => ({ method: 'GET', url: `/api/v1/datasets/${c.acme.publicDatasetId}` }),
    expect: [401, 200, 200, 200, 200, 200, 200, 200, 200],
  },
  {
    name: 'GET /datasets/:id private',
    request: (c) => ({ method: 'GET', url: `/api/v1/datasets/${c.acme.privateDatasetId}` }),
    expect: [401, 200, 200, 200, 200, 200, 404, 200, 404],
  },
  {
    name: 'PUT /datasets/:id/policy public',
    request: (c) => ({
      method: 'PUT',
      url: `/api/v1/datasets/${c.acme.publicDatasetId}/policy`,
      body: { minGroupSize: 5 },
    }),
    expect: [401, 200, 200, 403, 403, 403, 403, 403, 403],
  },
  {
    name: 'PUT /datasets/:id/policy private',
    request: (c) => ({
      method: 'PUT',
      url: `/api/v1/datasets/${c.acme.privateDatasetId}/policy`,
      body: { minGroupSize: 5 },
    }),
    expect: [401, 200, 200, 403, 403, 403, 404, 403, 403],
  },
  {
    name: 'PUT /providers/:id/datasets/:name',
    request: (c) => ({
      method: 'PUT',
      url: `/api/v1/providers/${c.acme.providerId}/datasets/new_${c.n()}`,
      body: datasetBody(),
    }),
    expect: [401, 403, 403, 403, 403, 403, 403, 201, 403],
  },
  {
    name: 'DELETE /providers/:id/datasets/:name',
    request: async (c) => {
      const name = `doomed_${c.n()}`;
      expectStatus(
        await c.api.call('PUT', `/api/v1/providers/${c.acme.providerId}/datasets/${name}`, {
          token: c.acme.tokens.agent,
          body: datasetBody(),
        }),
        201,
      );
      return { method: 'DELETE', url: `/api/v1/providers/${c.acme.providerId}/datasets/${name}` };
    },
    expect: [401, 403, 403, 403, 403, 403, 403, 204, 403],
  },
  {
    name: 'GET /cluster',
    request: () => ({ method: 'GET', url: '/api/v1/cluster' }),
    expect: [401, 200, 403, 403, 403, 403, 403, 403, 403],
  },
  {
    name: 'GET /metrics',
    request: () => ({ method: 'GET', url: '/metrics' }),
    expect: [401, 200, 403, 403, 403, 403, 403, 403, 403],
  },
  {
    name: 'GET /healthz',
    request: () => ({ method: 'GET', url: '/healthz' }),
    expect: [200, 200, 200, 200, 200, 200, 200, 200, 200],
  },
  {
    name: 'GET /api/v1/openapi.json',
    request: () => ({ method: 'GET', url: '/api/v1/openapi.json' }),
    expect: [200, 200, 200, 200, 200, 200, 200, 200, 200],
  },
];

for (const target of databaseTargets()) {
  describe(`authorisation matrix on ${target.dialect}`, () => {
    let ctx: Ctx;
    let counter = 0;

    before(async () => {
      const api = await startApi(target);
      ctx = { api, acme: await makeOrg(api, 'acme'), globex: await makeOrg(api, 'globex'), n: () => ++counter };
    });
    after(async () => ctx.api.close());

    function tokenOf(actor: Actor): string | undefined {
      switch (actor) {
        case 'anonymous':
          return undefined;
        case 'platformAdmin':
          return ctx.api.adminToken;
        case 'otherOrgAdmin':
          return ctx.globex.tokens.admin;
        case 'agent':
          return ctx.acme.tokens.agent;
        case 'otherAgent':
          return ctx.globex.tokens.agent;
        default:
          return ctx.acme.tokens[actor];
      }
    }

    for (const row of ROWS) {
      it(row.name, async () => {
        const failures: string[] = [];
        for (const [index, actor] of ACTORS.entries()) {
          const cell = await row.request(ctx);
          const token = tokenOf(actor);
          const response = await ctx.api.call(cell.method, cell.url, {
            ...(token ? { token } : {}),
            ...(cell.body !== undefined ? { body: cell.body } : {}),
          });
          const expected = row.expect[index];
          if (response.statusCode !== expected)
            failures.push(`${actor}: expected ${expected}, got ${response.statusCode} ${response.body.slice(0, 160)}`);
          if (response.statusCode >= 400) {
            const body = JSON.parse(response.body) as { error?: { code?: string; requestId?: string } };
            if (
              !body.error?.code?.startsWith('INSITU_') ||
              body.error.requestId !== response.headers['insitu-request-id']
            ) {
              failures.push(`${actor}: error body without code or request id: ${response.body.slice(0, 160)}`);
            }
          }
          if (response.statusCode < 300 && row.undo) await row.undo(ctx);
        }
        assert.deepEqual(failures, []);
      });
    }

    it('never shows one organisation the private data of another', async () => {
      const { api, acme, globex } = ctx;
      const ids = (body: { items: Array<{ id: string }> }) => body.items.map((item) => item.id);
      const orgs = expectStatus(await api.call('GET', '/api/v1/orgs', { token: globex.tokens.admin }), 200);
      assert.deepEqual(ids(orgs), [globex.orgId]);
      const datasets = expectStatus(
        await api.call('GET', '/api/v1/datasets?limit=100', { token: globex.tokens.user }),
        200,
      );
      assert.ok(!ids(datasets).includes(acme.privateDatasetId));
      assert.ok(ids(datasets).includes(acme.publicDatasetId));
      assert.ok(ids(datasets).includes(globex.privateDatasetId), 'own private datasets are visible');
      const search = expectStatus(
        await api.call('GET', '/api/v1/datasets?q=payroll', { token: globex.tokens.agent }),
        200,
      );
      assert.deepEqual(ids(search), [globex.privateDatasetId]);
      const agents = expectStatus(
        await api.call('GET', '/api/v1/agents?limit=100', { token: globex.tokens.provider }),
        200,
      );
      assert.ok(ids(agents).length > 0);
      assert.ok(ids(agents).every((id) => id !== acme.agentId));
      const mine = expectStatus(
        await api.call('GET', '/api/v1/agents?limit=100', { token: acme.tokens.developer }),
        200,
      );
      assert.deepEqual(ids(mine), [], 'a developer without the provider role sees no agents');
    });
  });
}
