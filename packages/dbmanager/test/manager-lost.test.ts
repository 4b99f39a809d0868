import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import { createMemoryBackend, createMemoryCoordinator, type MemoryBackend } from '@insitu/coord';
import type { AlertMessage } from '@insitu/notify';
import { startWebhookReceiver, type MariaDbCluster, type WebhookReceiver } from '@insitu/test-helpers';
import { startDbManager, type Coordinator, type RunningDbManager } from '../src/index.js';
import { startTestCluster, testConfig, testLogger } from './support.js';

// Regression (issue 17): losing one of the two managers raised no alert.
describe('dbmanager: losing one of two managers raises manager-lost', () => {
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let backend: MemoryBackend;
  let hook: WebhookReceiver;
  const managers: RunningDbManager[] = [];

  before(async () => {
    [cluster, hook] = await Promise.all([startTestCluster(), startWebhookReceiver()]);
    backend = createMemoryBackend();
    coordinator = createMemoryCoordinator({ backend });
    for (const id of ['mgr-a', 'mgr-b']) {
      managers.push(
        await startDbManager(testConfig(cluster, { managerId: id, notify: { webhooks: [{ url: hook.url }] } }), {
          coordinator,
          logger: testLogger(),
        }),
      );
    }
    await waitFor(() => managers.some((m) => m.manager.isLeader()) && managers[0]?.manager.status().primary === 'db1', {
      timeoutMs: 30_000,
      what: 'a leader and db1 primary',
    });
  });

  after(async () => {
    for (const m of managers) await m.close().catch(() => undefined);
    await coordinator?.close();
    await cluster?.stop();
    await hook?.stop();
  });

  it('the follower stops: the leader alerts manager-lost naming it', async () => {
    const messages = () =>
      hook.accepted.map((h) => h.body as AlertMessage).filter((m) => m.condition === 'manager-lost');
    assert.deepEqual(messages(), [], 'no alert while both run');
    const follower = managers.find((m) => !m.manager.isLeader());
    assert.ok(follower !== undefined);
    await follower.close();
    const firing = await waitFor(() => messages().find((m) => m.status === 'firing'), {
      timeoutMs: 20_000,
      what: 'the manager-lost alert',
    });
    assert.equal(firing.alerts[0]?.severity, 'critical');
    assert.match(
      firing.alerts[0]?.summary ?? '',
      new RegExp(`1 dbmanager\\(s\\) of 2 stopped publishing their record: ${follower.manager.id}; 1 left`),
    );
  });

  // Regression: a manager whose record lease was lost (starved past its TTL) never published
  // its record again, so `insitu db` and the server's admin routes found no leader for good.
  it("a manager whose record's lease is lost publishes its record again on a fresh lease", async () => {
    const leader = managers.find((m) => m.manager.isLeader());
    assert.ok(leader !== undefined);
    const key = [...backend.range('').entries].find(
      (entry) => entry.key.endsWith(`managers/${leader.manager.id}`) && entry.lease !== '0',
    );
    assert.ok(
      key !== undefined,
      `the leader's record under a lease (${JSON.stringify(backend.range('').entries.map((e) => e.key))})`,
    );
    backend.leaseRevoke(key.lease);
    assert.equal(backend.get(key.key), undefined, 'revoking the lease removed the record');
    const back = await waitFor(() => backend.get(key.key), { timeoutMs: 20_000, what: "the leader's record again" });
    assert.notEqual(back.lease, key.lease, 'published on a fresh lease');
    assert.equal((JSON.parse(back.value) as { id: string }).id, leader.manager.id);
  });
});
