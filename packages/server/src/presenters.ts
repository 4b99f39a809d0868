import type { Dataset } from '@insitu/core';
import type { AgentRow, DatasetRecord, EnrolmentTokenRow, MemberView, OrgRow, ProviderRow, UserRow } from '@insitu/store';

/** Epoch milliseconds → ISO 8601. */
export const iso = (ms: number): string => new Date(ms).toISOString();

export function presentOrg(row: OrgRow) {
  return { id: row.id, name: row.name, displayName: row.display_name, kind: row.kind, status: row.status, createdAt: iso(Number(row.created_at)) };
}

export function presentUser(row: UserRow) {
  return { id: row.id, email: row.email, name: row.name, status: row.status, createdAt: iso(Number(row.created_at)) };
}

export function presentMember(view: MemberView) {
  return { user: presentUser(view.user), roles: view.roles };
}

export function presentProvider(row: ProviderRow) {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    displayName: row.display_name,
    description: row.description,
    createdAt: iso(Number(row.created_at)),
  };
}

export function tokenState(row: EnrolmentTokenRow, now: number): 'unused' | 'used' | 'expired' | 'revoked' {
  if (row.used_at !== null) return 'used';
  if (row.revoked_at !== null) return 'revoked';
  return Number(row.expires_at) <= now ? 'expired' : 'unused';
}

export function presentToken(row: EnrolmentTokenRow, now: number) {
  return {
    id: row.id,
    providerId: row.provider_id,
    note: row.note,
    state: tokenState(row, now),
    createdAt: iso(Number(row.created_at)),
    expiresAt: iso(Number(row.expires_at)),
    ...(row.used_at !== null ? { usedAt: iso(Number(row.used_at)) } : {}),
    ...(row.agent_id !== null ? { agentId: row.agent_id } : {}),
  };
}

export function presentAgent(row: AgentRow) {
  return {
    id: row.id,
    providerId: row.provider_id,
    name: row.name,
    hostname: row.hostname,
    version: row.version,
    state: row.revoked_at === null ? ('active' as const) : ('revoked' as const),
    createdAt: iso(Number(row.created_at)),
    ...(row.last_seen_at !== null ? { lastSeenAt: iso(Number(row.last_seen_at)) } : {}),
  };
}

export function presentDataset(record: DatasetRecord): Dataset {
  return {
    id: record.id,
    providerId: record.providerId,
    providerName: record.providerName,
    orgId: record.orgId,
    name: record.name,
    description: record.description,
    tags: record.tags,
    sourceKind: record.sourceKind,
    visibility: record.visibility,
    columns: record.columns,
    rowCount: record.rowCount,
    syncedAt: iso(record.syncedAt),
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}
