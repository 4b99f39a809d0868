import { sql } from 'kysely';
import { LATENCY_BUCKETS } from '../latency-histogram.js';
import { insertRows, type RepositoryContext } from './context.js';

const LATENCY_COLUMNS = Array.from({ length: LATENCY_BUCKETS }, (_, i) => `lat_${i}` as const);
/** The key of an hourly counter row. */
const KEY_COLUMNS = ['hour', 'key_id', 'service_id', 'version', 'status_class'] as const;
/** The columns a delta adds to. */
const COUNTER_COLUMNS = ['calls', 'bytes_in', 'bytes_out', 'duration_ms', ...LATENCY_COLUMNS] as const;
/** The columns `add` binds, in order. */
const USAGE_COLUMNS = [...KEY_COLUMNS, ...COUNTER_COLUMNS] as const;

/** One metered call, or the sum of several with the same key. */
export interface UsageDelta {
  hour: number;
  keyId: string;
  serviceId: string;
  version: string;
  statusClass: string;
  calls: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Calls per latency bucket (latency-histogram.ts); missing means none counted. */
  latency?: number[];
}

/** A usage total for one period. */
export interface UsageTotal {
  period: number;
  keyId?: string;
  serviceId?: string;
  calls: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  /** Calls per latency bucket (latency-histogram.ts), summed over the period. */
  latency: number[];
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Hourly usage counters per key, service, version and status class. */
export class UsageRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Add deltas to the hourly counters (insert or increment), with statements prepared once (hot-statements.ts). */
  async add(deltas: readonly UsageDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    if (!this.ctx.db.isTransaction) {
      await this.ctx.db.transaction().execute((trx) => new UsageRepository({ ...this.ctx, db: trx }).add(deltas));
      return;
    }
    const values: unknown[] = [];
    for (const d of deltas) {
      values.push(d.hour, d.keyId, d.serviceId, d.version, d.statusClass, d.calls, d.bytesIn, d.bytesOut, d.durationMs);
      for (let i = 0; i < LATENCY_BUCKETS; i++) values.push(d.latency?.[i] ?? 0);
    }
    await insertRows(this.ctx, 'usage_hourly', USAGE_COLUMNS, values, this.upsert());
  }

  /** What a row whose hour, key, service, version and status class are already counted adds to the counters. */
  private upsert(): { name: string; text: string } {
    const { hot, dialect } = this.ctx;
    const q = (name: string) => hot.quote(name);
    const text = hot.text(`usage.upsert`, () =>
      dialect === 'mysql'
        ? ` ON DUPLICATE KEY UPDATE ${COUNTER_COLUMNS.map((c) => `${q(c)} = ${q(c)} + VALUES(${q(c)})`).join(', ')}`
        : ` ON CONFLICT (${KEY_COLUMNS.map(q).join(', ')}) DO UPDATE SET ${COUNTER_COLUMNS.map(
            (c) => `${q(c)} = ${q('usage_hourly')}.${q(c)} + ${q('excluded')}.${q(c)}`,
          ).join(', ')}`,
    );
    return { name: ' upsert', text };
  }

  /**
   * Totals per period (hour or day) in [from, to), optionally per key or service, for the
   * services or keys of some organisations.
   */
  async totals(options: {
    from: number;
    to: number;
    granularity: 'hour' | 'day';
    serviceIds?: readonly string[];
    keyIds?: readonly string[];
    groupBy?: 'key' | 'service';
  }): Promise<UsageTotal[]> {
    const { from, to } = options;
    if (options.serviceIds?.length === 0 || options.keyIds?.length === 0) return [];
    const size = options.granularity === 'day' ? DAY_MS : HOUR_MS;
    const period = sql<number>`(hour - (hour % ${size}))`;
    let query = this.ctx.db
      .selectFrom('usage_hourly')
      .select([
        period.as('period'),
        sql<number>`SUM(calls)`.as('calls'),
        sql<number>`SUM(CASE WHEN status_class IN ('4xx', '5xx') THEN calls ELSE 0 END)`.as('errors'),
        sql<number>`SUM(bytes_in)`.as('bytes_in'),
        sql<number>`SUM(bytes_out)`.as('bytes_out'),
        sql<number>`SUM(duration_ms)`.as('duration_ms'),
        ...LATENCY_COLUMNS.map((c) => sql<number>`SUM(${sql.ref(c)})`.as(c)),
      ])
      .where('hour', '>=', from)
      .where('hour', '<', to);
    if (options.serviceIds) query = query.where('service_id', 'in', options.serviceIds);
    if (options.keyIds) query = query.where('key_id', 'in', options.keyIds);
    const grouped =
      options.groupBy === 'key'
        ? query.select('key_id').groupBy([period, 'key_id']).orderBy(period).orderBy('key_id')
        : options.groupBy === 'service'
          ? query.select('service_id').groupBy([period, 'service_id']).orderBy(period).orderBy('service_id')
          : query.groupBy(period).orderBy(period);
    const rows = (await grouped.execute()) as Array<
      {
        period: number;
        calls: number;
        errors: number;
        bytes_in: number;
        bytes_out: number;
        duration_ms: number;
        key_id?: string;
        service_id?: string;
      } & Record<string, unknown>
    >;
    return rows.map((r) => ({
      period: Number(r.period),
      ...(r.key_id !== undefined ? { keyId: r.key_id } : {}),
      ...(r.service_id !== undefined ? { serviceId: r.service_id } : {}),
      calls: Number(r.calls),
      errors: Number(r.errors),
      bytesIn: Number(r.bytes_in),
      bytesOut: Number(r.bytes_out),
      durationMs: Number(r.duration_ms),
      latency: LATENCY_COLUMNS.map((c) => Number(r[c] ?? 0)),
    }));
  }

  /** Calls of one key to one service since `since` (for daily quotas). */
  async callsSince(keyId: string, serviceId: string, since: number): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('usage_hourly')
      .select(sql<number>`COALESCE(SUM(calls), 0)`.as('n'))
      .where('key_id', '=', keyId)
      .where('service_id', '=', serviceId)
      .where('hour', '>=', since)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
