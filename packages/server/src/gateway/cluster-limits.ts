import type { Coordinator, Lease, WatchHandle } from '@insitu/coord';
import type { Logger } from '@insitu/core';
import { DAY_MS } from '@insitu/store';
import type { QuotaCounter } from './quota-counter.js';
import type { RateLimiter } from './rate-limiter.js';

const PREFIX = 'limits/';

/**
 * What one node reports: for each key and service it admitted calls for, the running
 * total of calls it admitted since it started (with the limit, so that a node that never
 * saw the pair can still debit it), and the running total of the current UTC day.
 * Totals, not increments: a lost or merged watch event loses nothing, the next report
 * carries it.
 */
interface Report {
  day: number;
  /** `keyId:serviceId` → [calls since start, rate per second, burst, calls today, ms since the last one]. */
  calls: Record<string, [number, number, number, number, number]>;
}

interface Pair {
  total: number;
  today: number;
  day: number;
  rate: number;
  burst: number;
  /** When this node last admitted a call of the pair (pairs idle for a while are left out of reports). */
  at: number;
}

/** This node's view of a peer: the totals last seen from it. */
type Seen = Map<string, { total: number; today: number; day: number }>;

export interface ClusterLimitsOptions {
  nodeId: string;
  logger: Logger;
  /** How often this node's counts go to the others (at most; nothing is sent while idle). */
  intervalMs?: number;
  now?: () => number;
}

/**
 * Sharing of admitted calls between the nodes of a cluster through coord, so that a key's
 * rate limit and daily quota hold for the cluster, not per node. Each node counts the calls
 * it admits per key and service; every `intervalMs` (250 ms) it puts its totals at
 * `limits/<node>` under its own lease (gone when the node dies), if they changed. Every
 * node watches `limits/` and takes what each other node admitted since its last report
 * from its own token bucket and adds it to its daily count. Design, bound and margin: the
 * server README.
 */
export class ClusterLimits {
  private readonly mine = new Map<string, Pair>();
  private readonly peers = new Map<string, Seen>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private watch: WatchHandle | undefined;
  private lease: Lease | undefined;
  private coordinator: Coordinator | undefined;
  private closed = false;
  private publishing = false;
  private lastWarning = 0;
  private readonly now: () => number;
  private readonly intervalMs: number;

  constructor(
    private readonly limiter: RateLimiter,
    private readonly quotas: QuotaCounter,
    private readonly options: ClusterLimitsOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? 250;
  }

  /** Count a call this node admitted (past the rate limit and the daily quota). */
  admitted(keyId: string, serviceId: string, rate: number, burst: number): void {
    if (!this.coordinator) return;
    const now = this.now();
    const day = now - (now % DAY_MS);
    const id = `${keyId}:${serviceId}`;
    const pair = this.mine.get(id) ?? { total: 0, today: 0, day, rate, burst, at: now };
    if (pair.day !== day) {
      pair.day = day;
      pair.today = 0;
    }
    pair.total += 1;
    pair.today += 1;
    pair.rate = rate;
    pair.burst = burst;
    pair.at = now;
    this.mine.set(id, pair);
    this.dirty = true;
  }

  /** Start sharing over `coordinator` (etcd); one node alone (in-memory coordination) shares nothing. */
  async start(coordinator: Coordinator): Promise<void> {
    if (coordinator.kind !== 'etcd') return;
    this.coordinator = coordinator;
    this.watch = await coordinator.watchPrefix(PREFIX, (event) =>
      this.apply(event.key.slice(PREFIX.length), event.type === 'put' ? event.value : undefined),
    );
    for (const [key, value] of await coordinator.list(PREFIX)) this.apply(key.slice(PREFIX.length), value);
    this.timer = setInterval(() => void this.publish(), this.intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.watch?.close().catch(() => undefined);
    await this.lease?.revoke().catch(() => undefined);
  }

  private apply(nodeId: string, value: string | undefined): void {
    if (nodeId === this.options.nodeId || nodeId.includes('/')) return;
    if (value === undefined) {
      // The node is gone (stopped, or its lease expired): what it admitted was taken already.
      this.peers.delete(nodeId);
      return;
    }
    let report: Report;
    try {
      report = JSON.parse(value) as Report;
      if (typeof report !== 'object' || report === null || typeof report.calls !== 'object' || report.calls === null)
        return;
    } catch {
      return;
    }
    const seen: Seen = this.peers.get(nodeId) ?? (new Map() as Seen);
    this.peers.set(nodeId, seen);
    for (const [id, entry] of Object.entries(report.calls)) {
      if (
        !Array.isArray(entry) ||
        entry.length !== 5 ||
        !entry.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)
      )
        continue;
      const [total, rate, burst, today, idleMs] = entry;
      const colon = id.indexOf(':');
      if (colon <= 0 || rate <= 0 || burst <= 0) continue;
      const before = seen.get(id);
      // The first report seen of a pair (a peer or this node just started) counts for the
      // rate only if the peer admitted calls of it within the last second, and at most a
      // burst of them: a node that joins late must not debit what a peer admitted an hour ago.
      const delta = before ? total - before.total : idleMs <= 1000 ? Math.min(total, burst) : 0;
      if (delta > 0) this.limiter.debit(id, delta, rate, burst);
      const todayDelta = before && before.day === report.day ? today - before.today : today;
      if (todayDelta > 0) this.quotas.addRemote(id.slice(0, colon), id.slice(colon + 1), report.day, todayDelta);
      seen.set(id, { total, today, day: report.day });
    }
  }

  private async publish(): Promise<void> {
    const coordinator = this.coordinator;
    if (!coordinator || !this.dirty || this.publishing || this.closed) return;
    this.publishing = true;
    this.dirty = false;
    const now = this.now();
    const day = now - (now % DAY_MS);
    const report: Report = { day, calls: {} };
    for (const [id, pair] of this.mine) {
      // A pair idle for ten minutes is left out (its last totals were sent); it comes back with its totals.
      if (now - pair.at > 600_000) continue;
      report.calls[id] = [pair.total, pair.rate, pair.burst, pair.day === day ? pair.today : 0, now - pair.at];
    }
    try {
      if (!this.lease?.isAlive()) this.lease = await coordinator.grantLease(Math.max(5000, this.intervalMs * 10));
      await coordinator.put(`${PREFIX}${this.options.nodeId}`, JSON.stringify(report), { lease: this.lease });
    } catch (error) {
      this.dirty = true;
      if (now - this.lastWarning > 10_000) {
        this.lastWarning = now;
        this.options.logger.warn(
          { err: (error as Error).message },
          'cannot share admitted calls with the other nodes; limits hold per node until coord answers',
        );
      }
    } finally {
      this.publishing = false;
    }
  }
}
