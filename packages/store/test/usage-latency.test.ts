import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { databaseTargets } from '@insitu/test-helpers';
import { HOUR_MS, LATENCY_BUCKETS, latencyBucket, latencyQuantile, type Store, type UsageDelta } from '../src/index.js';
import { freshStore } from './fixtures.js';

/** One call's usage delta, with its duration in the latency histogram. */
function callOf(hour: number, durationMs: number, keyId = 'key_a'): UsageDelta {
  const latency = new Array<number>(LATENCY_BUCKETS).fill(0);
  latency[latencyBucket(durationMs)] = 1;
  return {
    hour,
    keyId,
    serviceId: 'svc_1',
    version: '1.0.0',
    statusClass: '2xx',
    calls: 1,
    bytesIn: 0,
    bytesOut: 0,
    durationMs,
    latency,
  };
}

describe('latency histogram', () => {
  it('puts durations into powers-of-2 buckets and reports a quantile as its bucket bound', () => {
    assert.equal(latencyBucket(0), 0);
    assert.equal(latencyBucket(0.5), 0);
    assert.equal(latencyBucket(1), 1);
    assert.equal(latencyBucket(3), 2);
    assert.equal(latencyBucket(4), 3);
    assert.equal(latencyBucket(1e9), LATENCY_BUCKETS - 1);
    assert.equal(latencyBucket(Number.NaN), 0);
    assert.equal(latencyQuantile(new Array<number>(LATENCY_BUCKETS).fill(0), 0.5), undefined);
    const h = new Array<number>(LATENCY_BUCKETS).fill(0);
    h[latencyBucket(3)] = 98; // 98 calls in [2, 4) ms
    h[latencyBucket(700)] = 2; // 2 calls in [512, 1024) ms
    assert.equal(latencyQuantile(h, 0.5), 4);
    assert.equal(latencyQuantile(h, 0.98), 4);
    assert.equal(latencyQuantile(h, 0.99), 1024);
  });
});

for (const target of databaseTargets()) {
  describe(`usage latency percentiles on ${target.dialect}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    before(async () => {
      ({ store, dispose } = await freshStore(target));
    });
    after(async () => dispose());

    it('sums histograms per hour and day through upserts, so p50/p99 come from all calls of a period', async () => {
      const hour = Date.parse('2026-03-01T10:00:00Z');
      // Hour 1: 90 fast calls (10 ms) and 10 slow ones (300 ms), written in several batches.
      for (let batch = 0; batch < 10; batch++)
        await store.usage.add([...Array.from({ length: 9 }, () => callOf(hour, 10)), callOf(hour, 300)]);
      // Hour 2: 10 calls of 2000 ms by another key.
      await store.usage.add(Array.from({ length: 10 }, () => callOf(hour + HOUR_MS, 2000, 'key_b')));
      const hourly = await store.usage.totals({ from: hour, to: hour + 2 * HOUR_MS, granularity: 'hour' });
      assert.equal(hourly.length, 2);
      assert.equal(hourly[0]?.calls, 100);
      assert.equal(hourly[0]?.latency[latencyBucket(10)], 90);
      assert.equal(hourly[0]?.latency[latencyBucket(300)], 10);
      assert.equal(latencyQuantile(hourly[0]?.latency ?? [], 0.5), 16);
      assert.equal(latencyQuantile(hourly[0]?.latency ?? [], 0.99), 512);
      assert.equal(latencyQuantile(hourly[1]?.latency ?? [], 0.5), 2048);
      const daily = await store.usage.totals({ from: hour, to: hour + 2 * HOUR_MS, granularity: 'day' });
      assert.equal(daily.length, 1);
      assert.equal(daily[0]?.calls, 110);
      // 110 calls: rank 55 is fast, rank 109 (p99) is one of the 2000 ms calls.
      assert.equal(latencyQuantile(daily[0]?.latency ?? [], 0.5), 16);
      assert.equal(latencyQuantile(daily[0]?.latency ?? [], 0.99), 2048);
      const perKey = await store.usage.totals({
        from: hour,
        to: hour + 2 * HOUR_MS,
        granularity: 'day',
        groupBy: 'key',
      });
      assert.deepEqual(
        perKey.map((t) => [t.keyId, latencyQuantile(t.latency, 0.99)]),
        [
          ['key_a', 512],
          ['key_b', 2048],
        ],
      );
    });
  });
}
