/**
 * The part of `@insitu/coord`'s Coordinator that the manager uses (agreed API).
 * TEMPORARY: replaced by `import type` from @insitu/coord once it is merged.
 */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value?: string;
}
export interface WatchHandle {
  close(): Promise<void>;
}
export interface Lease {
  readonly id: string;
  readonly ttlMs: number;
  isAlive(): boolean;
  on(event: 'lost', listener: (reason: Error) => void): this;
  off(event: 'lost', listener: (reason: Error) => void): this;
  revoke(): Promise<void>;
}
export interface Leadership {
  readonly election: string;
  readonly candidate: string;
  whenElected(): Promise<number>;
  isLeader(): boolean;
  readonly token: number | undefined;
  fencedPut(key: string, value: string): Promise<number>;
  fencedDelete(key: string): Promise<number>;
  resign(): Promise<void>;
  on(event: 'elected', listener: (token: number) => void): this;
  on(event: 'lost', listener: (reason: Error) => void): this;
  off(event: 'elected', listener: (token: number) => void): this;
  off(event: 'lost', listener: (reason: Error) => void): this;
}
export interface LeaderObserver {
  leader(): string | undefined;
  on(event: 'change', listener: (leader: string | undefined) => void): this;
  off(event: 'change', listener: (leader: string | undefined) => void): this;
  close(): Promise<void>;
}
export interface Coordinator {
  readonly kind: 'memory' | 'etcd';
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string, options?: { lease?: Lease }): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<Map<string, string>>;
  watchPrefix(prefix: string, onEvent: (event: WatchEvent) => void): Promise<WatchHandle>;
  grantLease(ttlMs: number): Promise<Lease>;
  campaign(election: string, candidate: string, options: { ttlMs: number }): Leadership;
  observe(election: string): Promise<LeaderObserver>;
  close(options?: { revokeLeases?: boolean }): Promise<void>;
}

/** How to build a coordinator: the `coord:` section of the dbmanager config. */
export interface CoordinatorSpec {
  kind: 'memory' | 'etcd';
  endpoints: readonly string[];
}

interface CoordModule {
  createMemoryCoordinator(): Coordinator;
  createEtcdCoordinator(options: { endpoints: readonly string[] }): Coordinator;
}

/**
 * Build the coordinator the config names, from `@insitu/coord`.
 * TEMPORARY thin adapter: loaded at run time so this package builds before coord is merged;
 * becomes a static import then.
 */
export async function createCoordinator(spec: CoordinatorSpec): Promise<Coordinator> {
  const specifier = '@insitu/coord';
  const coord = (await import(specifier)) as CoordModule;
  return spec.kind === 'etcd' ? coord.createEtcdCoordinator({ endpoints: spec.endpoints }) : coord.createMemoryCoordinator();
}
