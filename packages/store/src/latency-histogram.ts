/**
 * A fixed log-scale latency histogram: bucket 0 holds calls under 1 ms, bucket i (1 … 18)
 * calls of [2^(i-1), 2^i) ms, bucket 19 calls of 2^18 ms (262 s) and more. Counters of equal
 * buckets add up, so an hour's or a day's histogram is the sum of its rows'.
 */
export const LATENCY_BUCKETS = 20;

/** The bucket of a call that took `ms` milliseconds. */
export function latencyBucket(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(LATENCY_BUCKETS - 1, Math.floor(Math.log2(ms)) + 1);
}

/** The exclusive upper bound of a bucket in ms (the last one is open: its lower bound). */
export function latencyBucketBound(bucket: number): number {
  return bucket >= LATENCY_BUCKETS - 1 ? 2 ** (LATENCY_BUCKETS - 2) : 2 ** bucket;
}

/**
 * The q-quantile (0 < q ≤ 1) of a histogram, as the upper bound of the bucket holding the
 * call of rank ceil(q·n): at most a factor 2 above the true value, never below it (except in
 * the open last bucket). `undefined` for an empty histogram.
 */
export function latencyQuantile(histogram: readonly number[], q: number): number | undefined {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < histogram.length; i++) {
    seen += histogram[i] ?? 0;
    if (seen >= rank) return latencyBucketBound(i);
  }
  return latencyBucketBound(histogram.length - 1);
}
