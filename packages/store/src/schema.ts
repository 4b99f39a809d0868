import type { Generated, Insertable, Selectable } from 'kysely';

/**
 * The platform database, as Kysely sees it. Times are epoch milliseconds (BIGINT),
 * flags are 0/1 integers and lists are JSON text, so both dialects store the same values.
 */
export interface Database {
  orgs: OrgsTable;
  users: UsersTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  providers: ProvidersTable;
  enrolment_tokens: EnrolmentTokensTable;
  agents: AgentsTable;
  datasets: DatasetsTable;
  dataset_tags: DatasetTagsTable;
  dataset_columns: DatasetColumnsTable;
  /** SQLite only: FTS5 index, rowid = datasets.seq. */
  dataset_fts: DatasetFtsTable;
  /** SQLite only: FTS5 index without descriptions, rowid = datasets.seq. */
  dataset_fts_near: Omit<DatasetFtsTable, 'description'>;
  /** MariaDB only: FULLTEXT documents, keyed by datasets.seq. */
  dataset_search: DatasetSearchTable;
  apps: AppsTable;
  app_versions: AppVersionsTable;
  blobs: BlobsTable;
  blob_chunks: BlobChunksTable;
  approvals: ApprovalsTable;
  deployments: DeploymentsTable;
  deployment_agents: DeploymentAgentsTable;
  services: ServicesTable;
  service_grants: ServiceGrantsTable;
  api_keys: ApiKeysTable;
  usage_hourly: UsageHourlyTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  events: EventsTable;
  jobs: JobsTable;
  job_results: JobResultsTable;
  job_usage_hourly: JobUsageHourlyTable;
  privacy_budget: PrivacyBudgetTable;
}

export interface AppsTable {
  id: string;
  org_id: string;
  name: string;
  description: string;
  created_by: string;
  created_at: number;
  updated_at: number;
}

/** pending: waiting for approvals; approved: every provider approved this digest; rejected: one rejected. */
export type VersionState = 'pending' | 'approved' | 'rejected';

export interface AppVersionsTable {
  id: string;
  app_id: string;
  version: string;
  major: number;
  digest: string;
  size: number;
  manifest: string;
  files: string;
  /**
   * JSON list of `ResolvedDataset` (core): the manifest's datasets resolved to provider
   * ids at submission. NULL only for a row written by a node that predates the column,
   * read as "no dataset" (the application may read nothing until resubmitted).
   */
  datasets: string | null;
  state: VersionState;
  submitted_by: string;
  created_at: number;
}

export interface BlobsTable {
  digest: string;
  size: number;
  chunks: number;
  created_at: number;
}

export interface BlobChunksTable {
  digest: string;
  chunk: number;
  data: Buffer;
}

export interface ApprovalsTable {
  id: string;
  version_id: string;
  provider_id: string;
  digest: string;
  state: 'pending' | 'approved' | 'rejected';
  reason: string;
  decided_by: string | null;
  decided_at: number | null;
  created_at: number;
  /** JSON: what leaves of this version's jobs at this provider (core's JobOutputPolicySchema); migration 009. */
  job_policy: string | null;
}

/** active: desired; draining: replaced by a newer deployment, kept until that one runs; removed: not desired. */
export type DeploymentState = 'active' | 'draining' | 'removed';

export interface DeploymentsTable {
  id: string;
  app_id: string;
  version_id: string;
  provider_id: string;
  replicas: number;
  state: DeploymentState;
  /** 1: the application's developers may read its output (the provider decides); 0: not. */
  app_logs: number;
  created_by: string;
  created_at: number;
  updated_at: number;
}

/** What one agent reports for one deployment. */
export type InstanceState = 'pending' | 'starting' | 'running' | 'degraded' | 'crash-looping' | 'failed' | 'stopped';

export interface DeploymentAgentsTable {
  deployment_id: string;
  agent_id: string;
  state: InstanceState;
  reason: string;
  ready: number;
  desired: number;
  updated_at: number;
}

export interface ServicesTable {
  id: string;
  name: string;
  org_id: string;
  app_id: string;
  description: string;
  access: 'public' | 'restricted';
  rate_per_second: number;
  burst: number;
  daily_quota: number;
  max_request_bytes: number;
  max_response_bytes: number;
  timeout_ms: number;
  created_at: number;
  updated_at: number;
}

export interface ServiceGrantsTable {
  service_id: string;
  org_id: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  user_id: string;
  name: string;
  key_hash: string;
  prefix: string;
  services: string;
  expires_at: number | null;
  revoked_at: number | null;
  created_at: number;
}

export interface UsageHourlyTable {
  hour: number;
  key_id: string;
  service_id: string;
  version: string;
  status_class: string;
  calls: number;
  bytes_in: number;
  bytes_out: number;
  duration_ms: number;
  /** Calls per latency bucket (latency-histogram.ts), lat_0 … lat_19. */
  [latency: `lat_${number}`]: number;
}

