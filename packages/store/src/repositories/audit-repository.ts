import { createHash } from 'node:crypto';
import { newId } from '@insitu/core';
import type { AuditRow } from '../schema.js';
import type { RepositoryContext } from './context.js';

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

/** Result of {@link AuditRepository.verify}. */
export interface AuditVerification {
  ok: boolean;
  records: number;
  /** The first record that does not fit the chain, and why. */
  firstBroken?: { seq: number; reason: string };
  head?: { seq: number; hash: string };
}

/** The hash of the record before the first one. */
export const GENESIS_HASH = '0'.repeat(64);

const FIELDS = [
  'id', 'ts', 'request_id', 'key_id', 'caller_org_id', 'service_id', 'service_org_id', 'service_name', 'version',
  'provider_id', 'agent_id', 'method', 'status', 'error_code', 'bytes_in', 'bytes_out', 'duration_ms',
] as const;

/** SHA-256 over the previous hash and the record's fields in a fixed order. */
export function auditHash(prevHash: string, row: Pick<AuditRow, (typeof FIELDS)[number]>): string {
  const canonical = JSON.stringify(FIELDS.map((field) => row[field]));
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

/**
 * The hash-chained audit log: each record carries the hash of the one before, and a head
 * row keeps the last sequence number and hash, so editing, deleting, reordering or
 * truncating records is detected by {@link AuditRepository.verify}.
 */
export class AuditRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Append records in order, extending the chain. Call inside a transaction (the head row is locked on MariaDB). */
  async append(inputs: readonly AuditInput[]): Promise<void> {
    if (inputs.length === 0) return;
    let headQuery = this.ctx.db.selectFrom('audit_head').selectAll().where('id', '=', 1);
    if (this.ctx.dialect === 'mysql') headQuery = headQuery.forUpdate();
    const head = await headQuery.executeTakeFirst();
    let prev = head?.hash ?? GENESIS_HASH;
    const rows = inputs.map((input) => {
      const row = {
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
        prev_hash: prev,
        hash: '',
      };
      row.hash = auditHash(prev, row);
      prev = row.hash;
      return row;
    });
    await this.ctx.db.insertInto('audit_log').values(rows).execute();
    const last = await this.ctx.db.selectFrom('audit_log').select(['seq']).where('hash', '=', prev).executeTakeFirstOrThrow();
    if (head) await this.ctx.db.updateTable('audit_head').set({ seq: Number(last.seq), hash: prev }).where('id', '=', 1).execute();
    else await this.ctx.db.insertInto('audit_head').values({ id: 1, seq: Number(last.seq), hash: prev }).execute();
  }

  /**
   * Records ordered by seq, newest first, that some organisations may see: calls they
   * made, calls to services they own, and calls that ran at their providers.
   */
  list(options: { callerOrgIds?: readonly string[]; serviceOrgIds?: readonly string[]; providerIds?: readonly string[]; serviceId?: string; beforeSeq?: number; limit: number }): Promise<AuditRow[]> {
    let query = this.ctx.db.selectFrom('audit_log').selectAll();
    const { callerOrgIds, serviceOrgIds, providerIds } = options;
    if (callerOrgIds || serviceOrgIds || providerIds) {
      if ((callerOrgIds?.length ?? 0) + (serviceOrgIds?.length ?? 0) + (providerIds?.length ?? 0) === 0) return Promise.resolve([]);
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

  /** Walk the whole chain in order, a page at a time, recomputing every hash. */
  async verify(pageSize = 5000): Promise<AuditVerification> {
    const head = await this.ctx.db.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
    let prev = GENESIS_HASH;
    let lastSeq = 0;
    let records = 0;
    for (;;) {
      const rows = await this.ctx.db.selectFrom('audit_log').selectAll().where('seq', '>', lastSeq).orderBy('seq').limit(pageSize).execute();
      for (const row of rows) {
        records += 1;
        const seq = Number(row.seq);
        if (row.prev_hash !== prev) return { ok: false, records, firstBroken: { seq, reason: 'does not follow the record before it (a record was deleted, inserted or reordered)' } };
        if (auditHash(prev, row) !== row.hash) return { ok: false, records, firstBroken: { seq, reason: 'its content does not match its hash (the record was edited)' } };
        prev = row.hash;
        lastSeq = seq;
      }
      if (rows.length < pageSize) break;
    }
    const headView = head ? { seq: Number(head.seq), hash: head.hash } : undefined;
    if (head ? head.hash !== prev || Number(head.seq) !== lastSeq : records > 0) {
      return { ok: false, records, firstBroken: { seq: lastSeq, reason: 'the chain ends before its recorded head (records at the end were deleted)' }, ...(headView ? { head: headView } : {}) };
    }
    return { ok: true, records, ...(headView ? { head: headView } : {}) };
  }
}
