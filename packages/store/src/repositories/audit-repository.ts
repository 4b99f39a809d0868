import { hash } from 'node:crypto';
import { newId } from '@insitu/core';
import type { AuditRow } from '../schema.js';
import { insertRows, type RepositoryContext } from './context.js';

/** What one audited call records: who called what, where it ran, how it ended. Never the payload. */
export interface AuditInput {
  ts: number;
  requestId: string;
  keyId: string;
  callerOrgId: string;
  serviceId: string;
  serviceOrgId: string;
  serviceName: string;
  version: string;
  providerId: string;
  agentId: string;
  method: string;
  status: number;
  errorCode: string;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
}

/** A point of the chain: a record's sequence number and hash. */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** Result of {@link AuditRepository.verify}. */
export interface AuditVerification {
  ok: boolean;
  records: number;
  /** The first record that does not fit the chain, and why. */
  firstBroken?: { seq: number; reason: string };
  head?: AuditHead;
}

/** The hash of the record before the first one. */
export const GENESIS_HASH = '0'.repeat(64);

const FIELDS = [
  'id',
  'ts',
  'request_id',
  'key_id',
  'caller_org_id',
  'service_id',
  'service_org_id',
  'service_name',
  'version',
  'provider_id',
  'agent_id',
  'method',
  'status',
  'error_code',
  'bytes_in',
  'bytes_out',
  'duration_ms',
] as const;

/** The columns of an appended record, in the order `append` binds them. */
const INSERT_COLUMNS = ['seq', ...FIELDS, 'prev_hash', 'hash'] as const;

/** SHA-256 over the previous hash and the record's fields in a fixed order. */
export function auditHash(prevHash: string, row: Pick<AuditRow, (typeof FIELDS)[number]>): string {
  const canonical = JSON.stringify(FIELDS.map((field) => row[field]));
  // One-shot over the same UTF-8 bytes as hashing the three parts in turn (cheaper than a Hash object).
  return hash('sha256', `${prevHash}\n${canonical}`, 'hex');
}

/**
 * The hash-chained audit log: each record carries the hash of the one before, and a head
 * row keeps the last sequence number and hash, so editing, deleting, reordering or
 * truncating records is detected by {@link AuditRepository.verify}.
 */
