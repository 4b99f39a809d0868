import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InsituError, hashSecret, waitFor, type Logger } from '@insitu/core';
import { CREDENTIAL_FILE, ProviderAgent, canonicalTarball, loadAgentConfig } from '@insitu/agent';
import type { Store } from '@insitu/store';
import { writeDemoData } from './demo-data.js';

export const DEMO_PROVIDER_ORG = 'demo-retail';
export const DEMO_PROVIDER = 'demo-retail';
export const DEMO_DEVELOPER_ORG = 'demo-analytics';
export const DEMO_APP = 'sales-insights';
export const DEMO_SERVICE = 'sales-insights';

/** The demo application shipped with the CLI (written with the SDK). */
export const DEMO_APP_DIR = fileURLToPath(new URL('../../../demo/sales-insights', import.meta.url));

/** The demo provider's agent config: what a real provider writes for its own data. */
const DEMO_AGENT_YAML = `# The demo provider's agent (written by insitu up). A real provider writes one like it.
name: demo-agent
sync: { intervalSeconds: 300 }
sandbox:
  # Demo only: insitu up runs applications without bubblewrap when it is not installed
  # (and says so loudly). Production agents keep the default, false.
  allowNoSandbox: true
sources:
  - name: shop
    kind: sqlite
    path: ./retail.db
    datasets:
      stores:
        description: Grocery stores of a European retail chain - city, country, opening date and floor area.
        tags: [retail, stores, eu]
        columns: { floor_area_m2: { description: Sales floor area in square metres } }
      products:
        description: Product catalogue with category and unit price in EUR.
        tags: [retail, products]
      sales:
        description: Point-of-sale transactions for 2025 - store, product, time, quantity and amount in EUR. Loyalty card ids are personal data.
        tags: [retail, sales, transactions, personal-data]
        columns:
          amount: { description: Total paid in EUR }
          loyalty_card: { description: Pseudonymous loyalty card id (personal data) }
      weather:
        description: Daily mean temperature and precipitation per city for 2025.
        tags: [weather, climate, eu]
`;

type Api = <T>(method: string, path: string, body?: unknown, contentType?: string) => Promise<T>;

