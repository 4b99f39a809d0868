import { EventEmitter } from 'node:events';
import { InsituError, Sleeper, type Logger } from '@insitu/core';
import type { Engine, EngineEvent, KvEntry } from './engine.js';
import type {
  CampaignOptions, CloseOptions, Coordinator, LeaderObserver, Lease, Leadership, WatchEvent, WatchHandle,
} from './types.js';

/** Options shared by both coordinators. */
export interface CoordinatorTuning {
  /** How often watches and observers re-list their prefix (default 2000 ms). */
  relistIntervalMs?: number;
  /** Logs campaign and keep-alive trouble at debug/warn. */
  logger?: Logger;
}

/** Candidates' keys live under this prefix, one per candidate, named by lease id. */
const ELECTION_PREFIX = '_election/';
/** Leadership ends on our side after this fraction of the TTL without a keep-alive. */
const LEADER_DEADLINE_FRACTION = 2 / 3;
const MIN_TTL_MS = 1000;

function notLeader(message: string): InsituError {
  return new InsituError('INSITU_COORD_NOT_LEADER', message);
}

function electionPrefix(election: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(election)) {
    throw new InsituError('INSITU_VALIDATION', `election name "${election}" must be 1-128 letters, digits, dots, dashes or underscores`);
  }
  return `${ELECTION_PREFIX}${election}/`;
}

function lowest(entries: readonly KvEntry[]): KvEntry | undefined {
  let best: KvEntry | undefined;
  for (const entry of entries) if (!best || entry.createRevision < best.createRevision) best = entry;
  return best;
}

/**
 * A lease kept alive by its own loop: a keep-alive every quarter TTL, retried quickly on
 * failure. Lost when the store says the lease is gone or when no keep-alive sent within
 * the last TTL succeeded (by our clock, counted from when the keep-alive was *sent*, so
 * the store's copy cannot outlive our belief).
 */
class ManagedLease extends EventEmitter implements Lease {
  readonly id: string;
  readonly ttlMs: number;
  /** When the last successful keep-alive (or the grant) was sent. */
  lastRenewedAt: number;
  #alive = true;
  #deadline: NodeJS.Timeout | undefined;
  readonly #sleeper = new Sleeper();
  readonly #engine: Engine;
  readonly #onDone: (lease: ManagedLease) => void;

  constructor(engine: Engine, id: string, ttlMs: number, grantedAt: number, onDone: (lease: ManagedLease) => void) {
    super();
    this.#engine = engine;
    this.id = id;
    this.ttlMs = ttlMs;
    this.lastRenewedAt = grantedAt;
    this.#onDone = onDone;
    this.#arm();
    void this.#loop();
  }

  isAlive(): boolean {
    return this.#alive;
  }

