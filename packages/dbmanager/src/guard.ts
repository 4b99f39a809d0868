import { EventEmitter } from 'node:events';
import { createLogger, sleep, type Logger } from '@insitu/core';
import { readReadOnly } from './actions.js';
import type { Coordinator, Lease } from './coord-port.js';
import { fenceMember, type FenceResult } from './fence.js';
import { connectMember, type MemberConnection, type MemberEndpoint } from './sql.js';
import { coordKeys, parseRecord, PublishedPrimarySchema } from './topology.js';

/** Options of {@link MemberGuard}. */
export interface MemberGuardOptions {
  cluster: string;
  /** The member this guard sits beside (its name in the dbmanager config). */
  member: string;
  /** How the guard reaches its member: locally, ideally its Unix socket (works when the network is cut). */
  endpoint: MemberEndpoint;
  /** The cluster's coord (etcd), reached over the same network as the other members. */
  coordinator: Coordinator;
  /** TTL of the guard's lease; it fences its member after 2/3 of it without a renewal. Default 2000 ms. */
  leaseTtlMs?: number;
  /** How often it checks; default 200 ms. */
  intervalMs?: number;
  /** Users whose connections are never killed (the manager's, the replication account). */
  spareUsers: readonly string[];
  logger?: Logger;
}

/** Why the guard fenced its member. */
export type GuardFenceReason = 'lease-lost' | 'not-primary';

/** What a guard did, for logs and tests. */
export interface GuardFence extends FenceResult {
  at: number;
  reason: GuardFenceReason;
}

const RENEW_FRACTION = 2 / 3;

/**
 * The member's own fence, running on its machine (Patroni's rule): it holds a lease in
 * coord (`dbmanager/<cluster>/guards/<member>`) while it can reach both coord and its
 * member; when it cannot renew the lease for 2/3 of its TTL — before coord can let it
 * lapse — it sets its member `read_only=1` and kills its client connections, whatever the
 * manager can or cannot see. It also fences its member when coord names another member
 * primary. It never makes its member writable: only the elected manager does that.
 *
 * A member that does not answer the guard (paused, overloaded) makes it give up its lease
 * (revoked); when the member answers again while the guard holds no lease, it is fenced.
 *
 * @example
 * const guard = new MemberGuard({ cluster: 'platform', member: 'db1', endpoint, coordinator, spareUsers: ['insitu_manager', 'repl'] });
 * guard.start();
 */
export class MemberGuard extends EventEmitter {
  readonly #options: Required<Omit<MemberGuardOptions, 'logger'>> & { logger: Logger };
  readonly #keys: ReturnType<typeof coordKeys>;
  readonly #abort = new AbortController();
  #lease: Lease | undefined;
  /** The last moment this guard held a fresh lease (or started). */
  #heldAt: number;
  #loop: Promise<void> | undefined;
  /** Fences that took effect (`read_only=1` read back). */
  readonly fences: GuardFence[] = [];
  /** Fence attempts that did not (the member stayed writable); each is retried at the next check. */
  readonly failedFences: GuardFence[] = [];

