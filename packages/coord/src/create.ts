import { InsituError } from '@insitu/core';
import { GenericCoordinator, type CoordinatorTuning } from './coordinator.js';
import { EtcdEngine } from './etcd-engine.js';
import { MemoryEngine, createMemoryBackend, type MemoryBackend } from './memory-engine.js';
import type { Coordinator } from './types.js';

/** Options of {@link createMemoryCoordinator}. */
export interface MemoryCoordinatorOptions extends CoordinatorTuning {
  /** Share one store between several coordinators (simulated nodes); a fresh one by default. */
  backend?: MemoryBackend;
}

/** An in-memory coordinator, plus a switch that cuts it off its store (to test partitions). */
export interface MemoryCoordinator extends Coordinator {
  readonly kind: 'memory';
  /** Make every call fail and watches fall silent (false), or reconnect (true). */
  setReachable(reachable: boolean): void;
}

/**
 * The coordinator of a platform that runs on one node: everything in this process,
 * with the same semantics as etcd's (revisions, leases that expire on TTL, elections
 * with fencing tokens).
 *
 * @example
 * const coord = createMemoryCoordinator();
 * const leadership = coord.campaign('dbmanager', nodeId, { ttlMs: 3000 });
 * await leadership.whenElected();
 */
export function createMemoryCoordinator(options: MemoryCoordinatorOptions = {}): MemoryCoordinator {
  const engine = new MemoryEngine(options.backend ?? createMemoryBackend());
  const coordinator = new GenericCoordinator(engine, options) as GenericCoordinator & {
    setReachable?: (reachable: boolean) => void;
  };
  coordinator.setReachable = (reachable: boolean) => engine.setReachable(reachable);
  return coordinator as unknown as MemoryCoordinator;
}

/** Options of {@link createEtcdCoordinator}. */
export interface EtcdCoordinatorOptions extends CoordinatorTuning {
  /** Client URLs of the etcd members, e.g. `['http://10.0.0.1:2379', ...]`. */
  endpoints: readonly string[];
  /** Prefix of every key in etcd (default `insitu/`), so several platforms can share one etcd. */
  namespace?: string;
  /** How long to wait for a connection to a member (default 2000 ms). */
  dialTimeoutMs?: number;
  /** Deadline of each unary etcd call (default 2000 ms). */
  callTimeoutMs?: number;
}

/**
 * The coordinator of a cluster, on etcd 3.4 (through the `etcd3` client, whose own
 * election helper we do not use: see this package's README).
 *
 * @example
 * const coord = createEtcdCoordinator({ endpoints: ['http://127.0.0.1:2379'] });
 * await coord.put('topology/primary', 'db1');
 * await coord.close();
 */
export function createEtcdCoordinator(options: EtcdCoordinatorOptions): Coordinator {
  const engine = new EtcdEngine({
    endpoints: options.endpoints,
    namespace: options.namespace ?? 'insitu/',
    dialTimeoutMs: options.dialTimeoutMs ?? 2000,
    callTimeoutMs: options.callTimeoutMs ?? 2000,
  });
  return new GenericCoordinator(engine, options);
}

/** What a config file's coordination section says: which coordinator, and for etcd where. */
export interface CoordinatorSpec extends CoordinatorTuning {
  kind: 'memory' | 'etcd';
  /** etcd client URLs; required (non-empty) for `etcd`, ignored for `memory`. */
  endpoints?: readonly string[];
  /** Prefix of every key in etcd (default `insitu/`). */
  namespace?: string;
}

/**
 * The coordinator a config names: the one factory every command uses, so the server, the
 * dbmanager and the operator read the same section the same way.
 *
 * @example
 * const coord = createCoordinator({ kind: 'etcd', endpoints: ['http://127.0.0.1:2379'] });
 */
export function createCoordinator(spec: CoordinatorSpec): Coordinator {
  const { kind, endpoints, namespace, ...tuning } = spec;
  if (kind === 'memory') return createMemoryCoordinator(tuning);
  if (!endpoints || endpoints.length === 0) {
    throw new InsituError('INSITU_CONFIG_INVALID', 'etcd coordination needs at least one endpoint');
  }
  return createEtcdCoordinator({ ...tuning, endpoints, ...(namespace !== undefined ? { namespace } : {}) });
}
