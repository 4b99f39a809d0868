import { InsituError } from '@insitu/core';
import { ApiClient, type RemoteOptions } from '../api-client.js';
import { platformUrl } from './status.js';
import { line, type CliIo } from '../io.js';

/** `insitu service publish NAME --app APP [--access] [--rate] [--burst] [--quota]`. */
export async function runServicePublish(
  name: string,
  options: RemoteOptions & { app: string; access?: 'public' | 'restricted'; rate?: number; burst?: number; quota?: number; description?: string; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const service = await api.request<{ id: string; name: string; url: string; versions: Array<{ version: string; running: boolean }> }>('POST', '/api/v1/services', {
    name,
    appId: options.app,
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
  options: RemoteOptions & { key?: string; method: string; data?: string; major?: number; include?: boolean },
  io: CliIo,
): Promise<number> {
  const key = options.key ?? io.env.INSITU_TOKEN;
  if (!key) throw new InsituError('INSITU_USAGE', 'invoke needs an API key: --key isu_key_…');
  const base = platformUrl(options, io);
  const url = `${base}/s/${encodeURIComponent(name)}${options.major !== undefined ? `/v${options.major}` : ''}/${(path ?? '').replace(/^\/+/, '')}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method,
      headers: { authorization: `Bearer ${key}`, ...(options.data !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(options.data !== undefined ? { body: options.data } : {}),
      signal: AbortSignal.timeout(600_000),
    });
  } catch (error) {
    throw new InsituError('INSITU_REMOTE', `cannot reach ${base}: ${(error as Error).message}`, { cause: error });
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
