import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';
import { LATENCY_BUCKETS } from '../latency-histogram.js';

/**
 * A fixed log-scale latency histogram per usage row (`lat_0` … `lat_19`: calls per bucket of
 * `latency-histogram.ts`), so p50/p99 per hour or day come from sums of counters, atomically
 * incremented by the same upsert as `calls`, on both dialects. Rows written before this
 * migration have zeros: their buckets report no percentile.
 */
export function usageLatency(_dialect: Dialect) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // One column per statement: SQLite's ALTER TABLE adds one at a time.
      for (let i = 0; i < LATENCY_BUCKETS; i++)
        await db.schema
          .alterTable('usage_hourly')
          .addColumn(`lat_${i}`, sql.raw('bigint'), (c) => c.notNull().defaultTo(0))
          .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      for (let i = 0; i < LATENCY_BUCKETS; i++)
        await db.schema.alterTable('usage_hourly').dropColumn(`lat_${i}`).execute();
    },
  };
}
