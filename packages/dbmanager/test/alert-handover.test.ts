import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import { startWebhookReceiver, type MariaDbCluster, type WebhookReceiver } from '@insitu/test-helpers';
import {
  PublishedAlertsSchema,
  coordKeys,
  createCoordinator,
  startDbManager,
  type Coordinator,
  type RunningDbManager,
} from '../src/index.js';
import { parseRecord } from '../src/topology.js';
import { startTestCluster, testConfig, testLogger } from './support.js';

// Regression (3+2 bed): after a change of elected manager, alerts the old one had announced
// were announced again by the new one (errant-transactions twice) and never resolved by
// anyone. The elected manager publishes its active alerts; the next one takes them over.
describe('dbmanager: a change of elected manager hands the alerts over (one firing, one resolved)', () => {
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let hook: WebhookReceiver;
  const managers: RunningDbManager[] = [];

  before(async () => {
    [cluster, hook] = await Promise.all([startTestCluster(), startWebhookReceiver()]);
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    for (const id of ['mgr-a', 'mgr-b']) {
      managers.push(
        await startDbManager(testConfig(cluster, { managerId: id, notify: { webhooks: [{ url: hook.url }] } }), {
          coordinator,
          logger: testLogger(),
        }),
      );
    }
    await waitFor(
      () =>
        managers.some((m) => m.manager.isLeader()) &&
        managers.every((m) =>
          m.manager
            .status()
            .members.slice(1)
            .every((s) => s.replication?.sql === 'Yes'),
        ),
      { timeoutMs: 30_000, what: 'a leader, db1 primary, replicas running' },
    );
  });

  after(async () => {
    for (const m of managers) await m.close().catch(() => undefined);
    await coordinator?.close();
    await cluster?.stop();
    await hook?.stop();
  });

  it('replication-stopped raised by the leader, the leader stops, the condition clears: the next leader resolves it', async () => {
    const messages = () =>
      hook.accepted
        .map((h) => h.body as AlertMessage)
        .filter((m) => m.condition === 'replication-stopped' && m.alerts.some((a) => a.subject === 'db3'));
    const db3 = cluster.members[2];
    assert.ok(db3 !== undefined);
    // An administrator's stop. A manager that still remembers a repair of its own that failed on db3
    // (under load, at start-up) takes the stop for that repair's and starts replication again; stop it again then.
    await waitFor(
      async () => {
        if (messages().some((m) => m.status === 'firing')) return true;
        const rows = await db3.queryRows('SHOW SLAVE STATUS');
        if (rows[0]?.['Slave_SQL_Running'] === 'Yes') await db3.query('STOP SLAVE');
        return false;
      },
      { timeoutMs: 30_000, what: 'replication-stopped firing' },
    );
    const keys = coordKeys('platform');
    await waitFor(
      async () =>
        parseRecord(PublishedAlertsSchema, await coordinator.get(keys.alerts), 'alerts')?.active.some(
          (a) => a.item.condition === 'replication-stopped' && a.notifiedAt !== undefined,
        ),
      { timeoutMs: 10_000, what: 'the announced alert published in coord' },
    );
    const leader = managers.find((m) => m.manager.isLeader());
    const next = managers.find((m) => !m.manager.isLeader());
    assert.ok(leader !== undefined && next !== undefined);
    await leader.close();
    await waitFor(() => next.manager.isLeader(), { timeoutMs: 20_000, what: 'the other manager elected' });
    // The next leader evaluates with the condition still holding (its manager-lost alert about the
    // stopped one shows an evaluation ran, members tended after it): it must not announce it again.
    await waitFor(() => hook.accepted.map((h) => h.body as AlertMessage).find((m) => m.condition === 'manager-lost'), {
      timeoutMs: 20_000,
      what: 'an evaluation by the next leader',
    });
    await waitFor(() => next.manager.status().events.filter((e) => e.type === 'manager-lost').length > 0, {
      timeoutMs: 10_000,
      what: 'manager-lost recorded by the next leader',
    });
    await db3.query('START SLAVE');
    await waitFor(() => messages().find((m) => m.status === 'resolved'), {
      timeoutMs: 20_000,
      what: 'replication-stopped resolved by the next leader',
    });
    assert.equal(messages().filter((m) => m.status === 'firing').length, 1, 'announced once across both leaders');
    assert.equal(messages().filter((m) => m.status === 'resolved').length, 1);
  });
});
