import { createCoordinator as createFromSpec, type Coordinator } from '@insitu/coord';

/**
 * The manager's use of `@insitu/coord`: the types it works with, and building the
 * coordinator that the `coord:` section of its config names.
 */
export type { Coordinator, Lease, Leadership, LeaderObserver, WatchEvent, WatchHandle } from '@insitu/coord';

/** How to build a coordinator: the `coord:` section of the dbmanager config. */
export interface CoordinatorSpec {
  kind: 'memory' | 'etcd';
  endpoints: readonly string[];
  /** Prefix of every key inside etcd; default `insitu/`. */
  namespace?: string;
}

/** The in-memory coordinator (one manager in one process) or an etcd one (managers on several nodes). */
export async function createCoordinator(spec: CoordinatorSpec): Promise<Coordinator> {
  return createFromSpec(spec);
}
