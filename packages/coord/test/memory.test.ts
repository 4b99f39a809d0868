import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createMemoryBackend, createMemoryCoordinator, type MemoryCoordinator } from '@insitu/coord';
import { waitFor } from '@insitu/core';
import { coordinatorSuite } from './suite.js';

const backend = createMemoryBackend();

coordinatorSuite('memory', () => ({
  make: async () => createMemoryCoordinator({ backend, relistIntervalMs: 500 }),
  partition: (coordinator, cut) => (coordinator as MemoryCoordinator).setReachable(!cut),
}));

describe('memory coordinator: a partitioned leader', () => {
  const coordinators: MemoryCoordinator[] = [];
  after(async () => {
    for (const c of coordinators) await c.close().catch(() => undefined);
  });

  it('emits lost when its own deadline (2/3 of the TTL) passes, not a third of the TTL later when the lease runs out', async () => {
    // 2/3 of it is 3,333.3 ms: a deadline with a fraction of a millisecond, as with most TTLs.
    const ttlMs = 5000;
    const coordinator = createMemoryCoordinator({ backend: createMemoryBackend(), relistIntervalMs: 500 });
    coordinators.push(coordinator);
    const leadership = coordinator.campaign('deadline-step-down', 'node-a', { ttlMs });
    await leadership.whenElected();
    let lostAt = 0;
    leadership.on('lost', () => (lostAt = Date.now()));
    coordinator.setReachable(false);
    await waitFor(() => !leadership.isLeader(), { timeoutMs: ttlMs * 2, intervalMs: 5, what: 'not leader' });
    const notLeaderAt = Date.now();
    await waitFor(() => lostAt > 0, { timeoutMs: ttlMs * 2, intervalMs: 5, what: 'lost emitted' });
    // Its lease has a third of the TTL (1.7 s) left when the deadline passes; "lost" must
    // not wait for it (under a second allows for a loaded machine's late timers).
    assert.ok(
      lostAt - notLeaderAt < 1000,
      `lost came ${lostAt - notLeaderAt} ms after isLeader() turned false: it waited for the lease`,
    );
  });
});
