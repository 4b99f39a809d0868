/** Outcome of {@link RateLimiter.take}: the decision and what the `RateLimit-*` headers say. */
export type RateDecision =
  | { ok: true; remaining: number; resetSeconds: number }
  | { ok: false; retryAfterSeconds: number; remaining: 0; resetSeconds: number };

interface Bucket {
  tokens: number;
  updated: number;
  rate: number;
  burst: number;
}

/**
 * Token buckets per key and service. `take` is synchronous, so concurrent calls on one
 * node can never be admitted beyond the bucket. In a cluster, the calls the other nodes
 * admitted are taken from this node's bucket too, when their reports arrive
 * ({@link debit}): a bucket may then go below zero (the cluster admitted more than the
 * limit during one sharing delay), and this node admits nothing until it has refilled,
 * so the excess is paid back. Idle full buckets are forgotten to bound memory.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastPrune = 0;

  constructor(private readonly now: () => number = Date.now) {}

  private bucket(id: string, rate: number, burst: number, now: number): Bucket {
    let bucket = this.buckets.get(id);
    if (!bucket) {
      bucket = { tokens: burst, updated: now, rate, burst };
      this.buckets.set(id, bucket);
    }
    bucket.rate = rate;
    bucket.burst = burst;
    bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.updated) / 1000) * rate);
    bucket.updated = now;
    return bucket;
  }

  take(id: string, ratePerSecond: number, burst: number): RateDecision {
    const now = this.now();
    const bucket = this.bucket(id, ratePerSecond, burst, now);
    if (now - this.lastPrune > 60_000) this.prune(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return {
        ok: true,
        remaining: Math.floor(bucket.tokens),
        resetSeconds: Math.ceil((burst - bucket.tokens) / ratePerSecond),
      };
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond));
    return {
      ok: false,
      retryAfterSeconds,
      remaining: 0,
      resetSeconds: Math.max(retryAfterSeconds, Math.ceil((burst - bucket.tokens) / ratePerSecond)),
    };
  }

  /**
   * Calls admitted elsewhere (another node) under this key and service. The bucket goes
   * down by as much, to at most one second of rate plus the burst below zero.
   */
  debit(id: string, calls: number, ratePerSecond: number, burst: number): void {
    if (calls <= 0) return;
    const bucket = this.bucket(id, ratePerSecond, burst, this.now());
    bucket.tokens = Math.max(-(burst + ratePerSecond), bucket.tokens - calls);
  }

  private prune(now: number): void {
    this.lastPrune = now;
    for (const [id, bucket] of this.buckets)
      if (now - bucket.updated > 60_000 && bucket.tokens >= bucket.burst) this.buckets.delete(id);
  }

  get size(): number {
    return this.buckets.size;
  }
}
