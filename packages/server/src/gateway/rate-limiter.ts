/** Outcome of {@link RateLimiter.take}. */
export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updated: number;
}

/**
 * Token buckets per key and service, in this process. `take` is synchronous, so
 * concurrent calls on one node can never be admitted beyond the bucket. Idle full
 * buckets are forgotten to bound memory.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastPrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  take(id: string, ratePerSecond: number, burst: number): RateDecision {
    const now = this.now();
    const bucket = this.buckets.get(id) ?? { tokens: burst, updated: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updated) / 1000) * ratePerSecond);
    bucket.updated = now;
    this.buckets.set(id, bucket);
    if (now - this.lastPrune > 60_000) this.prune(now, burst);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond)) };
  }

  private prune(now: number, burst: number): void {
    this.lastPrune = now;
    for (const [id, bucket] of this.buckets) if (now - bucket.updated > 60_000 && bucket.tokens >= burst) this.buckets.delete(id);
  }

  get size(): number {
    return this.buckets.size;
  }
}
