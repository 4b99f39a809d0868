/**
 * @insitu/coord — coordination between the platform's nodes: key-value with prefix
 * watches (re-listed periodically, since watches can die silently), leases kept alive
 * inside, and leader election with fencing tokens and fenced writes.
 *
 * One interface, {@link Coordinator}, two implementations: {@link createMemoryCoordinator}
 * for a platform on one node (the embedded default) and {@link createEtcdCoordinator}
 * for a cluster (etcd 3.4). Start with `coord.campaign(name, me, { ttlMs })` and check
 * `leadership.isLeader()` before each piece of leader work.
 */
export { createCoordinator, createMemoryCoordinator, createEtcdCoordinator } from './create.js';
export type { CoordinatorSpec, MemoryCoordinator, MemoryCoordinatorOptions, EtcdCoordinatorOptions } from './create.js';
export { createMemoryBackend } from './memory-engine.js';
export type { MemoryBackend } from './memory-engine.js';
export type { CoordinatorTuning } from './coordinator.js';
export type {
  Coordinator,
  Lease,
  Leadership,
  LeaderObserver,
  WatchEvent,
  WatchHandle,
  CampaignOptions,
  CloseOptions,
} from './types.js';
