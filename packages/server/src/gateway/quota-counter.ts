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
 * on this node. (Several nodes each admit up to the quota minus what the others had
 * flushed when they loaded: documented in the server README.)
 */
export class QuotaCounter {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<void>>();

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
            if (this.entries.get(id)?.day !== day) this.entries.set(id, { day, count });
          })
          .finally(() => this.loading.delete(id));
        this.loading.set(id, pending);
      }
      await pending;
    }
    const entry = this.entries.get(id) ?? { day, count: 0 };
    this.entries.set(id, entry);
    if (entry.count >= quota) return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((day + DAY_MS - this.now()) / 1000)) };
    entry.count += 1;
    return { ok: true, used: entry.count };
  }
}
