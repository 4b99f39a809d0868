import { ApiClient, type RemoteOptions } from '../api-client.js';
import { line, printItems, type CliIo } from '../io.js';
import { listAll, orgIdOf } from '../refs.js';

/** `insitu key create --org ORG --service S… [--name N] [--ttl SECONDS]`: the key is printed once. */
export async function runKeyCreate(
  options: RemoteOptions & { org: string; service: string[]; name: string; ttl?: number; json?: boolean },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const created = await api.request<{
    id: string;
    key: string;
    prefix: string;
    services: string[];
    expiresAt?: string;
  }>('POST', '/api/v1/keys', {
    orgId: await orgIdOf(api, options.org),
    name: options.name,
    services: options.service,
    ...(options.ttl ? { ttlSeconds: options.ttl } : {}),
  });
  if (options.json) {
    line(io.stdout, JSON.stringify(created));
    return;
  }
  line(io.stdout, created.key);
  line(
    io.stderr,
    `key ${created.id} for ${created.services.join(', ')}${created.expiresAt ? `, expires ${created.expiresAt}` : ''}; shown once, only its hash is stored`,
  );
}

interface Key {
  id: string;
  orgId: string;
  name: string;
  prefix: string;
  services: string[];
  state: string;
  expiresAt?: string;
  createdAt: string;
}

/**
 * `insitu key list [--org ORG]`: your organisations' keys without secrets, each with its last
 * use: the latest hour in which it made a call (from the metered usage of the last year).
 */
export async function runKeyList(options: RemoteOptions & { org?: string; json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const keys = await listAll<Key>(api, '/api/v1/keys', options.org ? { org: await orgIdOf(api, options.org) } : {});
  const from = new Date(Date.now() - 365 * 86_400_000).toISOString();
  const usage = await api.request<{ items: Array<{ period: string; keyId?: string; calls: number }> }>(
    'GET',
    `/api/v1/usage?${new URLSearchParams({ granularity: 'hour', groupBy: 'key', from }).toString()}`,
  );
  const lastUse = new Map<string, string>();
  for (const item of usage.items) {
    if (!item.keyId || item.calls === 0) continue;
    const seen = lastUse.get(item.keyId);
    if (!seen || seen < item.period) lastUse.set(item.keyId, item.period);
  }
  const rows = keys.map((k) => ({ ...k, lastUsedHour: lastUse.get(k.id) ?? null }));
  printItems(io, options.json, rows, {
    id: (k) => k.id,
    name: (k) => k.name,
    prefix: (k) => k.prefix,
    state: (k) => k.state,
    services: (k) => k.services,
    'last used (hour)': (k) => k.lastUsedHour ?? 'never',
    expires: (k) => k.expiresAt,
  });
}

/** `insitu key revoke KEY_ID`: calls with it get 401 at once. */
export async function runKeyRevoke(id: string, options: RemoteOptions & { json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  await api.request('DELETE', `/api/v1/keys/${encodeURIComponent(id)}`);
  if (options.json) line(io.stdout, JSON.stringify({ id, revoked: true }));
  else line(io.stdout, `revoked ${id}`);
}
