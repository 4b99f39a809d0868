import type { Logger } from '@insitu/core';
import { HOUR_MS, LATENCY_BUCKETS, latencyBucket, type AuditInput, type Store, type UsageDelta } from '@insitu/store';

/**
 * Metering and audit off the hot path: calls are queued in memory and written in
 * batches (usage counters summed per hour, key, service, version and status class; audit
 * records appended to the hash chain in order), every `flushIntervalMs` or when
 * `batchSize` records wait. `close()` writes everything left, so a clean shutdown loses
 * nothing. A failed write keeps the records and retries on the next flush.
 */
export class CallRecorder {
  private audit: AuditInput[] = [];
  private usage = new Map<string, UsageDelta>();
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly options: { flushIntervalMs: number; batchSize: number },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /** Queue one call. */
  record(call: AuditInput): void {
    this.audit.push(call);
    const hour = call.ts - (call.ts % HOUR_MS);
    const statusClass = `${Math.floor(call.status / 100)}xx`;
    const id = [hour, call.keyId, call.serviceId, call.version, statusClass].join('\u0000');
    const delta = this.usage.get(id) ?? {
      hour,
      keyId: call.keyId,
      serviceId: call.serviceId,
      version: call.version,
      statusClass,
      calls: 0,
      bytesIn: 0,
      bytesOut: 0,
      durationMs: 0,
      latency: new Array<number>(LATENCY_BUCKETS).fill(0),
    };
    delta.calls += 1;
    const latency = (delta.latency ??= new Array<number>(LATENCY_BUCKETS).fill(0));
    latency[latencyBucket(call.durationMs)] = (latency[latencyBucket(call.durationMs)] ?? 0) + 1;
    delta.bytesIn += call.bytesIn;
    delta.bytesOut += call.bytesOut;
    delta.durationMs += Math.round(call.durationMs);
    this.usage.set(id, delta);
    if (this.audit.length >= this.options.batchSize) void this.flush();
  }

  /** Records waiting to be written. */
  get pending(): number {
    return this.audit.length;
  }

  /** Write everything queued so far; resolves when it is in the database. Writes run one at a time, in order. */
  flush(): Promise<void> {
    const next = this.chain.then(() => this.write());
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async write(): Promise<void> {
    if (this.audit.length === 0 && this.usage.size === 0) return;
    const audit = this.audit;
    const usage = this.usage;
    this.audit = [];
    this.usage = new Map();
    try {
      await this.store.transaction(async (tx) => {
        await tx.usage.add([...usage.values()]);
        await tx.audit.append(audit);
      });
    } catch (error) {
      this.logger.error({ err: error, records: audit.length }, 'writing metering and audit records failed; will retry');
      // Put them back in front, in order, and merge the counters.
      this.audit = [...audit, ...this.audit];
      for (const [id, delta] of usage) {
        const current = this.usage.get(id);
        if (!current) this.usage.set(id, delta);
        else {
          current.calls += delta.calls;
          current.bytesIn += delta.bytesIn;
          current.bytesOut += delta.bytesOut;
          current.durationMs += delta.durationMs;
          current.latency = Array.from(
            { length: LATENCY_BUCKETS },
            (_, i) => (current.latency?.[i] ?? 0) + (delta.latency?.[i] ?? 0),
          );
        }
      }
      if (this.closed) throw error;
    }
  }

  /** Stop the timer and write everything left. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