function client(url: string, token: string): Api {
  return async <T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> => {
    const binary = Buffer.isBuffer(body);
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': contentType ?? 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: binary ? body : JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    if (!response.ok) {
      const error = (JSON.parse(text || '{}') as { error?: { code?: string; message?: string } }).error;
      throw new InsituError(
        'INSITU_REMOTE',
        `${method} ${path} failed: ${response.status} ${error?.code ?? ''} ${error?.message ?? ''}`.trim(),
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  };
}

/** What the demo brought up. */
export interface DemoSeed {
  datasets: string[];
  dataFile: string;
  agentConfig: string;
  sandbox: 'bubblewrap' | 'none';
  service: { name: string; running: boolean; reason?: string };
  key: string;
  agent: ProviderAgent;
}

/**
 * The whole story on one machine, the way real parties would do it through the API:
 * the demo provider (an agent beside a synthetic SQLite file, publishing its metadata and
 * dialling the tunnel), a developer organisation whose application is submitted,
 * approved by the provider, deployed next to the data and published as a service, and a
 * key to call it. Idempotent: a second run reuses everything and mints a fresh key.
 */
export async function seedDemo(options: {
  url: string;
  adminToken: string;
  store: Store;
  dataDir: string;
  logger: Logger;
  version: string;
  progress: (step: string) => void;
}): Promise<DemoSeed> {
  const { url, store, dataDir, progress } = options;
  const api = client(url, options.adminToken);
  const demoDir = join(dataDir, 'demo');
  const dataFile = join(demoDir, 'retail.db');
  progress('generating the demo data (synthetic, local)');
  await writeDemoData(dataFile);
  const agentConfig = join(demoDir, 'agent.yaml');
  if (!existsSync(agentConfig)) await writeFile(agentConfig, DEMO_AGENT_YAML);

  const ensureOrg = async (name: string, displayName: string) =>
    (await store.orgs.getByName(name))?.id ??
    (await api<{ id: string }>('POST', '/api/v1/orgs', { name, displayName })).id;
  const providerOrg = await ensureOrg(DEMO_PROVIDER_ORG, 'Demo Retail Co.');
  const developerOrg = await ensureOrg(DEMO_DEVELOPER_ORG, 'Demo Analytics Ltd.');
  const providerId =
    (await store.providers.getByName(DEMO_PROVIDER))?.id ??
    (
      await api<{ id: string }>('POST', '/api/v1/providers', {
        orgId: providerOrg,
        name: DEMO_PROVIDER,
        displayName: 'Demo Retail Co.',
        description:
          'A made-up European grocery chain that lets analysts compute on its sales without the rows ever leaving its premises.',
      })
    ).id;

  // The provider's agent: enrolled once (its credential stays in demo/agent), then re-used.
  const agentDir = join(demoDir, 'agent');
  await mkdir(agentDir, { recursive: true, mode: 0o700 });
  let token: string | undefined;
  if (!existsSync(join(agentDir, CREDENTIAL_FILE))) {
    progress('enrolling the demo agent');
    token = (
      await api<{ token: string }>('POST', '/api/v1/tokens', {
        providerId,
        note: 'insitu up demo agent',
        ttlSeconds: 600,
      })
    ).token;
  }
  const config = loadAgentConfig(agentConfig);
  const create = (noSandbox: boolean) =>
    ProviderAgent.create({
      config,
      configName: agentConfig,
      dataDir: agentDir,
      platforms: [url],
      ...(token ? { token } : {}),
      name: 'demo-agent',
      version: options.version,
      logger: options.logger,
      noSandbox,
    });
  let agent: ProviderAgent;
  try {
    agent = await create(false);
  } catch (error) {
    if ((error as InsituError).code !== 'INSITU_SANDBOX_UNAVAILABLE') throw error;
    progress(
      `WARNING: bubblewrap does not run here (${(error as Error).message}); the demo runs applications WITHOUT a sandbox. Install bubblewrap for isolation.`,
    );
    agent = await create(true);
  }
  try {
    progress('publishing the demo catalog (metadata only) and dialling the tunnel');
    const report = await agent.start();

    // The developer's application: submitted, approved by the provider, deployed next to the data.
    const apps = await store.apps.list({ orgIds: [developerOrg], limit: 100, offset: 0 });
    const appId =
      apps.find((a) => a.name === DEMO_APP)?.id ??
      (
        await api<{ id: string }>('POST', '/api/v1/apps', {
          orgId: developerOrg,
          name: DEMO_APP,
          description: 'Revenue per city, top products and climate',
        })
      ).id;
    const versions = await store.apps.listVersions(appId, { limit: 100, offset: 0 });
    let version = versions.at(-1);
    if (!version) {
      progress('submitting the demo application sales-insights 1.0.0');
      const submitted = await api<{ id: string }>(
        'POST',
        `/api/v1/apps/${appId}/versions`,
        await canonicalTarball(DEMO_APP_DIR),
        'application/x-tar',
      );
      version = await store.apps.getVersion(submitted.id);
    }
    if (!version) throw new InsituError('INSITU_INTERNAL', 'the demo version vanished');
    for (const approval of await store.apps.approvalsOf(version.id)) {
      if (approval.state !== 'pending') continue;
      progress('the demo provider reviews and approves it');
      await api('POST', `/api/v1/approvals/${approval.id}/approve`, {
        reason: 'reads aggregates only; no loyalty card ids leave',
      });
    }
    const active = await store.deployments.list({ appId, providerId, states: ['active'], limit: 10, offset: 0 });
    const deploymentId =
      active[0]?.id ??
      (await api<{ id: string }>('POST', '/api/v1/deployments', { versionId: version.id, providerId, replicas: 1 })).id;
    const serviceRow =
      (await store.services.getByName(DEMO_SERVICE)) ??
      (await api<{ id: string }>('POST', '/api/v1/services', {
        name: DEMO_SERVICE,
        appId,
        ratePerSecond: 200,
        burst: 400,
      }));
    const key = { key: await demoKey(api, store, join(demoDir, 'key'), developerOrg, serviceRow.id) };
    progress('starting the application next to the data');
    let running = true;
    let reason: string | undefined;
    try {
      // Ready means a real call through the gateway, the tunnel and the agent is answered.
      // Probe the gateway only once the platform routes the service: a probe before that is a
      // 503 of our own making, which the platform would log and meter like a caller's.
      await waitFor(
        async () => {
          const deployment = await api<{ agents: Array<{ state: string; reason: string }> }>(
            'GET',
            `/api/v1/deployments/${deploymentId}`,
          );
          const failed = deployment.agents.find((a) => a.state === 'failed' || a.state === 'crash-looping');
          if (failed) throw new InsituError('INSITU_APP_UNAVAILABLE', failed.reason || 'the deployment failed');
          const service = await api<{ versions: Array<{ running: boolean }> }>(
            'GET',
            `/api/v1/services/${serviceRow.id}`,
          );
          if (!service.versions.some((v) => v.running)) return false;
          const probe = await fetch(`${url}/s/${DEMO_SERVICE}/healthz`, {
            headers: { authorization: `Bearer ${key.key}` },
          });
          await probe.body?.cancel();
          return probe.ok;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'the demo application to answer' },
      );
    } catch (error) {
      running = false;
      reason = (error as Error).message;
    }
    return {
      datasets:
        report.published.length > 0
          ? report.published.sort()
          : (
              await store.datasets.search({ providerId, viewer: { all: true, orgIds: [] }, limit: 100, offset: 0 })
            ).items.map((d) => d.name),
      dataFile,
      agentConfig,
      sandbox: agent.agent.sandboxed ? 'bubblewrap' : 'none',
      service: { name: DEMO_SERVICE, running, ...(reason ? { reason } : {}) },
      key: key.key,
      agent,
    };
  } catch (error) {
    await agent.close();
    throw error;
  }
}

/**
 * The demo's API key: created on the first run and kept in `demo/key` (mode 0600, like the
 * agent's credential), so every start shows the same key instead of adding one; a new one
 * only when it was revoked or expires within a day.
 */
async function demoKey(api: Api, store: Store, file: string, orgId: string, serviceId: string): Promise<string> {
  if (existsSync(file)) {
    const saved = (await readFile(file, 'utf8')).trim();
    const row = await store.services.findLiveKey(hashSecret(saved));
    if (row && (row.expires_at === null || Number(row.expires_at) > Date.now() + 86_400_000)) return saved;
  }
  const created = await api<{ key: string }>('POST', '/api/v1/keys', {
    orgId,
    name: 'insitu up demo key',
    services: [serviceId],
    ttlSeconds: 30 * 86400,
  });
  await writeFile(file, `${created.key}\n`, { mode: 0o600 });
  return created.key;
}
