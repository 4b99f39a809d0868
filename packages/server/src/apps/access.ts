import type { AppRow, AppVersionRow, ProviderRow, Repositories, Role } from '@insitu/store';
import { canSeeOrg, requireOrgRole, rolesIn, type UserPrincipal } from '../auth/principal.js';
import { notFound } from '../errors.js';

/** The app if the user belongs to its organisation (or administers the platform); 404 otherwise. */
export async function visibleApp(repos: Repositories, principal: UserPrincipal, appId: string): Promise<AppRow> {
  const app = await repos.apps.get(appId);
  if (!app || !canSeeOrg(principal, app.org_id)) throw notFound('application', appId);
  return app;
}

/** Require one of `roles` in the app's organisation (403 for members without it). */
export function requireAppRole(principal: UserPrincipal, app: AppRow, roles: readonly Role[], active = false): void {
  requireOrgRole(principal, app.org_id, roles, {
    active,
    notMember: notFound('application', app.id),
  });
}

/** A version of the app; 404 if it belongs to another app. */
export async function versionOf(repos: Repositories, app: AppRow, versionId: string): Promise<AppVersionRow> {
  const version = await repos.apps.getVersion(versionId);
  if (!version || version.app_id !== app.id) throw notFound('version', `${versionId} of ${app.name}`);
  return version;
}

/** Ids of the providers whose organisation the user holds the provider role in. */
export async function providersOf(repos: Repositories, principal: UserPrincipal): Promise<ProviderRow[]> {
  const out: ProviderRow[] = [];
  for (const orgId of principal.orgs.keys()) {
    if (!rolesIn(principal, orgId).has('provider')) continue;
    out.push(...(await repos.providers.list({ orgId, limit: 1000, offset: 0 })));
  }
  return out;
}

/** Provider names by id, for presenting. */
export async function providerNames(repos: Repositories, ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of new Set(ids)) {
    const row = await repos.providers.get(id);
    out.set(id, row?.name ?? id);
  }
  return out;
}
