import type { DatasetInput } from '@insitu/core';
import { openStore, type AuditInput, type Store } from '../src/index.js';
import type { DatabaseTarget } from '@insitu/test-helpers';

/** A fresh migrated store on `target`, and how to dispose of it. */
export async function freshStore(
  target: DatabaseTarget,
  now?: () => number,
): Promise<{ store: Store; dispose: () => Promise<void> }> {
  const db = await target.create();
  const store = await openStore(db.config, now ? { now } : {});
  return {
    store,
    dispose: async () => {
      await store.close();
      await db.drop();
    },
  };
}

/** Dataset metadata with sensible defaults. */
export function datasetInput(overrides: Partial<DatasetInput> = {}): DatasetInput {
  return {
    sourceKind: 'sqlite',
    description: '',
    tags: [],
    columns: [{ name: 'id', type: 'integer', nullable: false }],
    rowCount: 0,
    ...overrides,
  };
}

/** An audit record of call `n` (the same service, key and agent every time); `overrides` set the rest. */
export function auditCall(n: number, overrides: Partial<AuditInput> = {}): AuditInput {
  return {
    ts: 1_700_000_000_000 + n,
    requestId: `req_${n}`,
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
    bytesIn: 0,
    bytesOut: 10 + n,
    durationMs: 3,
    ...overrides,
  };
}
