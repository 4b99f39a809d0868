/**
 * The storage primitives a coordinator needs. Leases, elections, observers and
 * re-listing watches are written once on top of this (coordinator.ts), so the
 * in-memory and etcd coordinators share one algorithm and differ only here.
 */

/** A stored key with the revisions etcd keeps for it. */
export interface KvEntry {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** Lease id, '0' for none. */
  lease: string;
}

/** An engine-level change, with the revision at which it happened. */
export interface EngineEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
  revision: number;
}

/** One write guarded by a fencing comparison. */
export type GuardedOp = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string };

export interface Engine {
  readonly kind: 'memory' | 'etcd';
  get(key: string): Promise<KvEntry | undefined>;
  /** Every entry under `prefix` and the store revision the answer reflects. */
  range(prefix: string): Promise<{ entries: KvEntry[]; revision: number }>;
  put(key: string, value: string, lease?: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Create `key` unless it exists; returns the entry now stored (ours or the existing one). */
  createIfAbsent(key: string, value: string, lease: string): Promise<KvEntry>;
  /** Apply `op` only if `guardKey` exists with this create revision. */
  guarded(guardKey: string, createRevision: number, op: GuardedOp): Promise<{ succeeded: boolean; revision: number }>;
  /** Resolves once the watch is established on the store. */
  watch(prefix: string, onEvent: (event: EngineEvent) => void): Promise<{ close(): Promise<void> }>;
  leaseGrant(ttlMs: number): Promise<string>;
  /** Renew; resolves with the remaining TTL in ms (0 or less: the lease is gone). */
  leaseKeepAlive(id: string): Promise<number>;
  leaseRevoke(id: string): Promise<void>;
  close(): Promise<void>;
}
