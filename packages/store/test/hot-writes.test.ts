import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { databaseTargets } from '@insitu/test-helpers';
import { GENESIS_HASH, HOUR_MS, LATENCY_BUCKETS, type AuditInput, type Store, type UsageDelta } from '../src/index.js';
import { auditCall, freshStore } from './fixtures.js';

const call = (n: number): AuditInput =>
  auditCall(n, { status: 200 + (n % 3), errorCode: n % 5 === 0 ? 'INSITU_X' : '', bytesIn: n, durationMs: n % 7 });

const calls = (from: number, count: number): AuditInput[] => Array.from({ length: count }, (_, i) => call(from + i));

const delta = (keyId: string, calls: number, bucket: number): UsageDelta => {
  const latency = new Array<number>(LATENCY_BUCKETS).fill(0);
  latency[bucket] = calls;
  return {
    hour: 5 * HOUR_MS,
    keyId,
    serviceId: 'svc_1',
    version: '1.0.0',
    statusClass: '2xx',
    calls,
    bytesIn: 2 * calls,
    bytesOut: 3 * calls,
    durationMs: 4 * calls,
    latency,
  };
};

/*
 * Issue 12: the audit and usage batches are written through statements prepared once per
 * shape (hot-statements.ts) instead of one Kysely multi-row INSERT compiled and prepared per
 * batch. That INSERT also put 20 bound values per record in one statement, so on SQLite a
 * backlog over 1,638 records (the records of a database outage, retried together, or a
 * configured batchSize above it) passed its limit of 32,766 bound values and could never
 * be written again ("too many SQL variables"). (mysql2 inlines the values client-side, so
 * MariaDB had no such limit; the test runs there too.)
 */
for (const target of databaseTargets()) {
  describe(`metering and audit batches on ${target.dialect}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;

    before(async () => {
      ({ store, dispose } = await freshStore(target));
    });
    after(async () => dispose?.());
    beforeEach(async () => {
      await store.db.deleteFrom('audit_log').execute();
      await store.db.deleteFrom('audit_head').execute();
      await store.db.deleteFrom('usage_hourly').execute();
    });

    it('hashes a record as before: SHA-256 of the previous hash, a newline and the fields as JSON', async () => {
      await store.transaction((tx) => tx.audit.append([{ ...call(1), serviceName: 'ventes-été' }]));

      const [row] = await store.db.selectFrom('audit_log').selectAll().execute();
      assert.ok(row);
      const c = { ...call(1), serviceName: 'ventes-été' };
      // The fields in their fixed order, as append had them (numbers as numbers).
      const canonical = JSON.stringify([
        row.id,
        c.ts,
        c.requestId,
        c.keyId,
        c.callerOrgId,
        c.serviceId,
        c.serviceOrgId,
        c.serviceName,
        c.version,
        c.providerId,
        c.agentId,
        c.method,
        c.status,
        c.errorCode,
        c.bytesIn,
        c.bytesOut,
        Math.round(c.durationMs),
      ]);
      const stepwise = createHash('sha256').update(GENESIS_HASH).update('\n').update(canonical).digest('hex');
      assert.equal(row.hash, stepwise);
      assert.equal((await store.audit.verify()).ok, true);
    });

    it('writes a backlog of 4,000 records in one batch, chained in order', async () => {
      await store.transaction((tx) => tx.audit.append(calls(1, 4000)));
      const result = await store.audit.verify();
      assert.equal(result.ok, true, JSON.stringify(result.firstBroken));
      assert.equal(result.records, 4000);
      assert.equal(result.head?.seq, 4000);
      const rows = await store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
      assert.deepEqual(
        rows.map((r) => r.request_id),
        calls(1, 4000).map((c) => c.requestId),
      );
      const row = rows[9];
      assert.equal(row?.status, 201);
      assert.equal(row?.error_code, 'INSITU_X');
      assert.equal(Number(row?.bytes_in), 10);
      assert.equal(Number(row?.bytes_out), 20);
      assert.equal(Number(row?.duration_ms), 3);
    });

    it('extends one chain over many batches of every size around the chunk, reusing the same statements', async () => {
      const sizes = [1, 31, 32, 33, 64, 65, 2, 100, 7];
      let next = 1;
      let prepared: number | undefined;
      for (let round = 0; round < 3; round++) {
        for (const size of sizes) {
          await store.transaction((tx) => tx.audit.append(calls(next, size)));
          next += size;
        }
        // Every shape was met in the first round; later rounds prepare nothing new (SQLite; MySQL prepares none).
        if (round === 0) prepared = store.ctx.hot.preparedCount;
        else assert.equal(store.ctx.hot.preparedCount, prepared);
      }
      if (target.dialect === 'sqlite') assert.ok((prepared ?? 0) > 0 && (prepared ?? 0) <= 6, `prepared ${prepared}`);
      const result = await store.audit.verify();
      assert.equal(result.ok, true, JSON.stringify(result.firstBroken));
      assert.equal(result.records, next - 1);
    });

    it('appends outside a transaction as one transaction of its own', async () => {
      await store.audit.append(calls(1, 40));
      await store.audit.append(calls(41, 3));
      const result = await store.audit.verify();
      assert.equal(result.ok, true);
      assert.equal(result.records, 43);
    });

    it('adds usage deltas into the hourly counters, inserting and then incrementing, in batches of any size', async () => {
      const many = Array.from({ length: 70 }, (_, i) => delta(`key_${i}`, 1, i % LATENCY_BUCKETS));
      await store.transaction((tx) => tx.usage.add(many));
      await store.transaction((tx) => tx.usage.add([delta('key_3', 2, 3), delta('key_new', 5, 0)]));
      await store.usage.add(many.slice(0, 33));
      const rows = await store.db.selectFrom('usage_hourly').selectAll().orderBy('key_id').execute();
      assert.equal(rows.length, 71);
      const byKey = new Map(rows.map((r) => [r.key_id, r]));
      const three = byKey.get('key_3');
      assert.equal(Number(three?.calls), 1 + 2 + 1);
      assert.equal(Number(three?.bytes_in), 8);
      assert.equal(Number(three?.bytes_out), 12);
      assert.equal(Number(three?.duration_ms), 16);
      assert.equal(Number(three?.lat_3), 4);
      assert.equal(Number(byKey.get('key_50')?.calls), 1);
      assert.equal(Number(byKey.get('key_new')?.calls), 5);
      const [total] = await store.usage.totals({ from: 0, to: 10 * HOUR_MS, granularity: 'hour' });
      assert.equal(total?.calls, 70 + 7 + 33);
    });
  });
}
