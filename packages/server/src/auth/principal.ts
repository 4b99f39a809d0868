import { InsituError, hashSecret, safeEqual } from '@insitu/core';
import type { Role, Store } from '@insitu/store';

/** A signed-in person, with every organisation they belong to and their roles there. */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  email: string;
  sessionId: string;
  /** Holds the admin role in the platform's own organisation. */
  platformAdmin: boolean;
  orgs: ReadonlyMap<string, { roles: ReadonlySet<Role>; status: 'active' | 'pending' | 'suspended' }>;
}

/** A provider's agent, authenticated by its long-lived credential. */
export interface AgentPrincipal {
  kind: 'agent';
  agentId: string;
  providerId: string;
  orgId: string;
}

/** A scraper holding the configured metrics token. */
export interface MetricsPrincipal {
  kind: 'metrics';
}

export type Principal = UserPrincipal | AgentPrincipal | MetricsPrincipal;

/** Who may call a route. */
export type AuthMode = 'public' | 'user' | 'agent' | 'user-or-agent' | 'metrics';

/** The bearer token of an `Authorization` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
  return match?.[1];
}

/**
 * Resolve a bearer token into a principal. Session tokens (`isu_ses_`) and agent
 * credentials (`isu_agt_`) are looked up by their SHA-256; nothing else is accepted.
 */
export async function resolvePrincipal(
  store: Store,
  token: string,
  metricsToken?: string,
): Promise<Principal | undefined> {
  if (metricsToken && safeEqual(token, metricsToken)) return { kind: 'metrics' };
  if (token.startsWith('isu_ses_')) {
    const session = await store.sessions.findLive(hashSecret(token));
    if (!session) return undefined;
    const user = await store.users.get(session.user_id);
    if (!user || user.status !== 'active') return undefined;
    const memberships = await store.users.memberships(user.id);
    const orgs = new Map<string, { roles: Set<Role>; status: 'active' | 'pending' | 'suspended' }>();
    let platformAdmin = false;
    for (const m of memberships) {
      const entry = orgs.get(m.orgId) ?? { roles: new Set<Role>(), status: m.orgStatus };
      entry.roles.add(m.role);
      orgs.set(m.orgId, entry);
      if (m.orgKind === 'platform' && m.role === 'admin') platformAdmin = true;
    }
    return { kind: 'user', userId: user.id, email: user.email, sessionId: session.id, platformAdmin, orgs };
  }
  if (token.startsWith('isu_agt_')) {
    const agent = await store.providers.findLiveAgent(hashSecret(token));
    if (!agent) return undefined;
    const provider = await store.providers.get(agent.provider_id);
    if (!provider) return undefined;
    return { kind: 'agent', agentId: agent.id, providerId: provider.id, orgId: provider.org_id };
  }
  return undefined;
}

/** Roles the user holds in `orgId`; an org admin holds them all. */
export function rolesIn(principal: UserPrincipal, orgId: string): ReadonlySet<Role> {
  const entry = principal.orgs.get(orgId);
  if (!entry) return new Set();
  return entry.roles.has('admin') ? new Set<Role>(['admin', 'provider', 'developer', 'user']) : entry.roles;
}

/** True when the user holds one of `roles` in `orgId` (platform admins hold every role). */
export function hasOrgRole(principal: UserPrincipal, orgId: string, roles: readonly Role[]): boolean {
  if (principal.platformAdmin) return true;
  const held = rolesIn(principal, orgId);
  return roles.some((role) => held.has(role));
}

/** True when the user belongs to `orgId` or administers the platform. */
export function canSeeOrg(principal: UserPrincipal, orgId: string): boolean {
  return principal.platformAdmin || principal.orgs.has(orgId);
}

/** Organisation ids whose private data the principal may see. */
export function visibleOrgIds(principal: Principal): string[] {
  if (principal.kind === 'user') return [...principal.orgs.keys()];
  if (principal.kind === 'agent') return [principal.orgId];
  return [];
}

/**
 * Require one of `roles` in `orgId`. Platform admins pass. A member without the role
 * gets 403; a non-member gets `notMember` (404 by default: the organisation's private
 * things are invisible to outsiders). With `active`, a pending or suspended
 * organisation gets `INSITU_ORG_NOT_ACTIVE`.
 */
export function requireOrgRole(
  principal: UserPrincipal,
  orgId: string,
  roles: readonly Role[],
  options: { active?: boolean; notMember?: InsituError } = {},
): void {
  if (principal.platformAdmin) return;
  const entry = principal.orgs.get(orgId);
  if (!entry) throw options.notMember ?? new InsituError('INSITU_NOT_FOUND', 'not found');
  const held = rolesIn(principal, orgId);
  if (!roles.some((role) => held.has(role))) {
    throw new InsituError('INSITU_FORBIDDEN', `this needs the ${roles.join(' or ')} role in the organisation`);
  }
  if (options.active && entry.status !== 'active') {
    throw new InsituError(
      'INSITU_ORG_NOT_ACTIVE',
      `the organisation is ${entry.status}; a platform administrator must approve it first`,
    );
  }
}

/** Require a platform administrator. */
export function requirePlatformAdmin(principal: UserPrincipal): void {
  if (!principal.platformAdmin) throw new InsituError('INSITU_FORBIDDEN', 'this needs a platform administrator');
}