export interface AuditLogTable {
  seq: Generated<number>;
  id: string;
  ts: number;
  request_id: string;
  key_id: string;
  caller_org_id: string;
  service_id: string;
  service_org_id: string;
  service_name: string;
  version: string;
  provider_id: string;
  agent_id: string;
  method: string;
  status: number;
  error_code: string;
  bytes_in: number;
  bytes_out: number;
  duration_ms: number;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

export interface EventsTable {
  seq: Generated<number>;
  id: string;
  ts: number;
  org_id: string | null;
  kind: string;
  subject: string;
  message: string;
  data: string;
}

export interface OrgsTable {
  id: string;
  name: string;
  display_name: string;
  kind: 'platform' | 'member';
  status: 'active' | 'pending' | 'suspended';
  created_at: number;
  updated_at: number;
}

export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  status: 'active' | 'disabled';
  created_at: number;
  updated_at: number;
}

export interface MembershipsTable {
  org_id: string;
  user_id: string;
  role: 'admin' | 'provider' | 'developer' | 'user';
  created_at: number;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export interface ProvidersTable {
  id: string;
  org_id: string;
  name: string;
  display_name: string;
  description: string;
  created_at: number;
  updated_at: number;
}

export interface EnrolmentTokensTable {
  id: string;
  provider_id: string;
  token_hash: string;
  note: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  agent_id: string | null;
  revoked_at: number | null;
}

export interface AgentsTable {
  id: string;
  provider_id: string;
  name: string;
  credential_hash: string;
  hostname: string;
  version: string;
  created_at: number;
  last_seen_at: number | null;
  revoked_at: number | null;
}

export interface DatasetsTable {
  seq: Generated<number>;
  id: string;
  provider_id: string;
  org_id: string;
  name: string;
  description: string;
  tags: string;
  source_kind: string;
  visibility: 'public' | 'org';
  columns: string;
  row_count: number | null;
  /** JSON `OutputPolicy` from the agent's config (migration 005); null: none. */
  agent_policy: string | null;
  /** JSON `OutputPolicy` set on the platform (migration 005); null: none. */
  platform_policy: string | null;
  synced_at: number;
  created_at: number;
  updated_at: number;
}

export interface DatasetTagsTable {
  seq: number;
  tag: string;
}

export interface DatasetColumnsTable {
  seq: number;
  name_lc: string;
}

export interface DatasetFtsTable {
  rowid: number;
  name: string;
  tags: string;
  columns: string;
  description: string;
  meta: string;
}

export interface DatasetSearchTable {
  seq: number;
  name_norm: string;
  name_doc: string;
  ntc_doc: string;
  doc: string;
}

export type OrgRow = Selectable<OrgsTable>;
export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type ProviderRow = Selectable<ProvidersTable>;
export type EnrolmentTokenRow = Selectable<EnrolmentTokensTable>;
export type AgentRow = Selectable<AgentsTable>;
export type DatasetRowRaw = Selectable<DatasetsTable>;
export type NewOrg = Insertable<OrgsTable>;
export type Role = MembershipsTable['role'];
export type AppRow = Selectable<AppsTable>;
export type AppVersionRow = Selectable<AppVersionsTable>;
export type ApprovalRow = Selectable<ApprovalsTable>;
export type DeploymentRow = Selectable<DeploymentsTable>;
export type DeploymentAgentRow = Selectable<DeploymentAgentsTable>;
export type ServiceRow = Selectable<ServicesTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type UsageRow = Selectable<UsageHourlyTable>;
export type AuditRow = Selectable<AuditLogTable>;
export type EventRow = Selectable<EventsTable>;
export const ROLES: readonly Role[] = ['admin', 'provider', 'developer', 'user'];

export type JobStateColumn = 'queued' | 'running' | 'succeeded' | 'failed' | 'refused' | 'cancelled';

export interface JobsTable {
  id: string;
  /** The submitting (consumer) organisation. */
  org_id: string;
  app_id: string;
  version_id: string;
  provider_id: string;
  /** JSON text. */
  args: string;
  state: JobStateColumn;
  /** The state in words. */
  reason: string;
  agent_id: string | null;
  exit_code: number | null;
  /** JSON list of output lines the provider let out, or null when it did not. */
  logs: string | null;
  wall_time_ms: number;
  created_by: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  /** When its results are swept (set when it ends). */
  expires_at: number | null;
  updated_at: number;
  /** CPU time the agent measured (ms); null when it measured none (migration 008). */
  cpu_ms: number | null;
}
export type JobRow = Selectable<JobsTable>;

/** Ended jobs summed per hour, consumer organisation, provider, version and final state (migration 008). */
export interface JobUsageHourlyTable {
  hour: number;
  org_id: string;
  provider_id: string;
  app_id: string;
  version_id: string;
  state: string;
  runs: number;
  wall_ms: number;
  /** CPU time of the runs that measured it; `cpu_runs` says how many did. */
  cpu_ms: number;
  cpu_runs: number;
  result_files: number;
  result_bytes: number;
  args_bytes: number;
}

export interface JobResultsTable {
  job_id: string;
  name: string;
  size: number;
  /** sha256 hex of the bytes. */
  digest: string;
  /** The bytes (single node), or null when they are in the results directory. */
  data: Buffer | null;
  created_at: number;
}
export type JobResultRow = Selectable<JobResultsTable>;

/** Epsilon spent per provider, budget key and dataset, over all the provider's agents (migration 010). */
export interface PrivacyBudgetTable {
  provider_id: string;
  budget_key: string;
  dataset: string;
  spent: number;
  updated_at: number;
}
