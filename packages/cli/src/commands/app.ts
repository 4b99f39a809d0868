import { resolve } from 'node:path';
import { InsituError, reportsCrashLoop, sleep } from '@insitu/core';
import { canonicalTarball, readManifest } from '@insitu/agent';
import { ApiClient, streamLines, type RemoteOptions } from '../api-client.js';
import { line, printItems, type CliIo } from '../io.js';
import { appIdOf, listAll, orgIdOf, providerIdOf, versionIdOf } from '../refs.js';

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
export async function runAppSubmit(
  dir: string,
  options: RemoteOptions & { org: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const orgId = await orgIdOf(api, options.org);
  const root = resolve(io.cwd, dir);
  const manifest = await readManifest(root);
  const tarball = await canonicalTarball(root);
  const apps = await api.request<{ items: Array<{ id: string; name: string; orgId: string }> }>(
    'GET',
    `/api/v1/apps?${new URLSearchParams({ org: orgId, name: manifest.name }).toString()}`,
  );
  let app = apps.items[0];
  if (!app) {
    if (!options.json) line(io.stderr, `… creating application ${manifest.name}`);
    app = await api.request<{ id: string; name: string; orgId: string }>('POST', '/api/v1/apps', {
      orgId,
      name: manifest.name,
      description: manifest.description ?? '',
    });
  }
  if (!options.json) line(io.stderr, `… submitting ${manifest.name} ${manifest.version} (${tarball.length} bytes)`);
  const version = await api.request<Version>('POST', `/api/v1/apps/${app.id}/versions`, tarball, {
    contentType: 'application/x-tar',
  });
  if (options.json) {
    line(io.stdout, JSON.stringify({ ...version, app: { id: app.id, name: app.name } }));
    return;
  }
  line(io.stdout, `submitted ${version.appName} ${version.version} as ${version.id}`);
  line(io.stdout, `  application: ${app.name} (${app.id})`);
  line(io.stdout, `  digest: sha256:${version.digest}`);
  for (const approval of version.approvals)
    line(io.stdout, `  approval by ${approval.providerName}: ${approval.state} (${approval.id})`);
}

/**
 * `insitu app approve ID [--reject --reason R] [--share-job-logs] [--job-result-types a,b]
 * [--job-max-result-bytes N]`: decide an approval request, or every pending request of a
 * version addressed to your providers; the job options say what may leave of its jobs.
 */
export async function runAppApprove(
  ref: string,
  options: RemoteOptions & {
    reject?: boolean;
    reason?: string;
    json?: boolean;
    shareJobLogs?: boolean;
    jobResultTypes?: string;
    jobMaxResultBytes?: number;
  },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  if (options.reject && !options.reason)
    throw new InsituError('INSITU_USAGE', '--reject needs --reason: the developer sees why');
  const results = {
    ...(options.jobResultTypes !== undefined
      ? {
          extensions: options.jobResultTypes
            .split(',')
            .map((e) => e.trim().toLowerCase())
            .filter(Boolean),
        }
      : {}),
    ...(options.jobMaxResultBytes !== undefined ? { maxFileBytes: options.jobMaxResultBytes } : {}),
  };
  const jobPolicy =
    options.shareJobLogs || Object.keys(results).length > 0
      ? { shareLogs: options.shareJobLogs === true, ...(Object.keys(results).length > 0 ? { results } : {}) }
      : undefined;
  if (options.reject && jobPolicy)
    throw new InsituError('INSITU_USAGE', '--share-job-logs and --job-* options go with an approval, not --reject');
  let ids = [ref];
  if (ref.startsWith('ver_') || ref.includes('@')) {
    const id = await versionIdOf(api, ref);
    const pending = await api.request<{ items: Array<{ id: string; versionId: string }> }>(
      'GET',
      '/api/v1/approvals?state=pending&limit=100',
    );
    ids = pending.items.filter((a) => a.versionId === id).map((a) => a.id);
    if (ids.length === 0)
      throw new InsituError('INSITU_APPROVAL_NOT_FOUND', `no pending approval of ${id} is addressed to your providers`);
  }
  const decided = [];
  for (const approvalId of ids) {
    decided.push(
      await api.request<{ id: string; appName: string; version: string; providerName: string; state: string }>(
        'POST',
        `/api/v1/approvals/${approvalId}/${options.reject ? 'reject' : 'approve'}`,
        { ...(options.reason ? { reason: options.reason } : {}), ...(jobPolicy ? { jobPolicy } : {}) },
      ),
    );
  }
  if (options.json) line(io.stdout, JSON.stringify(decided));
  else for (const d of decided) line(io.stdout, `${d.providerName} ${d.state} ${d.appName} ${d.version} (${d.id})`);
}

/**
 * `insitu app deploy VERSION --provider P [--replicas N] [--wait]`: record the desired
 * deployment; with `--wait`, follow it until an agent runs every instance of it (or it
 * fails, crash-loops, or the timeout passes; a degraded deployment serves, but is not done).
 */
export async function runAppDeploy(
  versionId: string,
  options: RemoteOptions & { provider: string; replicas?: number; wait?: boolean; timeout: number; json?: boolean },
  io: CliIo,
): Promise<number> {
  const api = ApiClient.from(options, io);
  const providerId = await providerIdOf(api, options.provider);
  let deployment = await api.request<Deployment>('POST', '/api/v1/deployments', {
    versionId: await versionIdOf(api, versionId),
    providerId,
    ...(options.replicas ? { replicas: options.replicas } : {}),
  });
  if (!options.json) line(io.stderr, `… deployment ${deployment.id} of ${deployment.version} recorded`);
  if (options.wait) {
    let last = '';
    let current = deployment;
    const deadline = Date.now() + options.timeout * 1000;
    for (;;) {
      try {
        current = await api.request<Deployment>('GET', `/api/v1/deployments/${deployment.id}`);
      } catch (error) {
        // The deployment is recorded: a platform node restarting or a proxy dropping one
        // poll is no reason to give up following it (until the timeout).
        if (!(error instanceof InsituError) || error.isUserError || io.signal?.aborted || Date.now() >= deadline)
          throw error;
        if (!options.json) line(io.stderr, `… the platform did not answer (${error.message}); asking again`);
        await sleep(1000, io.signal ?? new AbortController().signal);
        continue;
      }
      const summary =
        current.agents
          .map((a) => `${a.agentId}: ${a.state} ${a.ready}/${a.desired}${a.reason ? ` (${a.reason})` : ''}`)
          .join('; ') || 'waiting for an agent';
      if (summary !== last && !options.json) line(io.stderr, `… ${summary}`);
      last = summary;
      // A crash loop does not heal by waiting: stop at once with the agent's reason.
      const broken = current.agents.find((a) => a.state === 'failed' || a.state === 'crash-looping');
      if (broken) {
        throw new InsituError(
          'INSITU_APP_UNAVAILABLE',
          `deployment ${deployment.id} of ${deployment.version} is ${broken.state} on agent ${broken.agentId}: ${broken.reason || 'no reason given'}`,
          {
            details: { deployment: current },
          },
        );
      }
      if (current.agents.some((a) => a.state === 'running' && a.ready > 0)) break;
      // Degraded (some instances serve, fewer than desired) is not done: wait for the rest,
      // up to the timeout; but an instance that crash-loops will not come by waiting.
      const stuck = current.agents.find((a) => a.state === 'degraded' && reportsCrashLoop(a));
      if (stuck) {
        throw new InsituError(
          'INSITU_NOT_READY',
          `deployment ${deployment.id} of ${deployment.version} is degraded on agent ${stuck.agentId}: ${stuck.ready} of ${stuck.desired} instances serve, the others will not start: ${stuck.reason}`,
          {
            details: { deployment: current },
          },
        );
      }
      if (Date.now() >= deadline) {
        throw new InsituError(
          'INSITU_NOT_READY',
          `deployment ${deployment.id} of ${deployment.version} is not running after ${options.timeout} s (${summary}); it stays recorded; remove it with: insitu app undeploy ${deployment.id}`,
          {
            details: { deployment: current },
          },
        );
      }
      await sleep(500, io.signal ?? new AbortController().signal);
    }
    deployment = current;
  }
  if (options.json) line(io.stdout, JSON.stringify(deployment));
  else
    line(
      io.stdout,
      `${deployment.id}: ${deployment.version} ${deployment.state}${deployment.agents.length ? `, ${deployment.agents.map((a) => `${a.agentId} ${a.state}`).join(', ')}` : ''}`,
    );
  return deployment.agents.some((a) => a.state === 'failed') ? 1 : 0;
}

/** `insitu app list [--org ORG]`. */
export async function runAppList(options: RemoteOptions & { org?: string; json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const apps = await listAll<{ id: string; orgId: string; name: string; description: string }>(
    api,
    '/api/v1/apps',
    options.org ? { org: await orgIdOf(api, options.org) } : {},
  );
  printItems(io, options.json, apps, {
    id: (a) => a.id,
    name: (a) => a.name,
    org: (a) => a.orgId,
    description: (a) => a.description,
  });
}

/** `insitu app versions APP [--org ORG]`: every version with its approvals. */
export async function runAppVersions(
  app: string,
  options: RemoteOptions & { org?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const versions = await listAll<Version & { createdAt: string }>(
    api,
    `/api/v1/apps/${await appIdOf(api, app, options.org)}/versions`,
  );
  printItems(io, options.json, versions, {
    id: (v) => v.id,
    version: (v) => v.version,
    state: (v) => v.state,
    approvals: (v) => v.approvals.map((a) => `${a.providerName}:${a.state}`),
    submitted: (v) => v.createdAt,
  });
}

interface Approval {
  id: string;
  versionId: string;
  appName: string;
  version: string;
  providerName: string;
  state: string;
  reason: string;
}

/** `insitu app approvals [--state S] [--of APP@V]`: approval requests addressed to your providers (and of your applications). */
export async function runAppApprovals(
  options: RemoteOptions & { state?: string; of?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const query: Record<string, string> = {};
  if (options.state) query.state = options.state;
  if (options.of) query.version = await versionIdOf(api, options.of);
  const approvals = await listAll<Approval>(api, '/api/v1/approvals', query);
  printItems(
    io,
    options.json,
    approvals,
    {
      id: (a) => a.id,
      app: (a) => `${a.appName}@${a.version}`,
      provider: (a) => a.providerName,
      state: (a) => a.state,
      reason: (a) => a.reason,
    },
    'no approval requests',
  );
}

/** `insitu app undeploy DEPLOYMENT`: stop it at the provider (the agents drain and stop its instances). */
export async function runAppUndeploy(
  deploymentId: string,
  options: RemoteOptions & { json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  await api.request('DELETE', `/api/v1/deployments/${encodeURIComponent(deploymentId)}`);
  const after = await api.request<Deployment>('GET', `/api/v1/deployments/${encodeURIComponent(deploymentId)}`);
  if (options.json) line(io.stdout, JSON.stringify(after));
  else line(io.stdout, `${after.id}: ${after.version} ${after.state}`);
}

interface OutputLine {
  at: string;
  instance: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

/**
 * `insitu app logs DEPLOYMENT [--lines N] [--follow]`: the application's own output,
 * streamed from the provider's agent, when the provider lets its developers read it
 * (`--allow` / `--deny`, for the provider, change that).
 */
export async function runAppLogs(
  deploymentId: string,
  options: RemoteOptions & { json?: boolean; lines?: number; follow?: boolean; allow?: boolean; deny?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const id = encodeURIComponent(deploymentId);
  if (options.allow || options.deny) {
    if (options.allow && options.deny) throw new InsituError('INSITU_USAGE', 'give --allow or --deny, not both');
    const after = await api.request<Deployment & { appLogs: boolean }>('PUT', `/api/v1/deployments/${id}/app-logs`, {
      enabled: options.allow === true,
    });
    if (options.json) line(io.stdout, JSON.stringify(after));
    else
      line(
        io.stdout,
        `${after.id}: the developers of the application ${after.appLogs ? 'may' : 'may not'} read its output`,
      );
    return;
  }
  const query = `lines=${options.lines ?? 100}${options.follow ? '&follow=true' : ''}`;
  await streamLines(api, api.token, `/api/v1/deployments/${id}/logs?${query}`, io.signal, (text) => {
    if (options.json) return line(io.stdout, text);
    const entry = JSON.parse(text) as OutputLine;
    line(entry.stream === 'stderr' ? io.stderr : io.stdout, `${entry.at} ${entry.instance} ${entry.line}`);
  });
}
