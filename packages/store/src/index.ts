/**
 * @insitu/store — the platform database. `openStore(config)` gives a {@link Store} with
 * typed repositories over SQLite (embedded default) or MySQL/MariaDB; both run the same
 * migrations and answer the same queries the same way.
 */
export { Store, Repositories, openStore, parseDatabaseUrl } from './store.js';
export type { StoreConfig, OpenStoreOptions } from './store.js';
export type { Dialect } from './dialect.js';
export type { HotStatements } from './hot-statements.js';
export { FollowingPool } from './following-pool.js';
export type { PrimarySource, PrimaryAddress } from './following-pool.js';
export { ROLES } from './schema.js';
export type {
  Database,
  Role,
  OrgRow,
  UserRow,
  SessionRow,
  ProviderRow,
  EnrolmentTokenRow,
  AgentRow,
  AppRow,
  AppVersionRow,
  ApprovalRow,
  DeploymentRow,
  DeploymentAgentRow,
  DeploymentState,
  InstanceState,
  ServiceRow,
  ApiKeyRow,
  UsageRow,
  AuditRow,
  EventRow,
  VersionState,
  JobRow,
  JobResultRow,
  JobStateColumn,
} from './schema.js';
export { JobRepository } from './repositories/job-repository.js';
export { AppRepository } from './repositories/app-repository.js';
export type { BundleFile } from './repositories/app-repository.js';
export { BlobRepository, BLOB_CHUNK_BYTES } from './repositories/blob-repository.js';
export { DeploymentRepository } from './repositories/deployment-repository.js';
export { ServiceRepository } from './repositories/service-repository.js';
export type { ServiceLimits } from './repositories/service-repository.js';
export { UsageRepository, HOUR_MS, DAY_MS } from './repositories/usage-repository.js';
export { JobUsageRepository } from './repositories/job-usage-repository.js';
export type { JobUsageTotal } from './repositories/job-usage-repository.js';
export { PrivacyBudgetRepository } from './repositories/privacy-budget-repository.js';
export type { BudgetCharge } from './repositories/privacy-budget-repository.js';
export { LATENCY_BUCKETS, latencyBucket, latencyBucketBound, latencyQuantile } from './latency-histogram.js';
export type { UsageDelta, UsageTotal } from './repositories/usage-repository.js';
export { AuditRepository, GENESIS_HASH, auditHash } from './repositories/audit-repository.js';
export type { AuditHead, AuditInput, AuditVerification } from './repositories/audit-repository.js';
export { EventRepository } from './repositories/event-repository.js';
export type { EventInput } from './repositories/event-repository.js';
export { OrgRepository } from './repositories/org-repository.js';
export type { CreateOrg } from './repositories/org-repository.js';
export { UserRepository } from './repositories/user-repository.js';
export type { CreateUser, MembershipView, MemberView } from './repositories/user-repository.js';
export { SessionRepository } from './repositories/session-repository.js';
export { ProviderRepository } from './repositories/provider-repository.js';
export { DatasetRepository } from './repositories/dataset-repository.js';
export type { DatasetRecord, DatasetSearch, CatalogViewer } from './repositories/dataset-repository.js';
export { isUniqueViolation } from './repositories/context.js';
export { searchTokens, queryTokens } from './search-text.js';