  #arm(): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      this.lose(new InsituError('INSITU_COORD_LEASE_LOST', `no keep-alive of lease ${this.id} succeeded within its TTL (${this.ttlMs} ms)`));
    }, Math.max(1, this.lastRenewedAt + this.ttlMs - Date.now()));
    this.#deadline.unref();
  }

  async #loop(): Promise<void> {
    await this.#sleeper.sleep(this.ttlMs / 4);
    while (this.#alive) {
      const sentAt = Date.now();
      let retryIn = this.ttlMs / 4;
      try {
        const remaining = await this.#engine.leaseKeepAlive(this.id);
        if (!this.#alive) return;
        if (remaining <= 0) {
          this.lose(new InsituError('INSITU_COORD_LEASE_LOST', `lease ${this.id} expired in the store`));
          return;
        }
        if (sentAt > this.lastRenewedAt) {
          this.lastRenewedAt = sentAt;
          this.#arm();
          this.emit('renewed', sentAt);
        }
      } catch {
        retryIn = Math.min(200, this.ttlMs / 8);
      }
      await this.#sleeper.sleep(retryIn);
    }
  }

  /** Stop keeping it alive (it expires on its own in the store). */
  release(): void {
    if (!this.#alive) return;
    this.#alive = false;
    clearTimeout(this.#deadline);
    this.#sleeper.wake();
    this.#onDone(this);
  }

  lose(reason: Error): void {
    if (!this.#alive) return;
    this.release();
    this.emit('lost', reason);
    // Whatever the store still holds under it must go, so that others need not wait.
    this.#engine.leaseRevoke(this.id).catch(() => undefined);
  }

  async revoke(): Promise<void> {
    const wasAlive = this.#alive;
    this.release();
    if (wasAlive) await this.#engine.leaseRevoke(this.id);
  }
}

/**
 * A prefix watch that also re-lists periodically. Entries remember their last known
 * mod revision and deletions their revision, so a re-list older than a watch event
 * never undoes it.
 */
class RelistingWatch implements WatchHandle {
  readonly #known = new Map<string, { value: string; revision: number }>();
  readonly #deleted = new Map<string, number>();
  #closed = false;
  #watch: { close(): Promise<void> } | undefined;
  readonly #sleeper = new Sleeper();

  constructor(
    private readonly engine: Engine,
    private readonly prefix: string,
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly relistMs: number,
    private readonly logger: Logger | undefined,
  ) {}

  async start(): Promise<void> {
    this.#watch = await this.engine.watch(this.prefix, (event) => this.#apply(event));
    let entries: KvEntry[];
    try {
      ({ entries } = await this.engine.range(this.prefix));
    } catch (error) {
      await this.close();
      throw error;
    }
    for (const entry of entries) this.#merge(entry, false);
    void this.#relistLoop();
  }

  #apply(event: EngineEvent): void {
    if (this.#closed) return;
    if (event.type === 'put') {
      const known = this.#known.get(event.key);
      if (known && known.revision >= event.revision) return;
      this.#known.set(event.key, { value: event.value ?? '', revision: event.revision });
      this.#deleted.delete(event.key);
      this.#deliver({ type: 'put', key: event.key, value: event.value ?? '' });
    } else {
      const known = this.#known.get(event.key);
      if (known && known.revision > event.revision) return;
      this.#deleted.set(event.key, event.revision);
      if (!known) return;
      this.#known.delete(event.key);
      this.#deliver({ type: 'delete', key: event.key });
    }
  }

  #merge(entry: KvEntry, emit: boolean): void {
    const known = this.#known.get(entry.key);
    if (known && known.revision >= entry.modRevision) return;
    const deletedAt = this.#deleted.get(entry.key);
    if (deletedAt !== undefined && deletedAt > entry.modRevision) return;
    this.#known.set(entry.key, { value: entry.value, revision: entry.modRevision });
    if (emit && known?.value !== entry.value) this.#deliver({ type: 'put', key: entry.key, value: entry.value });
  }

  #deliver(event: WatchEvent): void {
    try {
      this.onEvent(event);
    } catch (error) {
      this.logger?.warn({ err: error, prefix: this.prefix }, 'watch listener threw');
    }
  }

  async relist(): Promise<void> {
    const { entries, revision } = await this.engine.range(this.prefix);
    if (this.#closed) return;
    const present = new Set<string>();
    for (const entry of entries) {
      present.add(entry.key);
      this.#merge(entry, true);
    }
    for (const [key, known] of [...this.#known]) {
      if (present.has(key) || known.revision > revision) continue;
      this.#known.delete(key);
      this.#deleted.set(key, revision);
      this.#deliver({ type: 'delete', key });
    }
    for (const [key, deletedAt] of [...this.#deleted]) if (deletedAt <= revision) this.#deleted.delete(key);
  }

  async #relistLoop(): Promise<void> {
    while (!this.#closed) {
      await this.#sleeper.sleep(this.relistMs);
      if (this.#closed) return;
      try {
        await this.relist();
      } catch (error) {
        this.logger?.debug({ err: error, prefix: this.prefix }, 're-list failed; will retry');
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sleeper.wake();
    await this.#watch?.close();
  }
}

type CampaignState = 'starting' | 'campaigning' | 'leader' | 'ended';

/**
 * One candidacy: a key `_election/<name>/<lease id>` created under the candidate's own
 * lease. The candidate whose key has the lowest create revision leads; that revision
 * is its fencing token. A leader never re-creates its key: once lost, a campaign is over.
 */
class Campaign extends EventEmitter implements Leadership {
  readonly election: string;
  readonly candidate: string;
  #state: CampaignState = 'starting';
  #lease: ManagedLease | undefined;
  #key: string | undefined;
  #revision: number | undefined;
  #token: number | undefined;
  #watch: RelistingWatch | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #recheck = false;
  readonly #sleeper = new Sleeper();
  readonly #prefix: string;

  constructor(
    private readonly owner: GenericCoordinator,
    election: string,
    candidate: string,
    private readonly ttlMs: number,
  ) {
    super();
    this.election = election;
    this.candidate = candidate;
    this.#prefix = electionPrefix(election);
    void this.#run();
  }

  get token(): number | undefined {
    return this.#token;
  }

  get ended(): boolean {
    return this.#state === 'ended';
  }

  isLeader(): boolean {
    return this.#state === 'leader' && this.#lease !== undefined && Date.now() < this.#leaderDeadline();
  }

  #leaderDeadline(): number {
    return (this.#lease?.lastRenewedAt ?? 0) + this.ttlMs * LEADER_DEADLINE_FRACTION;
  }

  whenElected(): Promise<number> {
    if (this.#token !== undefined && this.#state === 'leader') return Promise.resolve(this.#token);
    if (this.#state === 'ended') return Promise.reject(notLeader(`the campaign of ${this.candidate} for ${this.election} has ended`));
    return new Promise((resolve, reject) => {
      const onElected = (token: number): void => {
        this.off('ended', onEnded);
        resolve(token);
      };
      const onEnded = (): void => {
        this.off('elected', onElected);
        reject(notLeader(`the campaign of ${this.candidate} for ${this.election} ended before it was elected`));
      };
      this.once('elected', onElected);
      this.once('ended', onEnded);
    });
  }

  async #run(): Promise<void> {
    let backoff = 100;
    while (this.#state === 'starting') {
      try {
        const lease = await this.owner.newLease(this.ttlMs);
        if (this.ended) {
          await lease.revoke().catch(() => undefined);
          return;
        }
        this.#lease = lease;
        lease.on('lost', (reason: Error) => this.#end(reason, true));
        lease.on('renewed', () => this.#onRenewed());
        const key = `${this.#prefix}${lease.id}`;
        const entry = await this.owner.engine.createIfAbsent(key, this.candidate, lease.id);
        if (this.ended) return;
        this.#key = key;
        this.#revision = entry.createRevision;
        this.#state = 'campaigning';
        const watch = new RelistingWatch(this.owner.engine, this.#prefix, () => this.#scheduleCheck(), this.ttlMs / 4, this.owner.logger);
        this.#watch = watch;
        await watch.start();
        if (this.ended) await watch.close();
        this.#scheduleCheck();
      } catch (error) {
        if (this.ended) return;
        this.owner.logger?.debug({ err: error, election: this.election }, 'campaign could not start; retrying');
        const lease = this.#lease;
        this.#lease = undefined;
        await lease?.revoke().catch(() => undefined);
        await this.#sleeper.sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  #onRenewed(): void {
    if (this.#state === 'leader') this.#armDeadline();
    else if (this.#state === 'campaigning') this.#scheduleCheck();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      if (this.#state === 'leader' && Date.now() >= this.#leaderDeadline()) {
        this.#end(notLeader(`no keep-alive succeeded for ${Math.round(this.ttlMs * LEADER_DEADLINE_FRACTION)} ms; stepped down before the lease could expire`), true);
      }
    }, Math.max(1, this.#leaderDeadline() - Date.now()));
    this.#deadline.unref();
  }

  #scheduleCheck(): void {
    if (this.#checking) {
      this.#recheck = true;
      return;
    }
    this.#checking = (async () => {
      do {
        this.#recheck = false;
        try {
          await this.#check();
        } catch (error) {
          this.owner.logger?.debug({ err: error, election: this.election }, 'election check failed; the periodic re-list retries');
        }
      } while (this.#recheck && !this.ended);
      this.#checking = undefined;
    })();
  }

  async #check(): Promise<void> {
    if (this.#state !== 'campaigning' && this.#state !== 'leader') return;
    const { entries } = await this.owner.engine.range(this.#prefix);
    if (this.ended) return;
    const mine = entries.find((entry) => entry.key === this.#key);
    if (!mine || mine.createRevision !== this.#revision) {
      this.#end(notLeader(`the candidate key of ${this.candidate} vanished (lease expired or key deleted)`), true);
      return;
    }
    if (this.#state === 'campaigning' && lowest(entries)?.key === this.#key && Date.now() < this.#leaderDeadline()) {
      this.#state = 'leader';
      this.#token = mine.createRevision;
      this.#armDeadline();
      this.emit('elected', mine.createRevision);
    }
  }

  async #fenced(op: { type: 'put'; key: string; value: string } | { type: 'delete'; key: string }): Promise<number> {
    if (!this.isLeader() || this.#key === undefined || this.#revision === undefined) {
      throw notLeader(`${this.candidate} is not the leader of ${this.election}; the write to ${op.key} was refused`);
    }
    const result = await this.owner.engine.guarded(this.#key, this.#revision, op);
    if (!result.succeeded) {
      this.#end(notLeader(`the leader key of ${this.candidate} is gone`), true);
      throw notLeader(`${this.candidate} no longer holds the leader key of ${this.election}; the write to ${op.key} was refused`);
    }
    return result.revision;
  }

  fencedPut(key: string, value: string): Promise<number> {
    return this.#fenced({ type: 'put', key, value });
  }

  fencedDelete(key: string): Promise<number> {
    return this.#fenced({ type: 'delete', key });
  }

  #end(reason: Error, emitLost: boolean): void {
    if (this.#state === 'ended') return;
    const wasLeader = this.#state === 'leader';
    this.#state = 'ended';
    clearTimeout(this.#deadline);
    this.#sleeper.wake();
    void this.#watch?.close();
    const lease = this.#lease;
    if (lease?.isAlive()) lease.lose(reason);
    this.owner.forgetCampaign(this);
    this.emit('ended');
    if (emitLost) {
      this.owner.logger?.warn({ election: this.election, candidate: this.candidate, wasLeader, reason: reason.message }, 'leadership campaign lost');
      this.emit('lost', reason);
    }
  }

  async resign(): Promise<void> {
    if (this.#state === 'ended') return;
    const lease = this.#lease;
    this.#end(new Error('resigned'), false);
    // Revoking deletes the candidate key at once: the next candidate takes over now.
    if (lease) await this.owner.engine.leaseRevoke(lease.id).catch(() => undefined);
  }

  /** For close({ revokeLeases: false }): stop without touching the store. */
  abandon(): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    clearTimeout(this.#deadline);
    this.#sleeper.wake();
    void this.#watch?.close();
    this.#lease?.release();
    this.emit('ended');
  }
}

class Observer extends EventEmitter implements LeaderObserver {
  #leader: string | undefined;
  #watch: RelistingWatch | undefined;
  readonly #entries = new Map<string, KvEntry>();

  constructor(
    private readonly owner: GenericCoordinator,
    private readonly prefix: string,
  ) {
    super();
  }

  async start(relistMs: number): Promise<void> {
    const watch = new RelistingWatch(this.owner.engine, this.prefix, () => void this.#refresh(), relistMs, this.owner.logger);
    this.#watch = watch;
    await watch.start();
    await this.#refresh();
  }

  async #refresh(): Promise<void> {
    let entries: KvEntry[];
    try {
      ({ entries } = await this.owner.engine.range(this.prefix));
    } catch (error) {
      this.owner.logger?.debug({ err: error }, 'observer refresh failed; the periodic re-list retries');
      return;
    }
    this.#entries.clear();
    for (const entry of entries) this.#entries.set(entry.key, entry);
    const leader = lowest(entries)?.value;
    if (leader !== this.#leader) {
      this.#leader = leader;
      this.emit('change', leader);
    }
  }

  leader(): string | undefined {
    return this.#leader;
  }

  async close(): Promise<void> {
    await this.#watch?.close();
    this.owner.forgetObserver(this);
  }
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
    if (options.lease && !options.lease.isAlive()) throw new InsituError('INSITU_COORD_LEASE_LOST', `lease ${options.lease.id} is not alive`);
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
      throw new InsituError('INSITU_VALIDATION', `a campaign TTL must be at least ${MIN_TTL_MS} ms, got ${options.ttlMs}`);
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
