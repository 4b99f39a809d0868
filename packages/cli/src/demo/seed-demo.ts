import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InsituError } from '@insitu/core';
import type { Store } from '@insitu/store';
import { writeDemoData } from './demo-data.js';
import { introspectSqlite, type TableMeta } from './introspect-sqlite.js';

export const DEMO_ORG = 'demo-retail';
export const DEMO_PROVIDER = 'demo-retail';

/** The demo provider's description of its tables (what `agent.yaml` will carry). */
const DEMO_META: Record<string, TableMeta> = {
  stores: {
    description: 'Grocery stores of a European retail chain: city, country, opening date and floor area.',
    tags: ['retail', 'stores', 'eu'],
    columns: { floor_area_m2: 'Sales floor area in square metres' },
  },
  products: { description: 'Product catalogue with category and unit price in EUR.', tags: ['retail', 'products'] },
  sales: {
    description: 'Point-of-sale transactions for 2025: store, product, time, quantity and amount in EUR. Loyalty card ids are personal data.',
    tags: ['retail', 'sales', 'transactions', 'personal-data'],
    columns: { amount: 'Total paid in EUR', loyalty_card: 'Pseudonymous loyalty card id (personal data)' },
  },
  weather: { description: 'Daily mean temperature and precipitation per city for 2025.', tags: ['weather', 'climate', 'eu'] },
};

async function api<T>(url: string, method: string, token: string | undefined, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

async function expectOk<T>(call: Promise<{ status: number; body: T }>, what: string): Promise<T> {
  const { status, body } = await call;
  if (status >= 300) {
    const error = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new InsituError('INSITU_REMOTE', `${what} failed: ${status} ${error?.code ?? ''} ${error?.message ?? ''}`.trim());
  }
  return body;
}

/** What the demo seeding produced. */
export interface DemoSeed {
  providerId: string;
  datasets: string[];
  dataFile: string;
}

/**
 * Seed the demo provider the way a real one would arrive: the provider is created and
 * an agent enrolled through the API, and the agent pushes the metadata of a local
 * SQLite file (never its rows) with its own credential. Idempotent: a second run reuses
 * the provider, the data file and the agent credential kept in `<data dir>/demo/agent`.
 */
export async function seedDemo(options: { url: string; adminToken: string; store: Store; dataDir: string; progress: (step: string) => void }): Promise<DemoSeed> {
  const { url, adminToken, store, dataDir, progress } = options;
  const demoDir = join(dataDir, 'demo');
  const dataFile = join(demoDir, 'retail.db');
  progress('generating demo data (synthetic, local)');
  await writeDemoData(dataFile);

  let org = await store.orgs.getByName(DEMO_ORG);
  if (!org) {
    const created = await expectOk(api<{ id: string }>(`${url}/api/v1/orgs`, 'POST', adminToken, { name: DEMO_ORG, displayName: 'Demo Retail Co.' }), 'creating the demo organisation');
    org = await store.orgs.get(created.id);
  }
  if (!org) throw new InsituError('INSITU_INTERNAL', 'demo organisation vanished');
  let provider = await store.providers.getByName(DEMO_PROVIDER);
  if (!provider) {
    const created = await expectOk(
      api<{ id: string }>(`${url}/api/v1/providers`, 'POST', adminToken, {
        orgId: org.id,
        name: DEMO_PROVIDER,
        displayName: 'Demo Retail Co.',
        description: 'A made-up European grocery chain that shares sales and weather data without letting it leave its premises.',
      }),
      'creating the demo provider',
    );
    provider = await store.providers.get(created.id);
  }
  if (!provider) throw new InsituError('INSITU_INTERNAL', 'demo provider vanished');

  const agentDir = join(demoDir, 'agent');
  const credentialFile = join(agentDir, 'credential');
  let credential = existsSync(credentialFile) ? (await readFile(credentialFile, 'utf8')).trim() : undefined;
  if (credential && (await api(`${url}/api/v1/agents/self`, 'GET', credential)).status !== 200) credential = undefined;
  if (!credential) {
    progress('enrolling the demo agent');
    const token = await expectOk(api<{ token: string }>(`${url}/api/v1/tokens`, 'POST', adminToken, { providerId: provider.id, note: 'insitu up demo agent', ttlSeconds: 600 }), 'creating an enrolment token');
    const enrolled = await expectOk(
      api<{ credential: string }>(`${url}/api/v1/agents/enrol`, 'POST', undefined, { token: token.token, name: 'demo-agent', hostname: hostname(), version: 'up' }),
      'enrolling the demo agent',
    );
    credential = enrolled.credential;
    await mkdir(agentDir, { recursive: true, mode: 0o700 });
    await writeFile(credentialFile, `${credential}\n`, { mode: 0o600 });
  }

  progress('publishing the demo catalog (metadata only)');
  const datasets = introspectSqlite(dataFile, DEMO_META);
  for (const { name, input } of datasets) {
    await expectOk(api(`${url}/api/v1/providers/${provider.id}/datasets/${encodeURIComponent(name)}`, 'PUT', credential, input), `publishing dataset ${name}`);
  }
  return { providerId: provider.id, datasets: datasets.map((d) => d.name), dataFile };
}
