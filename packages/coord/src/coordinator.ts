import { InsituError, type Logger } from '@insitu/core';
import { Campaign } from './campaign.js';
import { electionPrefix, MIN_TTL_MS } from './election.js';
import type { Engine } from './engine.js';
import { ManagedLease } from './lease.js';
import { Observer } from './observer.js';
import { RelistingWatch } from './relisting-watch.js';
import type {
  CampaignOptions,
  CloseOptions,
  Coordinator,
  LeaderObserver,
  Lease,
  Leadership,
  WatchEvent,
  WatchHandle,
} from './types.js';

/** Options shared by both coordinators. */
export interface CoordinatorTuning {
  /** How often watches and observers re-list their prefix (default 2000 ms). */
  relistIntervalMs?: number;
  /** Logs campaign and keep-alive trouble at debug/warn. */
  logger?: Logger;
}

/** A {@link Coordinator} on any {@link Engine}: the one implementation of leases, elections and watches. */
export class GenericCoordinator implements Coordinator {
  readonly kind: 'memory' | 'etcd';
  readonly engine: Engine;
  readonly logger: Logger | undefined;
  readonly #relistMs: number;
  readonly #leases = new Set<ManagedLease>();
  readonly #campaigns = new Set<Campaign>();
  readonly #watches = new Set<RelistingWatch>();
  readonly #observers = new Set<Observer>();
  #closed = false;

  constructor(engine: Engine, tuning: CoordinatorTuning = {}) {
    this.engine = engine;
    this.kind = engine.kind;
    this.logger = tuning.logger;
    this.#relistMs = tuning.relistIntervalMs ?? 2000;
  }

  #open(): void {
    if (this.#closed) throw new InsituError('INSITU_COORD_UNAVAILABLE', 'the coordinator is closed');
  }

  async get(key: string): Promise<string | undefined> {
    this.#open();
    return (await this.engine.get(key))?.value;
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<void> {
    this.#open();
    if (options.lease && !options.lease.isAlive())
      throw new InsituError('INSITU_COORD_LEASE_LOST', `lease ${options.lease.id} is not alive`);
    await this.engine.put(key, value, options.lease?.id);
  }

  async delete(key: string): Promise<void> {
    this.#open();
    await this.engine.delete(key);
  }

  async list(prefix: string): Promise<Map<string, string>> {
    this.#open();
    const { entries } = await this.engine.range(prefix);
    return new Map(entries.map((entry) => [entry.key, entry.value]));
  }

  async watchPrefix(prefix: string, onEvent: (event: WatchEvent) => void): Promise<WatchHandle> {
    this.#open();
    const watch = new RelistingWatch(this.engine, prefix, onEvent, this.#relistMs, this.logger);
    await watch.start();
    this.#watches.add(watch);
    return {
      close: async () => {
        this.#watches.delete(watch);
        await watch.close();
      },
    };
  }

  /** Internal: a managed lease (the public {@link grantLease} returns the same). */
  async newLease(ttlMs: number): Promise<ManagedLease> {
    this.#open();
    if (!Number.isFinite(ttlMs) || ttlMs < MIN_TTL_MS) {
      throw new InsituError('INSITU_VALIDATION', `a lease TTL must be at least ${MIN_TTL_MS} ms, got ${ttlMs}`);
    }
    const sentAt = Date.now();
    const id = await this.engine.leaseGrant(ttlMs);
    const lease = new ManagedLease(this.engine, id, ttlMs, sentAt, (done) => this.#leases.delete(done));
    this.#leases.add(lease);
    return lease;
  }

  grantLease(ttlMs: number): Promise<Lease> {
    return this.newLease(ttlMs);
  }

  campaign(election: string, candidate: string, options: CampaignOptions): Leadership {
    this.#open();
    if (!Number.isFinite(options.ttlMs) || options.ttlMs < MIN_TTL_MS) {
      throw new InsituError(
        'INSITU_VALIDATION',
        `a campaign TTL must be at least ${MIN_TTL_MS} ms, got ${options.ttlMs}`,
      );
    }
    const campaign = new Campaign(this, election, candidate, options.ttlMs);
    this.#campaigns.add(campaign);
    return campaign;
  }

  forgetCampaign(campaign: Campaign): void {
    this.#campaigns.delete(campaign);
  }

  forgetObserver(observer: Observer): void {
    this.#observers.delete(observer);
  }

  async observe(election: string): Promise<LeaderObserver> {
    this.#open();
    const observer = new Observer(this, electionPrefix(election));
    await observer.start(Math.min(this.#relistMs, 1000));
    this.#observers.add(observer);
    return observer;
  }

  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const revoke = options.revokeLeases ?? true;
    const bounded = (promise: Promise<unknown>): Promise<unknown> =>
      Promise.race([promise.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    await Promise.all([...this.#watches].map((watch) => watch.close()));
    await Promise.all([...this.#observers].map((observer) => observer.close()));
    if (revoke) {
      await Promise.all([...this.#campaigns].map((campaign) => bounded(campaign.resign())));
      await Promise.all([...this.#leases].map((lease) => bounded(lease.revoke())));
    } else {
      for (const campaign of [...this.#campaigns]) campaign.abandon();
      for (const lease of [...this.#leases]) lease.release();
    }
    await this.engine.close();
  }
}
