/**
 * @insitu/agent — the provider agent: it runs beside a provider's data and is the only
 * part of Insitu that ever touches it.
 *
 * - {@link loadAgentConfig}: `agent.yaml` (sources, sync interval, sandbox, limits).
 * - {@link obtainCredential} + {@link PlatformClient}: enrolment and identity.
 * - {@link DatasetRegistry} with {@link openSource}: SQLite, CSV, PostgreSQL and MySQL/MariaDB
 *   connectors; {@link MetadataSync} pushes their metadata (never rows) to the catalog.
 * - {@link DataApiServer}: the data API applications read through (NDJSON over a Unix socket).
 * - {@link Agent}: applications in bubblewrap sandboxes; `applyDesired`, `handle`, `status`.
 *
 * Start with {@link Agent.create}; `insitu agent` (packages/cli) wires these together.
 */
export { Agent } from './agent.js';
export { ProviderAgent } from './provider-agent.js';
export type { ProviderAgentOptions } from './provider-agent.js';
export type { AgentOptions, AgentStatus, DeploymentStatus, DeploymentState, JobOutcome } from './agent.js';
export { JobQueue } from './platform/job-queue.js';
export type { JobQueueOptions } from './platform/job-queue.js';
export { collectResults } from './apps/job-results.js';
export type { JobResultFile } from './apps/job-results.js';
export { LocalBundleSource } from './apps/bundle-source.js';
export type { BundleSource, DesiredDeployment, FetchedBundle } from './apps/bundle-source.js';
export { LocalBalancer } from './apps/balancer.js';
export type { BalancerTarget, InboundRequest, OutboundResponse } from './apps/balancer.js';
export { DEFAULT_RESTART_POLICY } from './apps/deployment-runner.js';
export type { RestartPolicy, InstanceStatus, InstanceState } from './apps/deployment-runner.js';
export {
  MANIFEST_FILE,
  bundleDigest,
  canonicalTarball,
  installBundle,
  normaliseDigest,
  packBundle,
  readManifest,
  unpackBundle,
} from './apps/bundle.js';
export { SANDBOX_PATHS, LISTEN_FD, buildLaunch, checkSandbox } from './apps/sandbox.js';
export { seccompFilter, deniedSyscalls } from './apps/seccomp.js';
export type { SeccompArch } from './apps/seccomp.js';
export type { Launch, LaunchSpec } from './apps/sandbox.js';
export { AgentConfigSchema, AGENT_SOURCE_KINDS, parseAgentConfig, loadAgentConfig } from './config/agent-config.js';
export type { AgentConfig, AgentLimits, SandboxConfig, SourceConfig, DatasetOverride } from './config/agent-config.js';
export { MetadataSync, datasetInput } from './catalog/metadata-sync.js';
export type { SyncReport } from './catalog/metadata-sync.js';
export { watchSources } from './catalog/watch-sources.js';
export { DataApiServer } from './data-api/data-api-server.js';
export type { DataApiServerOptions, DeclaredDatasets } from './data-api/data-api-server.js';
export { DataQuerySchema, planQuery } from './data-api/query-plan.js';
export { PlatformClient } from './identity/platform-client.js';
export { PlatformLink, PlatformBundleSource } from './platform/platform-link.js';
export type { PlatformLinkOptions } from './platform/platform-link.js';
export type {
  AgentIdentity,
  CatalogDataset,
  PlatformDeployment,
  DeploymentReport,
  PlatformTls,
} from './identity/platform-client.js';
export { CREDENTIAL_FILE, defaultAgentName, obtainCredential } from './identity/credential.js';
export { DatasetRegistry } from './sources/dataset-registry.js';
export type { RefreshReport } from './sources/dataset-registry.js';
export { openSource } from './sources/open-source.js';
export { likeMatcher } from './sources/like-matcher.js';
export type { DataSource, DatasetMeta, QueryPlan } from './sources/data-source.js';
