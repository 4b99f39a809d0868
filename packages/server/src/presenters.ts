import { stricterPolicy, type Dataset, type JobOutputPolicy } from '@insitu/core';
import type {
  AgentRow,
  ApiKeyRow,
  AppRow,
  AppVersionRow,
  ApprovalRow,
  AuditRow,
  BundleFile,
  DatasetRecord,
  DeploymentAgentRow,
  DeploymentRow,
  EnrolmentTokenRow,
  EventRow,
  MemberView,
  OrgRow,
  ProviderRow,
  UserRow,
} from '@insitu/store';

/** Epoch milliseconds → ISO 8601. */
export const iso = (ms: number): string => new Date(ms).toISOString();

export function presentOrg(row: OrgRow) {
  return {
    id: row.id,
    name: row.name,
    displayName: row.display_name,
    kind: row.kind,
    status: row.status,
    createdAt: iso(Number(row.created_at)),
  };
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
    policy: stricterPolicy(record.agentPolicy, record.platformPolicy),
    agentPolicy: record.agentPolicy,
    platformPolicy: record.platformPolicy,
    syncedAt: iso(record.syncedAt),
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}

export function presentApp(row: AppRow) {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    description: row.description,
    createdAt: iso(Number(row.created_at)),
  };
}

export function presentApprovalSummary(row: ApprovalRow, providerName: string) {
  return {
    id: row.id,
    providerId: row.provider_id,
    providerName,
    state: row.state,
    reason: row.reason,
    ...(row.decided_at !== null ? { decidedAt: iso(Number(row.decided_at)) } : {}),
  };
}

export function presentVersion(
  row: AppVersionRow,
  app: AppRow,
  approvals: Array<{ row: ApprovalRow; providerName: string }>,
  datasets: Array<{ providerId: string; providerName: string; dataset: string }>,
) {
  return {
    id: row.id,
    appId: row.app_id,
    appName: app.name,
    version: row.version,
    digest: row.digest,
    size: Number(row.size),
    state: row.state,
    manifest: JSON.parse(row.manifest) as unknown,
    files: JSON.parse(row.files) as BundleFile[],
    datasets,
    approvals: approvals.map((a) => presentApprovalSummary(a.row, a.providerName)),
    createdAt: iso(Number(row.created_at)),
  };
}

export function presentApproval(row: ApprovalRow, version: AppVersionRow, app: AppRow, providerName: string) {
  return {
    id: row.id,
    versionId: row.version_id,
    appId: app.id,
    appName: app.name,
    appOrgId: app.org_id,
    version: version.version,
    digest: row.digest,
    providerId: row.provider_id,
    providerName,
    state: row.state,
    reason: row.reason,
    createdAt: iso(Number(row.created_at)),
    ...(row.decided_at !== null ? { decidedAt: iso(Number(row.decided_at)) } : {}),
    ...(row.job_policy !== null ? { jobPolicy: JSON.parse(row.job_policy) as JobOutputPolicy } : {}),
  };
}

export function presentDeployment(row: DeploymentRow, version: string, agents: DeploymentAgentRow[]) {
  return {
    id: row.id,
    appId: row.app_id,
    versionId: row.version_id,
    version,
    providerId: row.provider_id,
    replicas: row.replicas,
    state: row.state,
    appLogs: Number(row.app_logs) === 1,
    agents: agents.map((a) => ({
      agentId: a.agent_id,
      state: a.state,
      reason: a.reason,
      ready: a.ready,
      desired: a.desired,
      updatedAt: iso(Number(a.updated_at)),
    })),
    createdAt: iso(Number(row.created_at)),
    updatedAt: iso(Number(row.updated_at)),
  };
}

export function presentKey(row: ApiKeyRow, now: number) {
  const state: 'active' | 'expired' | 'revoked' =
    row.revoked_at !== null
      ? 'revoked'
      : row.expires_at !== null && Number(row.expires_at) <= now
        ? 'expired'
        : 'active';
  return {
    id: row.id,
    orgId: row.org_id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    services: JSON.parse(row.services) as string[],
    state: state,
    ...(row.expires_at !== null ? { expiresAt: iso(Number(row.expires_at)) } : {}),
    createdAt: iso(Number(row.created_at)),
  };
}

export function presentAudit(row: AuditRow) {
  return {
    seq: Number(row.seq),
    id: row.id,
    ts: iso(Number(row.ts)),
    requestId: row.request_id,
    keyId: row.key_id,
    callerOrgId: row.caller_org_id,
    serviceId: row.service_id,
    serviceName: row.service_name,
    version: row.version,
    providerId: row.provider_id,
    agentId: row.agent_id,
    method: row.method,
    status: Number(row.status),
    errorCode: row.error_code,
    bytesIn: Number(row.bytes_in),
    bytesOut: Number(row.bytes_out),
    durationMs: Number(row.duration_ms),
    hash: row.hash,
    prevHash: row.prev_hash,
  };
}

export function presentEvent(row: EventRow) {
  return {
    seq: Number(row.seq),
    id: row.id,
    ts: iso(Number(row.ts)),
    ...(row.org_id !== null ? { orgId: row.org_id } : {}),
    kind: row.kind,
    subject: row.subject,
    message: row.message,
    data: JSON.parse(row.data) as unknown,
  };
}
