// A real platform server (SQLite in a temp dir) with an organisation, a provider and a
// way to mint enrolment tokens, driven through its REST API as a provider would.
import { mkdir } from 'node:fs/promises';
import { initPlatform, issueSession, startServer, defaultServerConfig, type RunningServer } from '@insitu/server';

export interface TestPlatform {
  server: RunningServer;
  url: string;
  adminToken: string;
  providerId: string;
  providerName: string;
  newToken(): Promise<string>;
  api<T = unknown>(
    method: string,
    path: string,
    token?: string,
    body?: unknown,
  ): Promise<{ status: number; body: T; text: string }>;
}

async function call<T>(
  url: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: T; text: string }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, text };
}

export async function startPlatform(dataDir: string): Promise<TestPlatform> {
  await mkdir(dataDir, { recursive: true });
  const config = defaultServerConfig({
    listen: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent' },
    auth: { passwordCost: 10 },
  });
  const server = await startServer({ config, dataDir });
  const init = await initPlatform(server.store, { adminEmail: 'admin@example.test' }, { N: 2 ** 10, r: 8, p: 1 });
  const session = await issueSession(server.store, init.admin, 3600_000);
  const adminToken = session.token;
  const url = server.url;
  const org = await call<{ id: string }>(url, 'POST', '/api/v1/orgs', adminToken, {
    name: 'acme',
    displayName: 'Acme',
  });
  if (org.status !== 201) throw new Error(`creating the org: ${org.text}`);
  const provider = await call<{ id: string; name: string }>(url, 'POST', '/api/v1/providers', adminToken, {
    orgId: org.body.id,
    name: 'acme-data',
    displayName: 'Acme data',
  });
  if (provider.status !== 201) throw new Error(`creating the provider: ${provider.text}`);
  return {
    server,
    url,
    adminToken,
    providerId: provider.body.id,
    providerName: provider.body.name,
    async newToken() {
      const token = await call<{ token: string }>(url, 'POST', '/api/v1/tokens', adminToken, {
        providerId: provider.body.id,
        note: 'test',
      });
      if (token.status !== 201) throw new Error(`creating a token: ${token.text}`);
      return token.body.token;
    },
    api: (method, path, token, body) => call(url, method, path, token, body),
  };
}
