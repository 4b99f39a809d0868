import { EventEmitter } from 'node:events';
import { Sleeper } from '@insitu/core';
import type { GenericCoordinator } from './coordinator.js';
import { electionPrefix, LEADER_DEADLINE_FRACTION, lowest, notLeader } from './election.js';
import type { ManagedLease } from './lease.js';
import { RelistingWatch } from './relisting-watch.js';
import type { Leadership } from './types.js';

type CampaignState = 'starting' | 'campaigning' | 'leader' | 'ended';

/**
 * One candidacy: a key `_election/<name>/<lease id>` created under the candidate's own
 * lease. The candidate whose key has the lowest create revision leads; that revision
 * is its fencing token. A leader never re-creates its key: once lost, a campaign is over.
 */
export class Campaign extends EventEmitter implements Leadership {
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
    if (this.#state === 'ended')
      return Promise.reject(notLeader(`the campaign of ${this.candidate} for ${this.election} has ended`));
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
        const watch = new RelistingWatch(
          this.owner.engine,
          this.#prefix,
          () => this.#scheduleCheck(),
          this.ttlMs / 4,
          this.owner.logger,
        );
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
    this.#deadline = setTimeout(
      () => {
        if (this.#state !== 'leader') return;
        // A timer may fire up to a millisecond before a deadline with a fraction of one
        // (2/3 of the TTL): then arm again, or the step-down would wait for the lease's TTL.
        if (Date.now() < this.#leaderDeadline()) {
          this.#armDeadline();
          return;
        }
        this.#end(
          notLeader(
            `no keep-alive succeeded for ${Math.round(this.ttlMs * LEADER_DEADLINE_FRACTION)} ms; stepped down before the lease could expire`,
          ),
          true,
        );
      },
      Math.max(1, this.#leaderDeadline() - Date.now()),
    );
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
          this.owner.logger?.debug(
            { err: error, election: this.election },
            'election check failed; the periodic re-list retries',
          );
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
      throw notLeader(
        `${this.candidate} no longer holds the leader key of ${this.election}; the write to ${op.key} was refused`,
      );
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
      this.owner.logger?.warn(
        { election: this.election, candidate: this.candidate, wasLeader, reason: reason.message },
        'leadership campaign lost',
      );
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
