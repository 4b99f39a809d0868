import type { DatasetInput } from '@insitu/core';
import { openStore, type Store } from '@insitu/store';
import type { DatabaseTarget } from '@insitu/test-helpers';
import type { LightMyRequestResponse } from 'fastify';
import { buildServer, defaultServerConfig, initPlatform, issueSession, type App } from '../src/index.js';

export const TEST_PASSWORD = 'correct-horse-battery';
export const FAST_KDF = { N: 1024, r: 8, p: 1 };

/** A platform on `target` with a fast password KDF, built for `inject()`. */
export interface Api {
  app: App;
  store: Store;
  adminToken: string;
  adminPassword: string;
  close(): Promise<void>;
  call(
    method: string,
    url: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>;
}

export async function startApi(target: DatabaseTarget, overrides: Record<string, unknown> = {}): Promise<Api> {
  const db = await target.create();
  const store = await openStore(db.config);
  const config = defaultServerConfig({ log: { level: 'silent' }, auth: { passwordCost: 10 }, ...overrides });
  const app = await buildServer({ config, store });
  const init = await initPlatform(store, { adminEmail: 'root@platform.test', password: TEST_PASSWORD }, FAST_KDF);
  const admin = await issueSession(store, init.admin, 3_600_000);
  return {
    app,
    store,
    adminToken: admin.token,
    adminPassword: init.password,
    async close() {
      await app.close();
      await store.close();
      await db.drop();
    },
    call(method, url, options = {}) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      return app.inject({
        method: method as 'GET',
        url,
        headers,
        ...(options.body !== undefined
          ? typeof options.body === 'string'
            ? { payload: options.body }
            : { payload: options.body as object }
          : {}),
      });
    },
  };
}

/** An organisation with one user per role, a provider, an agent and a public and a private dataset. */
export interface OrgWorld {
  orgId: string;
  providerId: string;
  tokens: { admin: string; provider: string; developer: string; user: string; agent: string };
  userIds: { admin: string; provider: string; developer: string; user: string };
  agentId: string;
  publicDatasetId: string;
  privateDatasetId: string;
}

/** Build an {@link OrgWorld} through the API as real users would (admin creates the org). */
export async function makeOrg(api: Api, name: string): Promise<OrgWorld> {
  const org = expectStatus(await api.call('POST', '/api/v1/orgs', { token: api.adminToken, body: { name } }), 201);
  const orgId = org.id as string;
  const tokens: Record<string, string> = {};
  const userIds: Record<string, string> = {};
  for (const role of ['admin', 'provider', 'developer', 'user'] as const) {
    const email = `${role}@${name}.test`;
    const member = expectStatus(
      await api.call('POST', `/api/v1/orgs/${orgId}/members`, {
        token: api.adminToken,
        body: { email, password: TEST_PASSWORD, roles: [role] },
      }),
      201,
    );
    userIds[role] = member.user.id as string;
    tokens[role] = expectStatus(
      await api.call('POST', '/api/v1/sessions', { body: { email, password: TEST_PASSWORD } }),
      201,
    ).token as string;
  }
  const provider = expectStatus(
    await api.call('POST', '/api/v1/providers', { token: tokens.provider, body: { orgId, name: `${name}-data` } }),
    201,
  );
  const agent = await enrolAgent(api, tokens.provider ?? '', provider.id as string, `${name}-agent`);
  const pub = expectStatus(
    await api.call('PUT', `/api/v1/providers/${provider.id}/datasets/public_sales`, {
      token: agent.credential,
      body: datasetBody({ description: `${name} sales`, tags: ['retail'] }),
    }),
    201,
  );
  const priv = expectStatus(
    await api.call('PUT', `/api/v1/providers/${provider.id}/datasets/private_payroll`, {
      token: agent.credential,
      body: datasetBody({ description: `${name} payroll`, tags: ['hr'], visibility: 'org' }),
    }),
    201,
  );
  return {
    orgId,
    providerId: provider.id as string,
    tokens: {
      admin: tokens.admin ?? '',
      provider: tokens.provider ?? '',
      developer: tokens.developer ?? '',
      user: tokens.user ?? '',
      agent: agent.credential,
    },
    userIds: {
      admin: userIds.admin ?? '',
      provider: userIds.provider ?? '',
      developer: userIds.developer ?? '',
      user: userIds.user ?? '',
    },
    agentId: agent.id,
    publicDatasetId: pub.id as string,
    privateDatasetId: priv.id as string,
  };
}

export async function enrolAgent(
  api: Api,
  providerToken: string,
  providerId: string,
  name: string,
): Promise<{ id: string; credential: string }> {
  const token = expectStatus(
    await api.call('POST', '/api/v1/tokens', { token: providerToken, body: { providerId } }),
    201,
  );
  const enrolled = expectStatus(
    await api.call('POST', '/api/v1/agents/enrol', { body: { token: token.token, name } }),
    201,
  );
  return { id: enrolled.agent.id as string, credential: enrolled.credential as string };
}

export function datasetBody(overrides: Partial<DatasetInput> = {}): DatasetInput {
  return {
    sourceKind: 'sqlite',
    description: '',
    tags: [],
    columns: [
      { name: 'id', type: 'integer', nullable: false },
      { name: 'amount', type: 'decimal', nullable: true },
    ],
    rowCount: 10,
    ...overrides,
  };
}

/** Parse the JSON body after checking the status; the message shows the body when it differs. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function expectStatus(response: LightMyRequestResponse, status: number): any {
  if (response.statusCode !== status) {
    throw new Error(`expected ${status}, got ${response.statusCode}: ${response.body.slice(0, 500)}`);
  }
  return response.body ? JSON.parse(response.body) : undefined;
}
