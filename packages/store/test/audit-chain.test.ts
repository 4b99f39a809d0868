import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { databaseTargets } from '@insitu/test-helpers';
import { GENESIS_HASH, auditHash, type AuditHead, type AuditInput, type Store } from '../src/index.js';
import { auditCall, freshStore } from './fixtures.js';

const call = (n: number): AuditInput => auditCall(n);

/*
 * Issue 16, item 10: a row forged at seq <= 0 passed verification (it walked seq > 0), and
 * an unkeyed chain in the same database cannot notice a consistent rewrite of chain and
 * head. Every row is verified now, and heads vouched for outside the database (signed
 * anchors, checked by the server) must still be in the chain.
 */
for (const target of databaseTargets()) {
  describe(`the audit chain on ${target.dialect}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    let anchor: AuditHead | undefined;

    before(async () => {
      ({ store, dispose } = await freshStore(target));
    });
    after(async () => dispose?.());
    beforeEach(async () => {
      await store.db.deleteFrom('audit_log').execute();
      await store.db.deleteFrom('audit_head').execute();
      await store.transaction((tx) => tx.audit.append([call(1), call(2), call(3)]));
      await store.transaction((tx) => tx.audit.append([call(4), call(5)]));
      anchor = await store.audit.head();
    });

    /** Rewrite the chain from record `from` on, recomputing every hash and the head, as someone with write access to the database could. */
    async function rewriteConsistently(change: (seq: number) => Record<string, unknown>): Promise<void> {
      const rows = await store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
      let prev = GENESIS_HASH;
      for (const row of rows) {
        const next = { ...row, ...change(Number(row.seq)), prev_hash: prev };
        next.hash = auditHash(prev, next);
        await store.db
          .updateTable('audit_log')
          .set({ ...change(Number(row.seq)), prev_hash: next.prev_hash, hash: next.hash })
          .where('seq', '=', row.seq)
          .execute();
        prev = next.hash;
      }
      const last = rows.at(-1);
      await store.db
        .updateTable('audit_head')
        .set({ seq: Number(last?.seq ?? 0), hash: prev })
        .where('id', '=', 1)
        .execute();
    }

    it('numbers records 1, 2, 3… without gaps and verifies an intact chain, with and without its anchor', async () => {
      const seqs = (await store.db.selectFrom('audit_log').select('seq').orderBy('seq').execute()).map((r) =>
        Number(r.seq),
      );
      assert.deepEqual(seqs, [1, 2, 3, 4, 5]);
      assert.deepEqual(await store.audit.verify(), { ok: true, records: 5, head: anchor });
      assert.equal((await store.audit.verify({ anchors: anchor ? [anchor] : [] })).ok, true);
      const extended = await store.audit.extend({
        seq: 3,
        hash: (await store.db.selectFrom('audit_log').select('hash').where('seq', '=', 3).executeTakeFirstOrThrow())
          .hash,
      });
      assert.deepEqual(extended, { ok: true, head: anchor });
    });

    for (const seq of [0, -1]) {
      it(`refuses a record forged at seq ${seq}, which the listing would show`, async () => {
        const first = await store.db.selectFrom('audit_log').selectAll().where('seq', '=', 1).executeTakeFirstOrThrow();
        const forged = { ...first, seq, id: `aud_forged${-seq}`, request_id: 'req_forged', prev_hash: GENESIS_HASH };
        forged.hash = auditHash(GENESIS_HASH, forged);
        await store.db.insertInto('audit_log').values(forged).execute();
        const listed = await store.audit.list({ limit: 100 });
        assert.ok(
          listed.some((r) => r.request_id === 'req_forged'),
          'the listing shows the forged row',
        );
        // MariaDB turns an inserted 0 into the next auto-increment number: the forgery lands at the end instead.
        const stored = Number(
          (
            await store.db
              .selectFrom('audit_log')
              .select('seq')
              .where('request_id', '=', 'req_forged')
              .executeTakeFirstOrThrow()
          ).seq,
        );
        const result = await store.audit.verify();
        assert.equal(result.ok, false);
        assert.equal(result.firstBroken?.seq, stored);
        assert.match(result.firstBroken?.reason ?? '', stored < 1 ? /below 1/ : /does not follow/);
      });
    }

    it('refuses a gap: a record deleted and the next one relinked and rehashed', async () => {
      await store.db.deleteFrom('audit_log').where('seq', '=', 5).execute();
      await store.db.updateTable('audit_log').set({ seq: 5 }).where('seq', '=', 4).execute();
      await store.db.deleteFrom('audit_log').where('seq', '=', 3).execute();
      await rewriteConsistently(() => ({}));
      const result = await store.audit.verify();
      assert.equal(result.ok, false);
      assert.match(result.firstBroken?.reason ?? '', /gap/);
    });

    it('a consistent rewrite of chain and head passes the chain alone but not the signed anchor', async () => {
      await rewriteConsistently((seq) => (seq === 2 ? { bytes_out: 999_999 } : {}));
      assert.equal((await store.audit.verify()).ok, true, 'an unkeyed chain cannot notice this: hence the anchors');
      const result = await store.audit.verify({ anchors: anchor ? [anchor] : [] });
      assert.equal(result.ok, false);
      assert.equal(result.firstBroken?.seq, 5);
      assert.match(result.firstBroken?.reason ?? '', /rewritten/);
      assert.equal((await store.audit.extend(anchor)).ok, false, 'the anchoring loop refuses to sign on from it');
    });

    it('a truncated log with a consistent head passes the chain alone but not the signed anchor', async () => {
      await store.db.deleteFrom('audit_log').where('seq', '>', 3).execute();
      await rewriteConsistently(() => ({}));
      assert.equal((await store.audit.verify()).ok, true);
      const result = await store.audit.verify({ anchors: anchor ? [anchor] : [] });
      assert.equal(result.ok, false);
      assert.match(result.firstBroken?.reason ?? '', /truncated or emptied/);
    });

    it('an emptied log (records and head) passes the chain alone but not the signed anchor', async () => {
      await sql`DELETE FROM audit_log`.execute(store.db);
      await sql`DELETE FROM audit_head`.execute(store.db);
      assert.deepEqual(await store.audit.verify(), { ok: true, records: 0 });
      const result = await store.audit.verify({ anchors: anchor ? [anchor] : [] });
      assert.equal(result.ok, false);
      assert.match(result.firstBroken?.reason ?? '', /truncated or emptied/);
      assert.equal((await store.audit.extend(anchor)).ok, false);
    });
  });
}
