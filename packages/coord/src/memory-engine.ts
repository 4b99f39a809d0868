import { InsituError } from '@insitu/core';
import type { Engine, EngineEvent, GuardedOp, KvEntry } from './engine.js';

interface MemoryLease {
  ttlMs: number;
  expiresAt: number;
  timer: NodeJS.Timeout;
  keys: Set<string>;
}

interface Subscriber {
  prefix: string;
  onEvent: (event: EngineEvent) => void;
}

/**
 * The state behind in-memory coordinators: one process-wide store that several
 * coordinators (several simulated nodes in a test) can share. Leases expire on TTL
 * like etcd's; revisions grow like etcd's.
 */
export class MemoryBackend {
  #revision = 1;
  #leaseSeq = 0x1000;
  readonly #data = new Map<string, KvEntry>();
  readonly #leases = new Map<string, MemoryLease>();
  readonly #subscribers = new Set<Subscriber>();

  get revision(): number {
    return this.#revision;
  }

  get(key: string): KvEntry | undefined {
    const entry = this.#data.get(key);
    return entry ? { ...entry } : undefined;
  }

  range(prefix: string): { entries: KvEntry[]; revision: number } {
    const entries = [...this.#data.values()]
      .filter((entry) => entry.key.startsWith(prefix))
      .map((entry) => ({ ...entry }));
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { entries, revision: this.#revision };
  }

  put(key: string, value: string, lease = '0'): number {
    if (lease !== '0' && !this.#leases.has(lease))
      throw new InsituError('INSITU_COORD_LEASE_LOST', `lease ${lease} is not alive`);
    const revision = ++this.#revision;
    const previous = this.#data.get(key);
    if (previous && previous.lease !== '0') this.#leases.get(previous.lease)?.keys.delete(key);
    this.#data.set(key, {
      key,
      value,
      createRevision: previous?.createRevision ?? revision,
      modRevision: revision,
      lease,
    });
    if (lease !== '0') this.#leases.get(lease)?.keys.add(key);
    this.#notify({ type: 'put', key, value, revision });
    return revision;
  }

  delete(key: string): number {
    const previous = this.#data.get(key);
    if (!previous) return this.#revision;
    const revision = ++this.#revision;
    this.#data.delete(key);
    if (previous.lease !== '0') this.#leases.get(previous.lease)?.keys.delete(key);
    this.#notify({ type: 'delete', key, revision });
    return revision;
  }

  guarded(guardKey: string, createRevision: number, op: GuardedOp): { succeeded: boolean; revision: number } {
    const guard = this.#data.get(guardKey);
    if (!guard || guard.createRevision !== createRevision) return { succeeded: false, revision: this.#revision };
    const revision = op.type === 'put' ? this.put(op.key, op.value) : this.delete(op.key);
    return { succeeded: true, revision };
  }

  subscribe(prefix: string, onEvent: (event: EngineEvent) => void): () => void {
    const subscriber = { prefix, onEvent };
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  leaseGrant(ttlMs: number): string {
    const id = String(++this.#leaseSeq);
    const lease: MemoryLease = {
      ttlMs,
      expiresAt: Date.now() + ttlMs,
      keys: new Set(),
      timer: this.#expiryTimer(id, ttlMs),
    };
    this.#leases.set(id, lease);
    return id;
  }

  leaseKeepAlive(id: string): number {
    const lease = this.#leases.get(id);
    if (!lease) return 0;
    clearTimeout(lease.timer);
    lease.expiresAt = Date.now() + lease.ttlMs;
    lease.timer = this.#expiryTimer(id, lease.ttlMs);
    return lease.ttlMs;
  }

  leaseRevoke(id: string): void {
    const lease = this.#leases.get(id);
    if (!lease) return;
    clearTimeout(lease.timer);
    this.#leases.delete(id);
    for (const key of [...lease.keys]) this.delete(key);
  }

  #expiryTimer(id: string, ttlMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => this.leaseRevoke(id), ttlMs);
    timer.unref();
    return timer;
  }

  #notify(event: EngineEvent): void {
    for (const subscriber of this.#subscribers) {
      if (!event.key.startsWith(subscriber.prefix)) continue;
      // Delivered asynchronously, as a store's watch would be.
      setImmediate(() => subscriber.onEvent(event));
    }
  }
}

/** A fresh in-memory store; pass it to several coordinators to simulate several nodes. */
export function createMemoryBackend(): MemoryBackend {
  return new MemoryBackend();
}

/** One coordinator's connection to a {@link MemoryBackend}; `reachable` simulates a partition. */
export class MemoryEngine implements Engine {
  readonly kind = 'memory' as const;
  readonly #backend: MemoryBackend;
  #reachable = true;
  #closed = false;
  readonly #unsubscribes = new Set<() => void>();

  constructor(backend: MemoryBackend) {
    this.#backend = backend;
  }

  /** Cut this coordinator off the store (calls fail, watches stay silent) or reconnect it. */
  setReachable(reachable: boolean): void {
    this.#reachable = reachable;
  }

  #check(): void {
    if (this.#closed) throw new InsituError('INSITU_COORD_UNAVAILABLE', 'the coordinator is closed');
    if (!this.#reachable) throw new InsituError('INSITU_COORD_UNAVAILABLE', 'the coordination store cannot be reached');
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#check();
    return this.#backend.get(key);
  }

  async range(prefix: string): Promise<{ entries: KvEntry[]; revision: number }> {
    this.#check();
    return this.#backend.range(prefix);
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    this.#check();
    this.#backend.put(key, value, lease);
  }

  async delete(key: string): Promise<void> {
    this.#check();
    this.#backend.delete(key);
  }

  async createIfAbsent(key: string, value: string, lease: string): Promise<KvEntry> {
    this.#check();
    const existing = this.#backend.get(key);
    if (existing) return existing;
    this.#backend.put(key, value, lease);
    const created = this.#backend.get(key);
    if (!created) throw new InsituError('INSITU_COORD_UNAVAILABLE', `key ${key} vanished right after its creation`);
    return created;
  }

  async guarded(
    guardKey: string,
    createRevision: number,
    op: GuardedOp,
  ): Promise<{ succeeded: boolean; revision: number }> {
    this.#check();
    return this.#backend.guarded(guardKey, createRevision, op);
  }

  async watch(prefix: string, onEvent: (event: EngineEvent) => void): Promise<{ close(): Promise<void> }> {
    this.#check();
    const unsubscribe = this.#backend.subscribe(prefix, (event) => {
      if (this.#reachable && !this.#closed) onEvent(event);
    });
    this.#unsubscribes.add(unsubscribe);
    return {
      close: async () => {
        unsubscribe();
        this.#unsubscribes.delete(unsubscribe);
      },
    };
  }

  async leaseGrant(ttlMs: number): Promise<string> {
    this.#check();
    return this.#backend.leaseGrant(ttlMs);
  }

  async leaseKeepAlive(id: string): Promise<number> {
    this.#check();
    return this.#backend.leaseKeepAlive(id);
  }

  async leaseRevoke(id: string): Promise<void> {
    this.#check();
    this.#backend.leaseRevoke(id);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const unsubscribe of this.#unsubscribes) unsubscribe();
    this.#unsubscribes.clear();
  }
}