  constructor(options: MemberGuardOptions) {
    super();
    this.#options = {
      leaseTtlMs: 2000,
      intervalMs: 200,
      ...options,
      logger: (options.logger ?? createLogger({ name: 'dbmanager-guard' })).child({
        guard: options.member,
        cluster: options.cluster,
      }),
    };
    this.#keys = coordKeys(options.cluster);
    this.#heldAt = Date.now();
  }

  /** The coord key of this guard's lease. */
  get key(): string {
    return `${this.#keys.prefix}guards/${this.#options.member}`;
  }

  /** True while the guard holds a lease renewed within 2/3 of its TTL. */
  holding(): boolean {
    const lease = this.#lease;
    return (
      lease !== undefined &&
      lease.isAlive() &&
      Date.now() - lease.lastRenewedAt < this.#options.leaseTtlMs * RENEW_FRACTION
    );
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    await this.#lease?.revoke().catch(() => undefined);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await this.#check();
      } catch (error) {
        this.#options.logger.warn({ err: error }, 'guard check failed');
      }
      await sleep(Math.max(0, this.#options.intervalMs - (Date.now() - started)), signal);
    }
  }

  #connect(): Promise<MemberConnection> {
    const timeout = Math.max(200, Math.floor(this.#options.leaseTtlMs / 3));
    return connectMember(this.#options.endpoint, { connectTimeoutMs: timeout, queryTimeoutMs: timeout });
  }

  async #check(): Promise<void> {
    const { leaseTtlMs } = this.#options;
    const writable = await this.#readWritable();
    if (writable === undefined) {
      // The member does not answer: hold no lease for it. When it answers again it is fenced first.
      if (this.#lease !== undefined) {
        const lease = this.#lease;
        this.#lease = undefined;
        void lease.revoke().catch(() => undefined);
        this.#options.logger.warn('member does not answer; lease given up');
      }
      return;
    }
    if (this.#lease !== undefined) this.#heldAt = Math.max(this.#heldAt, this.#lease.lastRenewedAt);
    if (this.holding()) {
      if (writable) {
        const primary = await this.#publishedPrimary();
        if (primary !== undefined && primary !== this.#options.member) await this.#fence('not-primary');
      }
      return;
    }
    // No renewal for 2/3 of the TTL: coord may let the lease lapse soon and elect/promote without us. Fence first, then try again.
    if (writable && Date.now() - this.#heldAt >= leaseTtlMs * RENEW_FRACTION) await this.#fence('lease-lost');
    await this.#acquire();
  }

  async #readWritable(): Promise<boolean | undefined> {
    try {
      const connection = await this.#connect();
      try {
        return !(await readReadOnly(connection));
      } finally {
        await connection.close();
      }
    } catch {
      return undefined;
    }
  }

  async #acquire(): Promise<void> {
    const { coordinator, leaseTtlMs } = this.#options;
    const deadline = Math.max(200, Math.floor(leaseTtlMs / 3));
    try {
      const grant = coordinator.grantLease(leaseTtlMs);
      // A grant that answers after the deadline is not kept alive for nothing.
      const lease = await withDeadline(grant, deadline).catch((error: unknown) => {
        grant.then((late) => late.revoke()).catch(() => undefined);
        throw error;
      });
      try {
        await withDeadline(
          coordinator.put(this.key, JSON.stringify({ member: this.#options.member, at: Date.now() }), { lease }),
          deadline,
        );
      } catch (error) {
        void lease.revoke().catch(() => undefined);
        throw error;
      }
      const previous = this.#lease;
      this.#lease = lease;
      if (previous !== undefined) void previous.revoke().catch(() => undefined);
    } catch (error) {
      this.#options.logger.debug({ err: error }, 'cannot take the guard lease');
    }
  }

  async #publishedPrimary(): Promise<string | undefined> {
    try {
      const text = await withDeadline(
        this.#options.coordinator.get(this.#keys.primary),
        Math.max(200, Math.floor(this.#options.leaseTtlMs / 3)),
      );
      return parseRecord(PublishedPrimarySchema, text, 'published primary')?.member;
    } catch {
      return undefined;
    }
  }

  async #fence(reason: GuardFenceReason): Promise<void> {
    const result = await fenceMember(() => this.#connect(), this.#options.spareUsers, {
      deadlineMs: Math.max(500, this.#options.leaseTtlMs),
    });
    const fence: GuardFence = { ...result, at: Date.now(), reason };
    (result.readOnly ? this.fences : this.failedFences).push(fence);
    // Only a verified read_only=1 is a fence; otherwise the next check (intervalMs later) finds it writable and tries again.
    if (result.readOnly)
      this.#options.logger.warn(
        { reason, killed: result.killed, readOnly: true },
        `guard fenced ${this.#options.member}: read_only=1 verified, ${result.killed} client connection(s) killed`,
      );
    else
      this.#options.logger.error(
        { reason, killed: result.killed, readOnly: false, error: result.error },
        `guard could not fence ${this.#options.member}: ${result.error ?? 'read_only is still 0'}; retrying`,
      );
    this.emit(result.readOnly ? 'fence' : 'fence-failed', fence);
  }
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
