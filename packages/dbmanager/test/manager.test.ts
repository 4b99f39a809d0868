import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InsituError, waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import type { Store } from '@insitu/store';
import {
  rawHttp,
  startSmtpSink,
  startWebhookReceiver,
  type MariaDbCluster,
  type MariaDbInstance,
  type SmtpSink,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import {
  DbAdminClient,
  createCoordinator,
  followPrimary,
  startDbManager,
  type ClusterStatus,
  type Coordinator,
  type PrimaryFollower,
  type RunningDbManager,
} from '../src/index.js';
import {
  ADMIN_TOKEN,
  appStore,
  startProxy,
  startTestCluster,
  startWriter,
  testConfig,
  testLogger,
  type Proxy,
} from './support.js';

function member(cluster: MariaDbCluster, name: string): MariaDbInstance {
  const found = cluster.members[Number(name.slice(2)) - 1];
  if (found === undefined) throw new Error(`no ${name}`);
  return found;
}

/** Wait until `check` holds for the manager's status; on timeout the error shows the last status. */
async function waitForStatus(
  client: DbAdminClient,
  check: (status: ClusterStatus) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<ClusterStatus> {
  return waitFor(
    async () => {
      const status = await client.status();
      if (check(status)) return status;
      const members = status.members.map(
        (m) =>
          `${m.name}:${m.role}:${m.readOnly ? 'ro' : 'rw'}:${m.replication ? `${m.replication.source}/${m.replication.io}/${m.replication.sql}` : '-'}`,
      );
      throw new Error(
        `primary ${String(status.primary)} epoch ${status.epoch} ${members.join(' ')}; last events: ${status.events
          .slice(-5)
          .map((e) => `${e.type}: ${e.message}`)
          .join(' | ')}`,
      );
    },
    { timeoutMs, what },
  );
}

function hookMessages(hook: WebhookReceiver): AlertMessage[] {
  return hook.accepted.map((h) => h.body as AlertMessage);
}

describe('dbmanager against three real MariaDB servers', () => {
  let cluster: MariaDbCluster;
  let proxies: Proxy[];
  let coordinator: Coordinator;
  let running: RunningDbManager;
  let client: DbAdminClient;
  let smtp: SmtpSink;
  let hook: WebhookReceiver;
  let follower: PrimaryFollower;
  let store: Store;

  before(async () => {
    [cluster, smtp, hook] = await Promise.all([startTestCluster(), startSmtpSink(), startWebhookReceiver()]);
    // The manager reaches each member through a proxy the test can cut; replicas replicate directly.
    proxies = await Promise.all(cluster.members.map((m) => startProxy({ host: m.host, port: m.port })));
    const config = testConfig(
      cluster,
      {
        semiSync: { asyncWhenAloneMs: 1500 },
        notify: {
          webhooks: [{ url: hook.url }],
          email: { host: smtp.host, port: smtp.port, from: 'dbmanager@example.org', to: ['dba@example.org'] },
        },
      },
      (index) => ({ host: proxies[index]?.host ?? '', port: proxies[index]?.port ?? 0 }),
    );
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
      { timeoutMs: 30_000, what: 'the manager to find db1 as primary and make it writable' },
    );
    follower = await followPrimary(coordinator, 'platform');
    store = await appStore(cluster, follower);
  });

  after(async () => {
    await store?.close();
    await follower?.close();
    await running?.close();
    await coordinator?.close();
    await Promise.all((proxies ?? []).map((p) => p.close()));
    await Promise.all([cluster?.stop(), smtp?.stop(), hook?.stop()]);
  });

  it('configures AFTER_SYNC semi-sync: the primary waits for a replica, and db status shows it', async () => {
    await waitFor(
      async () => {
        const status = await client.status();
        const primary = status.members.find((m) => m.name === 'db1');
        return (
          primary?.semiSync?.masterEnabled === true &&
          primary.semiSync.masterStatus &&
          primary.semiSync.masterClients >= 1 &&
          primary.semiSync.waitPoint === 'AFTER_SYNC'
        );
      },
      { timeoutMs: 20_000, what: 'semi-sync on the primary with a replica acknowledging' },
    );
    const status = await client.status();
    assert.equal(status.primary, 'db1');
    assert.deepEqual(
      status.members.map((m) => m.role),
      ['primary', 'replica', 'replica'],
    );
    assert.ok(status.members.every((m) => m.gtid.current !== null && m.history.probes > 0));
    await assert.rejects(
      new DbAdminClient({ url: running.adminUrl, token: 'wrong-token-wrong-token' }).status(),
      (e: unknown) => e instanceof InsituError && e.code === 'INSITU_UNAUTHENTICATED',
    );
    // Bytes a URL may not hold are answered in our shape (issue 16, item 8), not with a bare status line.
    const raw = await rawHttp(
      { port: Number(new URL(running.adminUrl).port) },
      Buffer.concat([Buffer.from('GET /status/'), Buffer.from([0xff]), Buffer.from(' HTTP/1.1\r\nHost: x')]),
    );
    assert.equal(raw.status, 400);
    assert.equal(
      (JSON.parse(raw.body) as { error: { code: string; requestId: string } }).error.code,
      'INSITU_BAD_PATH',
    );
  });

  it('a primary unreachable from the manager alone, but seen by the replicas, is not failed over: a warning', async () => {
    const before = hook.accepted.length;
    proxies[0]?.cut();
    try {
      await waitFor(
        () =>
          hookMessages(hook)
            .slice(before)
            .find((m) => m.condition === 'primary-unreachable' && m.status === 'firing'),
        {
          timeoutMs: 20_000,
          what: 'the primary-unreachable warning',
        },
      );
      // Many more probes: still no failover.
      await waitFor(async () => ((await client.status()).members[0]?.consecutiveFailures ?? 0) >= 10, {
        timeoutMs: 30_000,
        what: 'ten failed probes',
      });
      const status = await client.status();
      assert.equal(status.primary, 'db1');
      assert.equal(status.epoch, 1);
      const warning = hookMessages(hook)
        .slice(before)
        .find((m) => m.condition === 'primary-unreachable');
      assert.equal(warning?.alerts[0]?.severity, 'warning');
      assert.match(warning?.alerts[0]?.summary ?? '', /replicas db2, db3 still replicate from it: no failover/);
    } finally {
      proxies[0]?.restore();
    }
    await waitFor(
      () =>
        hookMessages(hook)
          .slice(before)
          .find((m) => m.condition === 'primary-unreachable' && m.status === 'resolved'),
      {
        timeoutMs: 20_000,
        what: 'the resolved message',
      },
    );
  });

  it('a replica whose SQL thread fails is restarted once, then an alert with the error text reaches SMTP and the webhook', async () => {
    const db1 = member(cluster, 'db1');
    const db2 = member(cluster, 'db2');
    await db1.query('CREATE TABLE IF NOT EXISTS sqlerr (id INT PRIMARY KEY)');
    await waitFor(async () => (await db2.query("SHOW TABLES LIKE 'sqlerr'")).includes('sqlerr'), {
      timeoutMs: 20_000,
      what: 'the table on db2',
    });
    // A row only db2 has (written around read_only, outside the binlog), then the same key on the primary.
    await db2.query('SET SESSION sql_log_bin = 0; INSERT INTO sqlerr VALUES (7)');
    const mailsBefore = smtp.mails.length;
    await db1.query('INSERT INTO sqlerr VALUES (7)');
    const mail = await waitFor(
      () => smtp.mails.slice(mailsBefore).find((m) => m.subject.includes('replica-sql-error')),
      {
        timeoutMs: 30_000,
        what: 'the SQL error alert by mail',
      },
    );
    assert.match(mail.text, /Duplicate entry '7' for key 'PRIMARY'/);
    assert.match(
      mail.subject,
      /CRITICAL platform\/replica-sql-error: replication SQL thread of db2 stopped again after one restart/,
    );
    const message = hookMessages(hook).find((m) => m.condition === 'replica-sql-error' && m.status === 'firing');
    assert.match(String(message?.alerts[0]?.details['error']), /Duplicate entry '7'/);
    const restarts = (await client.events(500)).filter((e) => e.type === 'replication-restart' && e.member === 'db2');
    assert.equal(restarts.length, 1, 'exactly one automatic restart');
    // The administrator repairs it: replication runs again and the alert resolves.
    await db2.query('SET SESSION sql_log_bin = 0; DELETE FROM sqlerr WHERE id = 7; START SLAVE');
    await waitFor(
      () => smtp.mails.slice(mailsBefore).find((m) => m.subject.includes('RESOLVED platform/replica-sql-error')),
      { timeoutMs: 30_000, what: 'the resolved mail' },
    );
  });

  it('reports a replica that fell behind, and a primary that fell back to asynchronous replication', async () => {
    const db1 = member(cluster, 'db1');
    const db3 = member(cluster, 'db3');
    const before = hook.accepted.length;
    // db3 applies 3 s late; lagWarningSeconds is 1 here.
    await db3.query('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 3; START SLAVE');
    await db1.query('CREATE TABLE IF NOT EXISTS lagging (id INT PRIMARY KEY)');
    const lag = await waitFor(
      async () => {
        await db1.query('INSERT INTO lagging VALUES (FLOOR(RAND() * 1000000000))');
        return hookMessages(hook)
          .slice(before)
          .find((m) => m.condition === 'replica-lag' && m.status === 'firing');
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the replica-lag warning' },
    );
    assert.equal(lag.alerts[0]?.subject, 'db3');
    assert.match(lag.alerts[0]?.summary ?? '', /db3 is \d+ s behind db1/);
    await db3.query('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY = 0; START SLAVE');
    await waitFor(
      () =>
        hookMessages(hook)
          .slice(before)
          .find((m) => m.condition === 'replica-lag' && m.status === 'resolved'),
      { timeoutMs: 30_000, what: 'lag resolved' },
    );

    // No replica receives: the server never falls back on its own (the commit waits); the manager,
    // seeing db1 alive and alone for semiSync.asyncWhenAloneMs, switches it to asynchronous.
    const db2 = member(cluster, 'db2');
    await Promise.all([db2.query('STOP SLAVE IO_THREAD'), db3.query('STOP SLAVE IO_THREAD')]);
    let committed = false;
    const insert = db1.query('INSERT INTO lagging VALUES (-1)').then(() => (committed = true));
    const off = await waitFor(
      () =>
        hookMessages(hook)
          .slice(before)
          .find((m) => m.condition === 'semi-sync-off' && m.status === 'firing'),
      {
        timeoutMs: 30_000,
        what: 'the semi-sync-off warning',
      },
    );
    assert.match(
      off.alerts[0]?.summary ?? '',
      /primary db1 switched to asynchronous replication by the manager: no replica received from it/,
    );
    await insert;
    assert.ok(committed);
    await Promise.all([db2.query('START SLAVE IO_THREAD'), db3.query('START SLAVE IO_THREAD')]);
    await db1.query('INSERT INTO lagging VALUES (-2)');
    await waitFor(
      () =>
        hookMessages(hook)
          .slice(before)
          .find((m) => m.condition === 'semi-sync-off' && m.status === 'resolved'),
      { timeoutMs: 30_000, what: 'semi-sync back on' },
    );
  });

  it('planned switchover: refused for an unhealthy target, then db1 → db3 with no write lost and a short refused-write window', async () => {
    const db2 = member(cluster, 'db2');
    await db2.query('STOP SLAVE SQL_THREAD');
    await waitFor(async () => (await client.status()).members[1]?.replication?.sql === 'No', {
      timeoutMs: 10_000,
      what: 'the manager to see db2 stopped',
    });
    const refusedWith = (code: string, text: RegExp) => (e: unknown) =>
      e instanceof InsituError && e.code === code && text.test(e.message);
    await assert.rejects(
      client.switchover('db2'),
      refusedWith(
        'INSITU_DBMANAGER_SWITCHOVER_REFUSED',
        /switchover to db2 refused: replication on db2 is not running/,
      ),
    );
    await assert.rejects(client.switchover('db9'), refusedWith('INSITU_DBMANAGER_MEMBER_NOT_FOUND', /no member db9/));
    await assert.rejects(
      client.switchover('db1'),
      refusedWith('INSITU_DBMANAGER_SWITCHOVER_REFUSED', /already the primary/),
    );
    assert.equal((await client.status()).primary, 'db1', 'refusals changed nothing');
    await db2.query('START SLAVE SQL_THREAD');

    const writer = startWriter(store, 'sw');
    let result: { from: string; to: string; readOnlyMs: number };
    try {
      await waitFor(() => writer.acknowledged.length >= 50, {
        timeoutMs: 30_000,
        what: 'writes before the switchover',
      });
      result = await client.switchover('db3');
      // Demoted with its semi-sync primary side off: as a replica with it on, every transaction its
      // SQL thread applies would wait for ever for an acknowledgement, and so would a STOP SLAVE.
      assert.equal(
        Number(await member(cluster, 'db1').query('SELECT @@global.rpl_semi_sync_master_enabled')),
        0,
        'semi-sync primary side off on the demoted db1',
      );
      const count = writer.acknowledged.length;
      await waitFor(() => writer.acknowledged.length >= count + 50, {
        timeoutMs: 30_000,
        what: 'writes after the switchover',
      });
    } finally {
      await writer.stop();
    }
    assert.equal(result.from, 'db1');
    assert.equal(result.to, 'db3');
    const onDb3 = new Set(
      (await member(cluster, 'db3').query("SELECT name FROM orgs WHERE name LIKE 'sw-%'")).split('\n'),
    );
    assert.deepEqual(
      writer.acknowledged.filter((n) => !onDb3.has(n)),
      [],
      'no acknowledged write lost',
    );
    await waitForStatus(
      client,
      (status) =>
        status.primary === 'db3' &&
        status.members[0]?.role === 'replica' &&
        status.members[0].readOnly === true &&
        status.members[1]?.role === 'replica',
      'db1 and db2 to replicate from db3',
    );
  });

  it('kill the primary: a replica is promoted, the other follows, the writer continues, and every acknowledged write is on the new primary; the old one rejoins', async () => {
    const writer = startWriter(store, 'kill');
    const old = member(cluster, 'db3');
    let killedAt = 0;
    try {
      await waitFor(() => writer.acknowledged.length >= 50, { timeoutMs: 30_000, what: 'writes before the kill' });
      killedAt = Date.now();
      await old.kill();
      await waitFor(() => writer.firstIssuedAfter(killedAt) !== undefined, {
        timeoutMs: 30_000,
        what: 'a write issued after the kill to succeed',
      }).catch(async (error: unknown) => {
        // Say why: the manager's view of the members and its last events.
        const view = await waitForStatus(client, () => false, 'no condition (diagnostics only)', 1).then(
          () => '',
          (status: unknown) => (status as Error).message,
        );
        throw new Error(`${(error as Error).message}; ${view}`);
      });
      const count = writer.acknowledged.length;
      await waitFor(() => writer.acknowledged.length >= count + 50, {
        timeoutMs: 30_000,
        what: 'more writes on the new primary',
      });
    } finally {
      await writer.stop();
    }
    const status = await client.status();
    assert.ok(status.primary === 'db1' || status.primary === 'db2', `new primary ${String(status.primary)}`);
    assert.equal(status.epoch, 3);
    const newPrimary = member(cluster, status.primary ?? '');
    const rows = new Set((await newPrimary.query("SELECT name FROM orgs WHERE name LIKE 'kill-%'")).split('\n'));
    assert.deepEqual(
      writer.acknowledged.filter((n) => !rows.has(n)),
      [],
      'every acknowledged write is on the new primary',
    );
    const other = status.primary === 'db1' ? 'db2' : 'db1';
    await waitFor(
      async () =>
        (await client.status()).members.find((m) => m.name === other)?.replication?.source ===
        `${newPrimary.host}:${newPrimary.port}`,
      {
        timeoutMs: 20_000,
        what: 'the other replica to follow the new primary',
      },
    );
    const failover = (await client.events(500)).find((e) => e.type === 'failover');
    assert.equal(failover?.details['from'], 'db3');
    assert.ok(
      hookMessages(hook).some((m) => m.condition === 'failover'),
      'the failover was announced',
    );

    // The old primary comes back read-only (its my.cnf) and rejoins as a replica.
    await old.start();
    await waitFor(
      async () => {
        const db3 = (await client.status()).members.find((m) => m.name === 'db3');
        return (
          db3?.role === 'replica' &&
          db3.readOnly === true &&
          db3.replication?.io === 'Yes' &&
          db3.replication.sql === 'Yes'
        );
      },
      { timeoutMs: 30_000, what: 'db3 to rejoin as a replica' },
    );
    assert.ok((await client.events(500)).some((e) => e.type === 'rejoin' && e.member === 'db3'));
  });

  it('a second primary failure inside the cooldown is not failed over but alerted; after `insitu db ack` it proceeds', async () => {
    const status = await client.status();
    assert.equal(status.cooldown.active, true);
    const primaryName = status.primary ?? '';
    const primary = member(cluster, primaryName);
    const before = hook.accepted.length;
    await primary.kill();
    const blocked = await waitFor(
      () =>
        hookMessages(hook)
          .slice(before)
          .find((m) => m.condition === 'failover-blocked' && m.status === 'firing'),
      {
        timeoutMs: 30_000,
        what: 'the failover-blocked alert',
      },
    );
    assert.match(blocked.alerts[0]?.summary ?? '', /blocked until .*insitu db ack/);
    assert.equal((await client.status()).primary, primaryName, 'no automatic failover inside the cooldown');

    const ack = await client.ack('test');
    assert.equal(ack.cooldownWasActive, true);
    await waitFor(async () => (await client.status()).epoch === 4, {
      timeoutMs: 30_000,
      what: 'the failover after the ack',
    });
    const after = await client.status();
    assert.notEqual(after.primary, primaryName);
    assert.equal(after.cooldown.active, true, 'a new cooldown starts with the new failover');
    await primary.start();
  });
});
