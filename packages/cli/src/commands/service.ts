import { InsituError } from '@insitu/core';
import { ApiClient, describeFetchError, remoteUrl, type RemoteOptions } from '../api-client.js';
import { readProfile } from '../profile.js';
import { line, printItems, type CliIo } from '../io.js';
import { appIdOf, listAll, orgIdOf, serviceIdOf } from '../refs.js';

/** `insitu service publish NAME --app APP [--access] [--rate] [--burst] [--quota]`. */
export async function runServicePublish(
  name: string,
  options: RemoteOptions & {
    app: string;
    org?: string;
    access?: 'public' | 'restricted';
    rate?: number;
    burst?: number;
    quota?: number;
    description?: string;
    json?: boolean;
  },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const service = await api.request<{
    id: string;
    name: string;
    url: string;
    versions: Array<{ version: string; running: boolean }>;
  }>('POST', '/api/v1/services', {
    name,
    appId: await appIdOf(api, options.app, options.org),
    ...(options.access ? { access: options.access } : {}),
    ...(options.rate ? { ratePerSecond: options.rate } : {}),
    ...(options.burst ? { burst: options.burst } : {}),
    ...(options.quota ? { dailyQuota: options.quota } : {}),
    ...(options.description ? { description: options.description } : {}),
  });
  if (options.json) line(io.stdout, JSON.stringify(service));
  else {
    line(io.stdout, `published ${service.name} (${service.id}) at ${service.url}/…`);
    for (const v of service.versions) line(io.stdout, `  ${v.version}: ${v.running ? 'running' : 'not running'}`);
  }
}

/**
 * `insitu service invoke NAME [PATH] --key K [--method M] [--data D] [--major N]`: call a
 * service through the gateway and print the answer; exit 1 when it is an error.
 */
export async function runServiceInvoke(
  name: string,
  path: string | undefined,
  options: RemoteOptions & { key?: string; method?: string; data?: string; major?: number; include?: boolean },
  io: CliIo,
): Promise<number> {
  // As with curl, -d without -X sends a POST: fetch refuses a GET with a body (a TypeError that used to be
  // reported as "cannot reach" the platform).
  const given = options.method ?? (options.data !== undefined ? 'POST' : 'GET');
  // fetch sends a method it does not know (`patch`) as typed; HTTP methods are case-sensitive and servers refuse the lower-case one.
  const method = given.toUpperCase();
  if (!/^[A-Z]{1,20}$/.test(method)) throw new InsituError('INSITU_USAGE', `-X ${given} is not an HTTP method`);
  if (options.data !== undefined && (method === 'GET' || method === 'HEAD'))
    throw new InsituError('INSITU_USAGE', `-X ${method} cannot send a body (-d): use -X POST, PUT or PATCH`);
  const key = options.key ?? io.env.INSITU_TOKEN;
  if (!key) throw new InsituError('INSITU_USAGE', 'invoke needs an API key: --key isu_key_…');
  // The same resolution as every other command: --url, INSITU_URL, the data dir's platform, the profile's last sign-in.
  const base = remoteUrl(options, io, readProfile(io, options.profile).url);
  const url = `${base}/s/${encodeURIComponent(name)}${options.major !== undefined ? `/v${options.major}` : ''}/${(path ?? '').replace(/^\/+/, '')}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(options.data !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.data !== undefined ? { body: options.data } : {}),
      signal: AbortSignal.timeout(600_000),
    });
  } catch (error) {
    throw new InsituError('INSITU_REMOTE', `cannot reach ${base}: ${describeFetchError(error)}`, { cause: error });
  }
  if (options.include) {
    line(io.stdout, `HTTP ${response.status}`);
    for (const [header, value] of response.headers) line(io.stdout, `${header}: ${value}`);
    line(io.stdout);
  }
  const body = Buffer.from(await response.arrayBuffer());
  io.stdout.write(body);
  if (body.length > 0 && body[body.length - 1] !== 10) line(io.stdout);
  return response.ok ? 0 : 1;
}

interface Service {
  id: string;
  name: string;
  orgId: string;
  access: string;
  url: string;
  versions: Array<{ version: string; running: boolean }>;
  limits: { ratePerSecond: number; burst: number; dailyQuota: number };
}

/** `insitu service list`: the services you may see (public, your own, granted to you). */
export async function runServiceList(options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const services = await listAll<Service>(api, '/api/v1/services');
  printItems(io, options.json, services, {
    id: (s) => s.id,
    name: (s) => s.name,
    access: (s) => s.access,
    running: (s) => s.versions.filter((v) => v.running).map((v) => v.version),
    limits: (s) => `${s.limits.ratePerSecond}/s burst ${s.limits.burst}, ${s.limits.dailyQuota}/day`,
    url: (s) => s.url,
  });
}

/** `insitu service unpublish NAME`: callers get 404 from then on; the deployments keep running. */
export async function runServiceUnpublish(
  name: string,
  options: RemoteOptions & { json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const id = await serviceIdOf(api, name);
  await api.request('DELETE', `/api/v1/services/${id}`);
  if (options.json) line(io.stdout, JSON.stringify({ id, name, unpublished: true }));
  else line(io.stdout, `unpublished ${name} (${id})`);
}

/** `insitu service grant NAME --org ORG [--revoke]`: let an organisation call a restricted service (or stop it). */
export async function runServiceGrant(
  name: string,
  options: RemoteOptions & { org: string; revoke?: boolean; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const id = await serviceIdOf(api, name);
  const orgId = await orgIdOf(api, options.org);
  if (options.revoke) await api.request('DELETE', `/api/v1/services/${id}/grants/${orgId}`);
  else await api.request('POST', `/api/v1/services/${id}/grants`, { orgId });
  const grants = await api.request<{ orgIds: string[] }>('GET', `/api/v1/services/${id}/grants`);
  if (options.json) line(io.stdout, JSON.stringify({ id, name, orgIds: grants.orgIds }));
  else
    line(
      io.stdout,
      `${name}: ${options.revoke ? 'grant withdrawn from' : 'granted to'} ${options.org}; granted now: ${grants.orgIds.join(', ') || 'none'}`,
    );
}
