import { InsituError, refKind, type ErrorCode, type IdPrefix } from '@insitu/core';
import type { ApiClient } from './api-client.js';

type Named = { id: string; name: string };

/** Every item of a paged list (cursor pages of 100), up to `max` items. */
export async function listAll<T>(
  api: ApiClient,
  path: string,
  query: Record<string, string> = {},
  max = 10_000,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const params = new URLSearchParams({ ...query, limit: '100', ...(cursor ? { cursor } : {}) });
    const page = await api.request<{ items: T[]; nextCursor?: string }>('GET', `${path}?${params.toString()}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return items;
}

/**
 * Names are accepted wherever ids are: an id-shaped value is an id (core's one rule,
 * `refKind`), anything else a name, resolved here once through the API's lists.
 */
async function byName<T extends { id: string; name: string }>(
  api: ApiClient,
  ref: string,
  prefix: IdPrefix,
  what: string,
  notFound: ErrorCode,
  list: () => Promise<T[]>,
): Promise<string> {
  const kind = refKind(ref, prefix);
  if (kind === 'id') return ref;
  if (kind === 'foreign-id')
    throw new InsituError('INSITU_USAGE', `${ref} is not a ${what} id (those start with ${prefix}_)`);
  const found = (await list()).filter((item) => item.name === ref);
  if (found.length > 1)
    throw new InsituError(
      'INSITU_USAGE',
      `${found.length} ${what}s are named ${ref}: give the id (${found.map((f) => f.id).join(', ')}) or --org`,
    );
  const id = found[0]?.id;
  if (!id) throw new InsituError(notFound, `no ${what} ${ref} that you may see`);
  return id;
}

export const orgIdOf = (api: ApiClient, ref: string): Promise<string> =>
  byName(api, ref, 'org', 'organisation', 'INSITU_ORG_NOT_FOUND', () => listAll<Named>(api, '/api/v1/orgs'));

export const providerIdOf = (api: ApiClient, ref: string): Promise<string> =>
  byName(api, ref, 'prv', 'provider', 'INSITU_PROVIDER_NOT_FOUND', () =>
    listAll<Named>(api, '/api/v1/providers', { name: ref }),
  );

export const serviceIdOf = (api: ApiClient, ref: string): Promise<string> =>
  byName(api, ref, 'svc', 'service', 'INSITU_SERVICE_NOT_FOUND', () => listAll<Named>(api, '/api/v1/services'));

export async function appIdOf(api: ApiClient, ref: string, org?: string): Promise<string> {
  const query = org ? { org: await orgIdOf(api, org), name: ref } : undefined;
  return byName(api, ref, 'app', 'application', 'INSITU_APP_NOT_FOUND', () =>
    listAll<Named>(api, '/api/v1/apps', query),
  );
}

/** A version: its id, or `APP@VERSION` (an application name or id, then the semver). */
export async function versionIdOf(api: ApiClient, ref: string, org?: string): Promise<string> {
  if (refKind(ref, 'ver') === 'id') return ref;
  const at = ref.lastIndexOf('@');
  if (at <= 0)
    throw new InsituError(
      'INSITU_USAGE',
      `${ref}: give a version id (ver_…) or APP@VERSION, e.g. sales-insights@1.0.0`,
    );
  const appId = await appIdOf(api, ref.slice(0, at), org);
  const wanted = ref.slice(at + 1);
  const versions = await listAll<{ id: string; version: string }>(api, `/api/v1/apps/${appId}/versions`);
  const found = versions.find((v) => v.version === wanted);
  if (!found)
    throw new InsituError(
      'INSITU_VERSION_NOT_FOUND',
      `${ref.slice(0, at)} has no version ${wanted} (it has ${versions.map((v) => v.version).join(', ') || 'none'})`,
    );
  return found.id;
}
