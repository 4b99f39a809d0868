// Who is signed in, and what the navigation offers them.
import type { Me, Role } from './types.js';

export function rolesOf(me: Me): Set<Role> {
  const roles = new Set<Role>();
  for (const m of me.memberships) for (const r of m.roles) roles.add(r);
  // An organisation admin holds every role in it.
  if (roles.has('admin')) for (const r of ['provider', 'developer', 'user'] as const) roles.add(r);
  return roles;
}

export function can(me: Me, ...roles: Role[]): boolean {
  if (me.platformAdmin) return true;
  const held = rolesOf(me);
  return roles.some((r) => held.has(r));
}

/** Organisations where the user holds one of `roles` (all of them for platform admins). */
export function orgsWith(me: Me, ...roles: Role[]) {
  return me.memberships.filter(
    (m) => me.platformAdmin || m.roles.includes('admin') || roles.some((r) => m.roles.includes(r)),
  );
}

export interface NavItem {
  href: string;
  label: string;
  show: (me: Me) => boolean;
}

export const NAV: NavItem[] = [
  { href: '/catalog', label: 'Catalog', show: () => true },
  { href: '/apps', label: 'Applications', show: (me) => can(me, 'developer', 'provider') },
  { href: '/approvals', label: 'Approvals', show: (me) => can(me, 'provider') },
  { href: '/deployments', label: 'Deployments', show: (me) => can(me, 'developer', 'provider') },
  { href: '/services', label: 'Services', show: () => true },
  { href: '/keys', label: 'API keys', show: () => true },
  { href: '/providers', label: 'Providers', show: (me) => can(me, 'provider') },
  { href: '/audit', label: 'Audit', show: () => true },
  { href: '/orgs', label: 'Organisations', show: (me) => me.platformAdmin },
  { href: '/operations', label: 'Operations', show: (me) => me.platformAdmin },
];
