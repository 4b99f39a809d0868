import type { InsituError } from '@insitu/core';
import { AppRepository, type Repositories, type ServiceRow } from '@insitu/store';
import { canSeeOrg, type UserPrincipal } from '../auth/principal.js';
import { NameResolver } from '../name-resolver.js';
import { notFound } from '../errors.js';

/**
 * The one answer for a service a user may not see: the same code, status and message as
 * for a name nobody uses, so that no answer tells an outsider which restricted names exist.
 */
export function serviceNotFound(ref: string): InsituError {
  return notFound('service', ref);
}

/** True when the user may see the service: public, their organisation's, or granted to one of their organisations. */
export async function mayCallOrOwn(repos: Repositories, principal: UserPrincipal, row: ServiceRow): Promise<boolean> {
  if (row.access === 'public' || canSeeOrg(principal, row.org_id)) return true;
  for (const orgId of principal.orgs.keys()) if (await repos.services.isGranted(row.id, orgId)) return true;
  return false;
}

/** The service `id` if the user may see it ({@link mayCallOrOwn}); {@link serviceNotFound} otherwise. */
export async function visibleService(repos: Repositories, principal: UserPrincipal, id: string): Promise<ServiceRow> {
  const row = await repos.services.get(id);
  if (!row || !(await mayCallOrOwn(repos, principal, row))) throw serviceNotFound(id);
  return row;
}

/**
 * The service `ref` (id or name) whose records the user may read: one they may see
 * ({@link mayCallOrOwn}), or one whose application reads a dataset of a provider of
 * theirs (they approved it, so they know it). Any other service answers exactly like an
 * unknown name.
 */
export async function serviceForRecords(
  repos: Repositories,
  principal: UserPrincipal,
  ref: string,
  providerIds: ReadonlySet<string>,
): Promise<ServiceRow> {
  const row = await new NameResolver(repos).service(ref);
  if (!row) throw serviceNotFound(ref);
  if (await mayCallOrOwn(repos, principal, row)) return row;
  if (providerIds.size > 0) {
    for (const version of await repos.apps.listVersions(row.app_id, { limit: 1000, offset: 0 })) {
      if (AppRepository.datasetsOf(version).some((d) => providerIds.has(d.providerId))) return row;
    }
  }
  throw serviceNotFound(ref);
}