export class AuditRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /**
   * Append records in order, extending the chain. Call inside a transaction (the head row
   * is locked on MariaDB). Sequence numbers are given here, one after the last, so the
   * chain has no gaps (an auto-increment would skip the numbers of a rolled-back batch).
   */
  async append(inputs: readonly AuditInput[]): Promise<void> {
    if (inputs.length === 0) return;
    const { db, hot } = this.ctx;
    if (!db.isTransaction) {
      await db.transaction().execute((trx) => new AuditRepository({ ...this.ctx, db: trx }).append(inputs));
      return;
    }
    const q = (name: string) => hot.quote(name);
    const lock = this.ctx.dialect === 'mysql' ? ' FOR UPDATE' : '';
    const [head] = await hot.all<{ seq: number | string; hash: string }>(
      db,
      hot.text(
        `audit.head${lock}`,
        () => `SELECT ${q('seq')}, ${q('hash')} FROM ${q('audit_head')} WHERE ${q('id')} = 1${lock}`,
      ),
      [],
    );
    const [max] = await hot.all<{ seq: number | string | null }>(
      db,
      hot.text('audit.max', () => `SELECT MAX(${q('seq')}) AS ${q('seq')} FROM ${q('audit_log')}`),
      [],
    );
    let seq = Math.max(Number(head?.seq ?? 0), Number(max?.seq ?? 0));
    let prev = head?.hash ?? GENESIS_HASH;
    const values: unknown[] = [];
    for (const input of inputs) {
      seq += 1;
      const row = {
        seq,
        id: newId('aud'),
        ts: input.ts,
        request_id: input.requestId,
        key_id: input.keyId,
        caller_org_id: input.callerOrgId,
        service_id: input.serviceId,
        service_org_id: input.serviceOrgId,
        service_name: input.serviceName,
        version: input.version,
        provider_id: input.providerId,
        agent_id: input.agentId,
        method: input.method,
        status: input.status,
        error_code: input.errorCode,
        bytes_in: input.bytesIn,
        bytes_out: input.bytesOut,
        duration_ms: Math.round(input.durationMs),
      };
      const recordHash = auditHash(prev, row);
      values.push(seq, ...FIELDS.map((field) => row[field]), prev, recordHash);
      prev = recordHash;
    }
    await insertRows(this.ctx, 'audit_log', INSERT_COLUMNS, values);
    if (head)
      await hot.run(
        db,
        hot.text(
          'audit.head.update',
          () => `UPDATE ${q('audit_head')} SET ${q('seq')} = ?, ${q('hash')} = ? WHERE ${q('id')} = 1`,
        ),
        [seq, prev],
      );
    else
      await hot.run(
        db,
        hot.text(
          'audit.head.insert',
          () => `INSERT INTO ${q('audit_head')} (${q('id')}, ${q('seq')}, ${q('hash')}) VALUES (1, ?, ?)`,
        ),
        [seq, prev],
      );
  }

  /** The head row: the last record's sequence number and hash, as the database says. */
  async head(): Promise<AuditHead | undefined> {
    const head = await this.ctx.db.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
    return head ? { seq: Number(head.seq), hash: head.hash } : undefined;
  }

  /**
   * The chain's head if it extends `from` (a head vouched for earlier, e.g. a signed
   * anchor): the record at `from.seq` still has `from.hash`, and every record after it
   * links to the one before, with no gap. Reads only the records after `from`, so an
   * anchoring loop can call it often. Without `from`, walks the whole chain.
   */
  async extend(
    from: AuditHead | undefined,
    pageSize = 5000,
  ): Promise<{ ok: true; head: AuditHead } | { ok: false; firstBroken: { seq: number; reason: string } }> {
    let prev = GENESIS_HASH;
    let lastSeq = 0;
    if (from && from.seq > 0) {
      const row = await this.ctx.db
        .selectFrom('audit_log')
        .select(['seq', 'hash'])
        .where('seq', '=', from.seq)
        .executeTakeFirst();
      if (!row)
        return {
          ok: false,
          firstBroken: { seq: from.seq, reason: 'the anchored record is gone (the log was truncated or emptied)' },
        };
      if (row.hash !== from.hash)
        return {
          ok: false,
          firstBroken: { seq: from.seq, reason: 'the anchored record has another hash (the log was rewritten)' },
        };
      prev = from.hash;
      lastSeq = from.seq;
    }
    for (;;) {
      const rows = await this.ctx.db
        .selectFrom('audit_log')
        .selectAll()
        .where('seq', '>', lastSeq)
        .orderBy('seq')
        .limit(pageSize)
        .execute();
      for (const row of rows) {
        const broken = checkLink(row, lastSeq + 1, prev);
        if (broken) return { ok: false, firstBroken: broken };
        prev = row.hash;
        lastSeq = Number(row.seq);
      }
      if (rows.length < pageSize) break;
    }
    return { ok: true, head: { seq: lastSeq, hash: prev } };
  }

  /**
   * Records ordered by seq, newest first, that some organisations may see: calls they
   * made, calls to services they own, and calls that ran at their providers.
   */
  list(options: {
    callerOrgIds?: readonly string[];
    serviceOrgIds?: readonly string[];
    providerIds?: readonly string[];
    serviceId?: string;
    beforeSeq?: number;
    limit: number;
  }): Promise<AuditRow[]> {
    let query = this.ctx.db.selectFrom('audit_log').selectAll();
    const { callerOrgIds, serviceOrgIds, providerIds } = options;
    if (callerOrgIds || serviceOrgIds || providerIds) {
      if ((callerOrgIds?.length ?? 0) + (serviceOrgIds?.length ?? 0) + (providerIds?.length ?? 0) === 0)
        return Promise.resolve([]);
      query = query.where((eb) =>
        eb.or([
          ...(callerOrgIds && callerOrgIds.length > 0 ? [eb('caller_org_id', 'in', callerOrgIds)] : []),
          ...(serviceOrgIds && serviceOrgIds.length > 0 ? [eb('service_org_id', 'in', serviceOrgIds)] : []),
          ...(providerIds && providerIds.length > 0 ? [eb('provider_id', 'in', providerIds)] : []),
        ]),
      );
    }
    if (options.serviceId) query = query.where('service_id', '=', options.serviceId);
    if (options.beforeSeq !== undefined) query = query.where('seq', '<', options.beforeSeq);
    return query.orderBy('seq', 'desc').limit(options.limit).execute();
  }

  /**
   * Walk every record in order of seq, whatever its number (a row forged at seq 0 or below
   * is read too), recomputing every hash: sequence numbers must run 1, 2, 3… without gap or
   * repeat, each record must follow the one before and match its own hash, and the chain
   * must end at the head row. With `anchors` (heads signed outside the database, checked
   * by the caller), the record at each anchored seq must still carry the anchored hash, so
   * a consistent rewrite of chain and head, a truncation or an emptied log is detected too.
   */
  async verify(options: { pageSize?: number; anchors?: readonly AuditHead[] } = {}): Promise<AuditVerification> {
    const pageSize = options.pageSize ?? 5000;
    const head = await this.head();
    const anchors = (options.anchors ?? []).filter((a) => a.seq > 0).sort((a, b) => a.seq - b.seq);
    let anchorIndex = 0;
    let prev = GENESIS_HASH;
    let lastSeq: number | undefined;
    let records = 0;
    const broken = (seq: number, reason: string): AuditVerification => ({
      ok: false,
      records,
      firstBroken: { seq, reason },
      ...(head ? { head } : {}),
    });
    for (;;) {
      let query = this.ctx.db.selectFrom('audit_log').selectAll().orderBy('seq').limit(pageSize);
      if (lastSeq !== undefined) query = query.where('seq', '>', lastSeq);
      const rows = await query.execute();
      for (const row of rows) {
        records += 1;
        const seq = Number(row.seq);
        const link = checkLink(row, (lastSeq ?? 0) + 1, prev);
        if (link) return broken(link.seq, link.reason);
        prev = row.hash;
        lastSeq = seq;
        while (anchorIndex < anchors.length && (anchors[anchorIndex]?.seq ?? 0) <= seq) {
          const anchor = anchors[anchorIndex] as AuditHead;
          if (anchor.seq === seq && anchor.hash !== row.hash)
            return broken(seq, 'differs from the signed anchor of this record (the log was rewritten)');
          anchorIndex += 1;
        }
      }
      if (rows.length < pageSize) break;
    }
    const end = lastSeq ?? 0;
    const pendingAnchor = anchors[anchorIndex];
    if (pendingAnchor && pendingAnchor.seq > 0) {
      return broken(
        end,
        `the log ends at record ${end} but a signed anchor vouches for record ${pendingAnchor.seq} (the log was truncated or emptied)`,
      );
    }
    if (head ? head.hash !== prev || head.seq !== end : records > 0) {
      return broken(end, 'the chain ends before its recorded head (records at the end were deleted)');
    }
    return { ok: true, records, ...(head ? { head } : {}) };
  }
}

/** Why `row` cannot be the record at `expectedSeq` after a record hashed `prev`; undefined when it can. */
function checkLink(row: AuditRow, expectedSeq: number, prev: string): { seq: number; reason: string } | undefined {
  const seq = Number(row.seq);
  if (seq < 1) return { seq, reason: 'has a sequence number below 1 (a forged record)' };
  if (seq < expectedSeq) return { seq, reason: 'repeats a sequence number' };
  if (seq > expectedSeq) return { seq, reason: `follows record ${expectedSeq - 1} with a gap (records were deleted)` };
  if (row.prev_hash !== prev)
    return { seq, reason: 'does not follow the record before it (a record was deleted, inserted or reordered)' };
  if (auditHash(prev, row) !== row.hash)
    return { seq, reason: 'its content does not match its hash (the record was edited)' };
  return undefined;
}
