/**
 * @insitu/dbmanager — the MySQL-Manager: keeps the platform's MariaDB cluster (one primary,
 * GTID replicas) healthy. It probes every member, confirms a primary's death through the
 * replicas before failing over, fences and rejoins (or quarantines) a returning primary,
 * repairs replication, restarts dead members, runs planned switchovers, configures
 * AFTER_SYNC semi-sync, and alerts through @insitu/notify when it cannot repair. Managers
 * on several nodes elect one through @insitu/coord; the others watch.
 *
 * Start with {@link startDbManager} (manager plus admin API), or {@link DbManager} alone.
 * Clients follow the primary with {@link followPrimary}; `insitu db` talks to the elected
 * manager with {@link DbAdminClient}.
 */
export { DbManager } from './manager.js';
export type { DbManagerOptions, ClusterStatus, MemberStatus, SwitchoverResult, ProbeRecord } from './manager.js';
export { DbManagerConfigSchema, loadDbManagerConfig, resolveSecrets } from './config.js';
export type { DbManagerConfig, MemberConfig, Login, ResolvedSecrets } from './config.js';
export { ManagerEventSchema } from './events.js';
export type { ManagerEvent } from './events.js';
export {
  PublishedTopologySchema,
  PublishedPrimarySchema,
  PublishedAlertsSchema,
  ManagerRecordSchema,
  coordKeys,
  electionName,
} from './topology.js';
export type {
  PublishedTopology,
  PublishedPrimary,
  PublishedAlerts,
  ManagerRecord,
  PendingRejoin,
  Quarantine,
} from './topology.js';
export { judgePrimary, rankCandidates, defaultConfirmations, replicaLostPrimary } from './decide.js';
export type { MemberView, PrimaryVerdict, Candidate, Exclusion } from './decide.js';
export {
  parseGtidPosition,
  formatGtidPosition,
  compareGtidPositions,
  gtidCovers,
  gtidRangesBeyond,
  formatGtidRange,
} from './gtid.js';
export type { Gtid, GtidPosition, GtidRange } from './gtid.js';
export { probeMember } from './probe.js';
export type { MemberProbe, ReplicationStatus, SemiSyncStatus } from './probe.js';
export { MemberGuard } from './guard.js';
export type { MemberGuardOptions, GuardFence, GuardFenceReason } from './guard.js';
export { fenceMember } from './fence.js';
export type { FenceResult } from './fence.js';
export { startDbManager } from './start.js';
export type { StartDbManagerOptions, RunningDbManager } from './start.js';
export { startAdminServer } from './admin-server.js';
export type { AdminServer, AdminServerOptions } from './admin-server.js';
export { DbAdminClient, findLeaderUrl } from './admin-client.js';
export type { DbAdminClientOptions } from './admin-client.js';
export { followPrimary } from './follow-primary.js';
export type { PrimaryFollower, PrimaryAddress } from './follow-primary.js';
export { createCoordinator } from './coord-port.js';
export type { Coordinator, CoordinatorSpec, Leadership, LeaderObserver } from './coord-port.js';
