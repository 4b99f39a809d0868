import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import { startWebhookReceiver, type MariaDbCluster, type WebhookReceiver } from '@insitu/test-helpers';
import {
  DbAdminClient,
  createCoordinator,
  startDbManager,
  type Coordinator,
  type RunningDbManager,
} from '../src/index.js';
import { ADMIN_TOKEN, startTestCluster, testConfig, testLogger } from './support.js';

describe('dbmanager: restarting a member process that died on this node', () => {
  let cluster: MariaDbCluster;
  let hook: WebhookReceiver;
  let coordinator: Coordinator;
  let running: RunningDbManager;
  let client: DbAdminClient;
  let pidFile: string;

  before(async () => {
    [cluster, hook] = await Promise.all([startTestCluster(), startWebhookReceiver()]);
    const db3 = cluster.members[2];
    assert.ok(db3);
    pidFile = join(dirname(db3.configFile), 'mariadbd.pid');
    const base = testConfig(cluster);
    const members = structuredClone(base.members).map((m) => {
      // db3 restarts with its own my.cnf (setsid -f: the command returns once the server is forked);
      // db2's command always fails, to see the alert after the configured attempts.
      if (m.name === 'db3')
        return { ...m, restartCommand: ['setsid', '-f', '/usr/sbin/mariadbd', `--defaults-file=${db3.configFile}`] };
      if (m.name === 'db2') return { ...m, restartCommand: ['false'] };
      return m;
    });
    const config = testConfig(cluster, {
      members,
      repair: { restartAfterMs: 300, restartBackoffMs: 1000, restartBackoffMaxMs: 2000, restartAttemptsBeforeAlert: 3 },
      notify: { webhooks: [{ url: hook.url }] },
    });
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    running = await startDbManager(config, { coordinator, logger: testLogger() });
    client = new DbAdminClient({ url: running.adminUrl, token: ADMIN_TOKEN });
    await waitFor(
      async () => (await client.status()).members.every((m) => m.role === 'primary' || m.role === 'replica'),
      { timeoutMs: 30_000, what: 'a healthy cluster' },
    );
  });

  after(async () => {
    await running?.close();
    await coordinator?.close();
    // The restarted db3 is not the helper's child: stop it by its pid file.
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await Promise.all([cluster?.stop(), hook?.stop()]);
  });

  it('a replica whose process died is restarted with its command and replicates again', async () => {
    const db3 = cluster.members[2];
    assert.ok(db3);
    await db3.kill();
    await waitFor(
      async () => (await client.events(500)).some((e) => e.type === 'member-restart' && e.member === 'db3'),
      { timeoutMs: 30_000, what: 'the restart of db3' },
    );
    await waitFor(
      async () => {
        const member = (await client.status()).members.find((m) => m.name === 'db3');
        return member?.role === 'replica' && member.readOnly === true && member.replication?.io === 'Yes';
      },
      { timeoutMs: 30_000, what: 'db3 to replicate again' },
    );
    const restart = (await client.events(500)).find((e) => e.type === 'member-restart' && e.member === 'db3');
    assert.equal(restart?.details['ok'], true);
    assert.equal((await client.status()).primary, 'db1', 'a replica restart is no failover');
  });

  it('a member that stays down after its restarts is alerted, with backoff between attempts', async () => {
    const db2 = cluster.members[1];
    assert.ok(db2);
    await db2.kill();
    const alert = await waitFor(
      () =>
        hook.accepted
          .map((h) => h.body as AlertMessage)
          .find((m) => m.condition === 'member-restart-failed' && m.alerts.some((a) => a.subject === 'db2')),
      {
        timeoutMs: 30_000,
        what: 'the restart-failed alert',
      },
    );
    assert.match(
      alert.alerts.find((a) => a.subject === 'db2')?.summary ?? '',
      /db2 is still down after 3 restart attempts/,
    );
    const attempts = (await client.events(500)).filter((e) => e.type === 'member-restart' && e.member === 'db2');
    assert.ok(attempts.length >= 3);
    const times = attempts.map((e) => Date.parse(e.at));
    for (let i = 2; i < times.length; i++) {
      assert.ok(
        (times[i] ?? 0) - (times[i - 1] ?? 0) >= (times[i - 1] ?? 0) - (times[i - 2] ?? 0) - 250,
        'the pauses between attempts do not shrink',
      );
    }
    await db2.start();
    await waitFor(
      () =>
        hook.accepted
          .map((h) => h.body as AlertMessage)
          .find(
            (m) =>
              m.condition === 'member-restart-failed' &&
              m.alerts.some((a) => a.subject === 'db2' && a.state === 'resolved'),
          ),
      {
        timeoutMs: 30_000,
        what: 'the resolved message once db2 is back',
      },
    );
  });
});
