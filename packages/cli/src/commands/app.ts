import { resolve } from 'node:path';
import { InsituError, refKind, waitFor } from '@insitu/core';
import { canonicalTarball, readManifest } from '@insitu/agent';
import { ApiClient, type RemoteOptions } from '../api-client.js';
import { line, type CliIo } from '../io.js';

interface Version {
  id: string;
  appId: string;
  appName: string;
  version: string;
  digest: string;
  state: string;
  approvals: Array<{ id: string; providerName: string; state: string }>;
}

interface Deployment {
  id: string;
  version: string;
  state: string;
  replicas: number;
  agents: Array<{ agentId: string; state: string; ready: number; desired: number; reason: string }>;
}

/**
 * `insitu app submit DIR --org ORG`: pack the directory canonically, create the
 * application if the organisation has none of that name, and submit the version.
 */
export async function runAppSubmit(dir: string, options: RemoteOptions & { org: string; json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const root = resolve(io.cwd, dir);
  const manifest = await readManifest(root);
  const tarball = await canonicalTarball(root);
  const apps = await api.request<{ items: Array<{ id: string; name: string; orgId: string }> }>(
    'GET',
    `/api/v1/apps?${new URLSearchParams({ org: options.org, name: manifest.name }).toString()}`,
  );
  let app = apps.items[0];
  if (!app) {
    if (!options.json) line(io.stderr, `… creating application ${manifest.name}`);
    app = await api.request<{ id: string; name: string; orgId: string }>('POST', '/api/v1/apps', { orgId: options.org, name: manifest.name, description: manifest.description ?? '' });
  }
  if (!options.json) line(io.stderr, `… submitting ${manifest.name} ${manifest.version} (${tarball.length} bytes)`);
  const version = await api.request<Version>('POST', `/api/v1/apps/${app.id}/versions`, tarball, { contentType: 'application/x-tar' });
  if (options.json) {
    line(io.stdout, JSON.stringify(version));
    return;
  }
  line(io.stdout, `submitted ${version.appName} ${version.version} as ${version.id}`);
  line(io.stdout, `  digest: sha256:${version.digest}`);
  for (const approval of version.approvals) line(io.stdout, `  approval by ${approval.providerName}: ${approval.state} (${approval.id})`);
}

/**
 * `insitu app approve ID [--reject --reason R]`: decide an approval request, or every
 * pending request of a version addressed to your providers.
 */
export async function runAppApprove(id: string, options: RemoteOptions & { reject?: boolean; reason?: string; json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  if (options.reject && !options.reason) throw new InsituError('INSITU_USAGE', '--reject needs --reason: the developer sees why');
  let ids = [id];
  if (id.startsWith('ver_')) {
    const pending = await api.request<{ items: Array<{ id: string; versionId: string }> }>('GET', '/api/v1/approvals?state=pending&limit=100');
    ids = pending.items.filter((a) => a.versionId === id).map((a) => a.id);
    if (ids.length === 0) throw new InsituError('INSITU_APPROVAL_NOT_FOUND', `no pending approval of ${id} is addressed to your providers`);
  }
  const decided = [];
  for (const approvalId of ids) {
    decided.push(
      await api.request<{ id: string; appName: string; version: string; providerName: string; state: string }>(
        'POST',
        `/api/v1/approvals/${approvalId}/${options.reject ? 'reject' : 'approve'}`,
        options.reason ? { reason: options.reason } : {},
      ),
    );
  }
  if (options.json) line(io.stdout, JSON.stringify(decided));
  else for (const d of decided) line(io.stdout, `${d.providerName} ${d.state} ${d.appName} ${d.version} (${d.id})`);
}

/**
 * `insitu app deploy VERSION --provider P [--replicas N] [--wait]`: record the desired
 * deployment; with `--wait`, follow it until an agent runs it (or it fails).
 */
export async function runAppDeploy(
  versionId: string,
  options: RemoteOptions & { provider: string; replicas?: number; wait?: boolean; timeout: number; json?: boolean },
  io: CliIo,
): Promise<number> {
  const api = ApiClient.from(options, io);
  const providerId = await providerIdOf(api, options.provider);
  let deployment = await api.request<Deployment>('POST', '/api/v1/deployments', { versionId, providerId, ...(options.replicas ? { replicas: options.replicas } : {}) });
  if (!options.json) line(io.stderr, `… deployment ${deployment.id} of ${deployment.version} recorded`);
  if (options.wait) {
    let last = '';
    deployment = await waitFor(
      async () => {
        const current = await api.request<Deployment>('GET', `/api/v1/deployments/${deployment.id}`);
        const summary = current.agents.map((a) => `${a.agentId}: ${a.state} ${a.ready}/${a.desired}${a.reason ? ` (${a.reason})` : ''}`).join('; ') || 'waiting for an agent';
        if (summary !== last && !options.json) line(io.stderr, `… ${summary}`);
        last = summary;
        if (current.agents.some((a) => a.state === 'failed')) return current;
        return current.agents.some((a) => a.state === 'running' && a.ready > 0) ? current : undefined;
      },
      { timeoutMs: options.timeout * 1000, intervalMs: 500, what: `deployment ${deployment.id} to run` },
    );
  }
  if (options.json) line(io.stdout, JSON.stringify(deployment));
  else line(io.stdout, `${deployment.id}: ${deployment.version} ${deployment.state}${deployment.agents.length ? `, ${deployment.agents.map((a) => `${a.agentId} ${a.state}`).join(', ')}` : ''}`);
  return deployment.agents.some((a) => a.state === 'failed') ? 1 : 0;
}

/** `--provider` as an id or a name, read by core's one rule (an id-shaped value is an id, anything else a name). */
async function providerIdOf(api: ApiClient, ref: string): Promise<string> {
  const kind = refKind(ref, 'prv');
  if (kind === 'id') return ref;
  if (kind === 'name') {
    const found = await api.request<{ items: Array<{ id: string }> }>('GET', `/api/v1/providers?name=${encodeURIComponent(ref)}`);
    const id = found.items[0]?.id;
    if (id) return id;
  }
  throw new InsituError('INSITU_PROVIDER_NOT_FOUND', `no provider ${ref}`);
}
