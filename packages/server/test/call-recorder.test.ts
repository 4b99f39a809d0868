import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { createLogger } from '@insitu/core';
import { openStore, type AuditInput, type Store } from '@insitu/store';
import { databaseTargets } from '@insitu/test-helpers';
import { CallRecorder } from '../src/gateway/call-recorder.js';

const call = (n: number): AuditInput => ({
  ts: 1_700_000_000_000 + n,
  requestId: `req_${String(n).padStart(4, '0')}`,
  keyId: 'key_1',
  callerOrgId: 'org_caller',
  serviceId: 'svc_1',
  serviceOrgId: 'org_owner',
  serviceName: 'sales',
  version: '1.0.0',
  providerId: 'prv_1',
  agentId: 'agt_1',
  method: 'GET',
  status: 200,
  errorCode: '',
  bytesIn: 1,
  bytesOut: 2,
  durationMs: 3,
});

/*
 * Issue 12: the recorder's batches go through statements prepared once (store
 * hot-statements.ts). A batch refused by the database half-way (after a first chunk of rows
 * went in) must roll back whole, keep its records, and be written on the next flush in
 * order: one unbroken chain, every call counted once in the usage counters.
 */
for (const target of databaseTargets()) {
  describe(`the call recorder on ${target.dialect}`, () => {
    let store: Store;
    let drop: () => Promise<void>;

    before(async () => {
      const db = await target.create();
      store = await openStore(db.config);
      drop = () => db.drop();
    });
    after(async () => {
      await store?.close();
      await drop?.();
    });

    const usageCalls = async () => {
      const rows = await store.db.selectFrom('usage_hourly').select('calls').execute();
      return rows.reduce((sum, r) => sum + Number(r.calls), 0);
    };

    it('keeps a batch the database refused half-way and writes it, in order, on the next flush', async () => {
      const recorder = new CallRecorder(store, createLogger({ level: 'silent' }), {
        flushIntervalMs: 60_000,
        batchSize: 100_000,
      });
      for (let n = 1; n <= 10; n++) recorder.record(call(n));
      await recorder.flush();
      assert.equal(recorder.pending, 0);

      // The 30th record of the next batch is refused: the rows before it were already inserted.
      if (target.dialect === 'mysql')
        await sql
          .raw(
            "CREATE TRIGGER audit_refused BEFORE INSERT ON audit_log FOR EACH ROW BEGIN IF NEW.request_id = 'req_0040' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; END IF; END",
          )
          .execute(store.db);
      else
        await sql
          .raw(
            "CREATE TRIGGER audit_refused BEFORE INSERT ON audit_log WHEN NEW.request_id = 'req_0040' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
          )
          .execute(store.db);
      for (let n = 11; n <= 80; n++) recorder.record(call(n));
      await recorder.flush();
      assert.equal(recorder.pending, 70, 'the refused batch is kept');
      assert.equal((await store.audit.verify()).records, 10, 'nothing of the refused batch stays');
      assert.equal(await usageCalls(), 10, 'its usage counters were rolled back too');

      await sql.raw('DROP TRIGGER audit_refused').execute(store.db);
      for (let n = 81; n <= 90; n++) recorder.record(call(n));
      await recorder.close();
      assert.equal(recorder.pending, 0);
      const result = await store.audit.verify();
      assert.equal(result.ok, true, JSON.stringify(result.firstBroken));
      assert.equal(result.records, 90);
      const rows = await store.db.selectFrom('audit_log').select(['seq', 'request_id']).orderBy('seq').execute();
      assert.deepEqual(
        rows.map((r) => r.request_id),
        Array.from({ length: 90 }, (_, i) => call(i + 1).requestId),
      );
      assert.equal(await usageCalls(), 90);
    });
  });
}
