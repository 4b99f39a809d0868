/** One change under a watched prefix. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value (for `put`). */
  value?: string;
}

/** A running prefix watch; `close()` stops it. */
export interface WatchHandle {
  close(): Promise<void>;
}

/**
 * A lease: keys put with it vanish when it expires or is revoked. Its keep-alive runs
 * inside; `lost` fires once when it can no longer be kept alive (the store said it is
 * gone, or no keep-alive succeeded before its TTL ran out by our own clock).
 */
export interface Lease {
  /** The lease id (etcd's, as a decimal string). */
  readonly id: string;
  /** The TTL asked for, in milliseconds. */
  readonly ttlMs: number;
  /**
   * When the last successful keep-alive (or the grant) was *sent*, epoch ms. The store
   * cannot expire the lease before `lastRenewedAt + ttlMs` (clocks running at similar
   * rates): what depends on the lease can be stopped by that deadline.
   */
  readonly lastRenewedAt: number;
  /** False once the lease is lost or revoked. */
  isAlive(): boolean;
  on(event: 'lost', listener: (reason: Error) => void): this;
  /** After each successful keep-alive, with the time it was sent (the new `lastRenewedAt`). */
  on(event: 'renewed', listener: (sentAt: number) => void): this;
  off(event: 'lost', listener: (reason: Error) => void): this;
  off(event: 'renewed', listener: (sentAt: number) => void): this;
  /** Revoke it now: its keys disappear. Idempotent; never throws for a lease already gone. */
  revoke(): Promise<void>;
}

/** Options of {@link Coordinator.campaign}. */
export interface CampaignOptions {
  /** TTL of the candidate's lease. Leadership ends on our side after 2/3 of it without a keep-alive. */
  ttlMs: number;
}

/**
 * One candidate's campaign for one election. It emits `elected` (with the fencing
 * token) when this candidate becomes the leader and `lost` when it stops being the
 * leader for any reason other than {@link Leadership.resign}. A campaign ends after
 * `lost` or `resign()`; campaign again to run for leadership anew.
 */
export interface Leadership {
  readonly election: string;
  readonly candidate: string;
  /**
   * Resolves with the fencing token once elected; rejects with
   * `INSITU_COORD_NOT_LEADER` if the campaign ends first.
   */
  whenElected(): Promise<number>;
  /**
   * True while elected and the last successful keep-alive is recent enough: it turns
   * false on our own deadline (2/3 of the TTL after the last keep-alive was sent),
   * before the store could let anyone else win. Check it before each piece of leader work.
   */
  isLeader(): boolean;
  /** The fencing token: the create revision of this candidate's key; undefined until elected. */
  readonly token: number | undefined;
  /**
   * Put only if this candidate still holds the leader key (one etcd transaction comparing
   * the key's create revision); else `INSITU_COORD_NOT_LEADER`. Resolves with the store
   * revision of the write.
   */
  fencedPut(key: string, value: string): Promise<number>;
  /** Delete only if this candidate still holds the leader key; else `INSITU_COORD_NOT_LEADER`. Resolves with the store revision. */
  fencedDelete(key: string): Promise<number>;
  /** Step down (or stop campaigning): deletes the candidate's key so another takes over at once. */
  resign(): Promise<void>;
  on(event: 'elected', listener: (token: number) => void): this;
  on(event: 'lost', listener: (reason: Error) => void): this;
  off(event: 'elected', listener: (token: number) => void): this;
  off(event: 'lost', listener: (reason: Error) => void): this;
}

/** Follows who leads an election. */
export interface LeaderObserver {
  /** The current leader's candidate name, or undefined while nobody leads. */
  leader(): string | undefined;
  on(event: 'change', listener: (leader: string | undefined) => void): this;
  off(event: 'change', listener: (leader: string | undefined) => void): this;
  close(): Promise<void>;
}

/** Options of {@link Coordinator.close}. */
export interface CloseOptions {
  /**
   * Revoke this coordinator's leases (default true), so its keys and candidacies vanish
   * at once. With false they expire after their TTL, as if the process had crashed.
   */
  revokeLeases?: boolean;
}

/**
 * Coordination for the platform's nodes: key-value with prefix watches, leases and
 * leader election. {@link createMemoryCoordinator} serves one process;
 * {@link createEtcdCoordinator} a cluster.
 */
export interface Coordinator {
  readonly kind: 'memory' | 'etcd';
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string, options?: { lease?: Lease }): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key under `prefix` with its value. */
  list(prefix: string): Promise<Map<string, string>>;
  /**
   * Call `onEvent` for every change under `prefix` from now on. Besides the store's
   * watch, the prefix is re-listed periodically and differences are delivered as
   * events, so a watch that died silently cannot hide a change for long.
   */
  watchPrefix(prefix: string, onEvent: (event: WatchEvent) => void): Promise<WatchHandle>;
  /** A new lease, kept alive until revoked, lost, or the coordinator closes. */
  grantLease(ttlMs: number): Promise<Lease>;
  /** Run for leadership of `election` as `candidate` (a name others see, e.g. the node id). */
  campaign(election: string, candidate: string, options: CampaignOptions): Leadership;
  /** Follow the leader of `election`. */
  observe(election: string): Promise<LeaderObserver>;
  close(options?: CloseOptions): Promise<void>;
}
