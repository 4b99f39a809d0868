import { DAY_MS } from '@insitu/store';

/** Outcome of {@link QuotaCounter.take}. */
export type QuotaDecision = { ok: true; used: number } | { ok: false; retryAfterSeconds: number };

interface Entry {
  day: number;
  count: number;
}

/**
 * Daily call quotas per key and service. The count of a day is loaded once from the
 * usage table (calls other processes and earlier runs made), then kept in memory; the
 * check and the increment are one synchronous step, so concurrent calls cannot overrun it
 * on this node. In a cluster, the calls the other nodes admit are added as their reports
 * arrive ({@link addRemote}); reports that arrive before the day's count is loaded are
 * kept, and the load takes the larger of the table's count and theirs (the table may not
 * hold them yet). The margin this leaves is in the server README.
 */
export class QuotaCounter {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<void>>();
  /** Calls other nodes reported before this node loaded the day's count, by id. */
  private readonly early = new Map<string, Entry>();

  constructor(
    private readonly load: (keyId: string, serviceId: string, since: number) => Promise<number>,
    private readonly now: () => number = Date.now,
  ) {}

  async take(keyId: string, serviceId: string, quota: number): Promise<QuotaDecision> {
    const id = `${keyId}\u0000${serviceId}`;
    const now = this.now();
    const day = now - (now % DAY_MS);
    if (this.entries.get(id)?.day !== day) {
      let pending = this.loading.get(id);
      if (!pending) {
        pending = this.load(keyId, serviceId, day)
          .then((count) => {
            if (this.entries.get(id)?.day !== day) {
              const reported = this.early.get(id);
              this.entries.set(id, { day, count: Math.max(count, reported?.day === day ? reported.count : 0) });
            }
            this.early.delete(id);
          })
          .finally(() => this.loading.delete(id));
        this.loading.set(id, pending);
      }
      await pending;
    }
    const entry = this.entries.get(id) ?? { day, count: 0 };
    this.entries.set(id, entry);
    if (entry.count >= quota)
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((day + DAY_MS - this.now()) / 1000)) };
    entry.count += 1;
    return { ok: true, used: entry.count };
  }

  /** Calls another node admitted under this key and service on `day` (its start, epoch ms). */
  addRemote(keyId: string, serviceId: string, day: number, calls: number): void {
    if (calls <= 0) return;
    const id = `${keyId}\u0000${serviceId}`;
    const entry = this.entries.get(id);
    if (entry?.day === day) {
      entry.count += calls;
      return;
    }
    const early = this.early.get(id);
    if (early?.day === day) early.count += calls;
    else {
      if (this.early.size > 100_000) this.early.clear();
      this.early.set(id, { day, count: calls });
    }
  }
}
