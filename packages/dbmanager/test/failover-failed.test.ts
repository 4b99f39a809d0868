import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import {
  startWebhookReceiver,
  type MariaDbCluster,
  type MariaDbInstance,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import {
  DbAdminClient,
  createCoordinator,
  startDbManager,
  type Coordinator,
  type RunningDbManager,
} from '../src/index.js';
import { ADMIN_TOKEN, MANAGER_USER, readmeManagerGrants, startTestCluster, testConfig, testLogger } from './support.js';

// Regression (issue 17, item 1): with the documented grants lacking RELOAD, RESET SLAVE ALL
// failed on every tick, no alert said so, and each attempt left the replicas' IO threads stopped.
describe('dbmanager: a failover that fails part-way is undone, alerted once, and retried with back-off', () => {
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let running: RunningDbManager;
  let client: DbAdminClient;
  let hook: WebhookReceiver;

  const member = (index: number): MariaDbInstance => {
    const found = cluster.members[index];
    if (found === undefined) throw new Error(`no member ${index}`);
    return found;
  };

  before(async () => {
    hook = await startWebhookReceiver();
    // The manager's account exactly as the README makes it, less RELOAD.
    cluster = await startTestCluster(undefined, ['RELOAD']);
    const config = testConfig(cluster, {
      failover: { retryBackoffMs: 1000, retryBackoffMaxMs: 8000 },
      notify: { webhooks: [{ url: hook.url }] },
    });
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    running = await startDbManager(config, { coordinator, logger: testLogger() });
    client = new DbAdminClient({ url: running.adminUrl, token: ADMIN_TOKEN });
    await waitFor(
      async () => {
        const status = await client.status();
        return (
          status.primary === 'db1' &&
          status.members[0]?.readOnly === false &&
          status.members.slice(1).every((m) => m.role === 'replica')
        );
      },
      { timeoutMs: 30_000, what: 'db1 primary and writable' },
    );
  });

  after(async () => {
    await running?.close();
    await coordinator?.close();
    await cluster?.stop();
    await hook?.stop();
  });

  it('the README grants hold RELOAD, and the test accounts are made from them', async () => {
    const [create, grant] = readmeManagerGrants('x');
    assert.match(create ?? '', new RegExp(`^CREATE USER '${MANAGER_USER}'@'%'`));
    assert.match(grant ?? '', /^GRANT .*\bRELOAD\b.* ON \*\.\* TO 'insitu_manager'@'%'$/);
    const shown = await member(1).query(`SHOW GRANTS FOR '${MANAGER_USER}'@'%'`);
    assert.doesNotMatch(shown, /RELOAD/, 'this cluster was made without RELOAD');
    assert.match(shown, /REPLICATION SLAVE ADMIN/);
  });

  it('manager without RELOAD: primary killed → one failover-failed alert, replicas replicating again, retries back off', async () => {
    await member(0).kill('SIGKILL');
    const firing = await waitFor(
      () =>
        hook.accepted
          .map((h) => h.body as AlertMessage)
          .find((m) => m.condition === 'failover-failed' && m.status === 'firing'),
      {
        timeoutMs: 30_000,
        what: 'the failover-failed alert',
      },
    );
    assert.match(firing.alerts[0]?.summary ?? '', /failover from db1 failed: .*RELOAD/);
    // Several attempts, each undone, the delay doubling.
    const attempts = await waitFor(
      async () => {
        const failed = (await client.events(500)).filter((e) => e.type === 'failover-attempt-failed');
        return failed.length >= 3 ? failed : undefined;
      },
      { timeoutMs: 60_000, what: 'three failed attempts' },
    );
    assert.deepEqual(
      attempts.slice(0, 3).map((e) => e.details?.['retryInMs']),
      [1000, 2000, 4000],
    );
    // Between attempts the replicas replicate from db1 again (reconnecting to the dead primary), nothing detached.
    for (const index of [1, 2]) {
      const rows = await member(index).queryRows('SHOW SLAVE STATUS');
      assert.equal(rows.length, 1, 'still a replica (not RESET)');
      assert.equal(rows[0]?.['Master_Port'], String(member(0).port));
      assert.notEqual(rows[0]?.['Slave_IO_Running'], 'No', 'IO thread restarted');
      assert.equal(rows[0]?.['Slave_SQL_Running'], 'Yes');
    }
    const messages = hook.accepted.map((h) => h.body as AlertMessage);
    assert.equal(
      messages.filter((m) => m.condition === 'failover-failed' && m.status === 'firing').length,
      1,
      'one alert, not one per attempt',
    );
    assert.equal(messages.filter((m) => m.condition === 'replication-stopped').length, 0, 'no replica left stopped');
    const status = await client.status();
    assert.equal(status.primary, 'db1');
    assert.equal(status.epoch, 1, 'nothing was published');

    // The primary comes back: replicas running, the alert resolves.
    await member(0).start();
    await waitFor(
      async () => {
        const s = await client.status();
        return (
          s.members[0]?.readOnly === false &&
          s.members
            .slice(1)
            .every((m) => m.role === 'replica' && m.replication?.io === 'Yes' && m.replication.sql === 'Yes')
        );
      },
      { timeoutMs: 30_000, what: 'db1 writable with both replicas running' },
    );
    await waitFor(
      () =>
        hook.accepted
          .map((h) => h.body as AlertMessage)
          .find((m) => m.condition === 'failover-failed' && m.status === 'resolved'),
      { timeoutMs: 20_000, what: 'failover-failed resolved' },
    );
  });
});
