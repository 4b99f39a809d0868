import type { DatasetInput } from '@insitu/core';
import { openStore, type Store } from '../src/index.js';
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
