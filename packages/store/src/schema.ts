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
  /** MariaDB only: FULLTEXT documents, keyed by datasets.seq. */
  dataset_search: DatasetSearchTable;
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
export const ROLES: readonly Role[] = ['admin', 'provider', 'developer', 'user'];
