import { InsituError, describeOutputPolicy, refKind, type OutputPolicy } from '@insitu/core';
import { ApiClient, type RemoteOptions } from '../api-client.js';
import { line, printItems, type CliIo } from '../io.js';
import { listAll, orgIdOf, providerIdOf } from '../refs.js';

type Json = { json?: boolean };

interface Provider {
  id: string;
  orgId: string;
  name: string;
  displayName: string;
  description: string;
}

interface Dataset {
  id: string;
  providerName: string;
  name: string;
  description: string;
  tags: string[];
  sourceKind: string;
  rowCount: number | null;
  columns: Array<{ name: string; type: string; nullable?: boolean; description?: string }>;
  /** The effective output policy; absent from platforms older than issue 18. */
  policy?: OutputPolicy;
  syncedAt: string;
}

/** `insitu provider create NAME --org ORG [--display-name D] [--description D]`. */
export async function runProviderCreate(
  name: string,
  options: RemoteOptions & Json & { org: string; displayName?: string; description?: string },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const provider = await api.request<Provider>('POST', '/api/v1/providers', {
    orgId: await orgIdOf(api, options.org),
    name,
    ...(options.displayName ? { displayName: options.displayName } : {}),
    ...(options.description ? { description: options.description } : {}),
  });
  if (options.json) line(io.stdout, JSON.stringify(provider));
  else
    line(
      io.stdout,
      `created provider ${provider.name} (${provider.id}); enrol its agent with: insitu agent token ${provider.name}`,
    );
}

/** `insitu provider list [--org ORG]`. */
export async function runProviderList(options: RemoteOptions & Json & { org?: string }, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  const providers = await listAll<Provider>(
    api,
    '/api/v1/providers',
    options.org ? { org: await orgIdOf(api, options.org) } : {},
  );
  printItems(io, options.json, providers, {
    id: (p) => p.id,
    name: (p) => p.name,
    org: (p) => p.orgId,
    'display name': (p) => p.displayName,
  });
}

/** `insitu agent token PROVIDER [--ttl SECONDS] [--note N]`: a single-use enrolment token, printed once. */
export async function runAgentToken(
  provider: string,
  options: RemoteOptions & Json & { ttl?: number; note?: string },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const created = await api.request<{ id: string; token: string; expiresAt: string; providerId: string }>(
    'POST',
    '/api/v1/tokens',
    {
      providerId: await providerIdOf(api, provider),
      ...(options.ttl ? { ttlSeconds: options.ttl } : {}),
      ...(options.note ? { note: options.note } : {}),
    },
  );
  if (options.json) {
    line(io.stdout, JSON.stringify(created));
    return;
  }
  line(io.stdout, created.token);
  line(
    io.stderr,
    `enrolment token ${created.id} for ${provider}, single use, expires ${created.expiresAt}; shown once. On the provider's machine:`,
  );
  line(io.stderr, `  insitu agent --platform ${api.url} --token ${created.token} --config agent.yaml`);
}

/** `insitu catalog search [WORDS] [--tag T…] [--provider P] [--column C]`. */
export async function runCatalogSearch(
  words: string | undefined,
  options: RemoteOptions & Json & { tag: string[]; provider?: string; column?: string; limit: number },
  io: CliIo,
): Promise<void> {
  const api = ApiClient.from(options, io);
  const params = new URLSearchParams({ limit: String(options.limit) });
  if (words) params.set('q', words);
  for (const tag of options.tag) params.append('tag', tag);
  if (options.provider) params.set('provider', options.provider);
  if (options.column) params.set('column', options.column);
  const page = await api.request<{ items: Dataset[] }>('GET', `/api/v1/datasets?${params.toString()}`);
  printItems(
    io,
    options.json,
    page.items,
    {
      dataset: (d) => `${d.providerName}/${d.name}`,
      id: (d) => d.id,
      rows: (d) => d.rowCount,
      tags: (d) => d.tags,
      description: (d) => (d.description.length > 60 ? `${d.description.slice(0, 59)}…` : d.description),
    },
    'no dataset matches',
  );
}

/** `insitu catalog show PROVIDER/DATASET | ds_…`: the schema, never rows. */
export async function runCatalogShow(ref: string, options: RemoteOptions & Json, io: CliIo): Promise<void> {
  const api = ApiClient.from(options, io);
  let dataset: Dataset | undefined;
  if (refKind(ref, 'ds') === 'id') dataset = await api.request<Dataset>('GET', `/api/v1/datasets/${ref}`);
  else {
    const slash = ref.indexOf('/');
    if (slash <= 0)
      throw new InsituError(
        'INSITU_USAGE',
        `${ref}: give PROVIDER/DATASET (e.g. demo-retail/sales) or a dataset id (ds_…)`,
      );
    const [provider, name] = [ref.slice(0, slash), ref.slice(slash + 1)];
    dataset = (await listAll<Dataset>(api, '/api/v1/datasets', { provider })).find((d) => d.name === name);
    if (!dataset)
      throw new InsituError('INSITU_DATASET_NOT_FOUND', `no dataset ${name} of provider ${provider} that you may see`);
  }
  if (options.json) {
    line(io.stdout, JSON.stringify(dataset));
    return;
  }
  line(
    io.stdout,
    `${dataset.providerName}/${dataset.name} (${dataset.id}), ${dataset.sourceKind}, ${dataset.rowCount ?? 'unknown'} rows, synced ${dataset.syncedAt}`,
  );
  if (dataset.description) line(io.stdout, `  ${dataset.description}`);
  if (dataset.tags.length) line(io.stdout, `  tags: ${dataset.tags.join(', ')}`);
  // Older platforms send no policy: say nothing rather than "none".
  if (dataset.policy) {
    const clauses = describeOutputPolicy(dataset.policy);
    line(io.stdout, `  output policy: ${clauses.length ? clauses.join('; ') : 'none'}`);
  }
  printItems(io, false, dataset.columns, {
    column: (c) => c.name,
    type: (c) => c.type,
    description: (c) => c.description,
  });
}
