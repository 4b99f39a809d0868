import { ApiClient, type RemoteOptions } from '../api-client.js';
import { line, type CliIo } from '../io.js';

/** `insitu key create --org ORG --service S… [--name N] [--ttl SECONDS]`: the key is printed once. */
export async function runKeyCreate(options: RemoteOptions & { org: string; service: string[]; name: string; ttl?: number; json?: boolean }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const created = await api.request<{ id: string; key: string; prefix: string; services: string[]; expiresAt?: string }>('POST', '/api/v1/keys', {
    orgId: options.org,
    name: options.name,
    services: options.service,
    ...(options.ttl ? { ttlSeconds: options.ttl } : {}),
  });
  if (options.json) {
    line(io.stdout, JSON.stringify(created));
    return;
  }
  line(io.stdout, created.key);
  line(io.stderr, `key ${created.id} for ${created.services.join(', ')}${created.expiresAt ? `, expires ${created.expiresAt}` : ''}; shown once, only its hash is stored`);
}
