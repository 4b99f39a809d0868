import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import type { Store } from '@insitu/store';
import { createTestNetwork, startWebhookReceiver, type MariaDbCluster, type MariaDbInstance, type TestNetwork, type WebhookReceiver } from '@insitu/test-helpers';
import { DbAdminClient, createCoordinator, followPrimary, startDbManager, type Coordinator, type PrimaryFollower, type RunningDbManager } from '../src/index.js';
import { ADMIN_TOKEN, appStore, startTestCluster, startWriter, testConfig, testLogger } from './support.js';

const isRoot = process.getuid?.() === 0;

describe('dbmanager: network partitions (members in network namespaces)', { skip: isRoot ? false : 'needs root for network namespaces' }, () => {
  let network: TestNetwork;
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let running: RunningDbManager;
  let client: DbAdminClient;
  let hook: WebhookReceiver;
  let follower: PrimaryFollower;
  let store: Store;

  const member = (name: string): MariaDbInstance => {
    const found = cluster.members[Number(name.slice(2)) - 1];
    if (found === undefined) throw new Error(`no ${name}`);
    return found;
  };
  const index = (name: string) => Number(name.slice(2)) - 1;

  before(async () => {
    network = await createTestNetwork({ nodes: 3 });
    hook = await startWebhookReceiver();
    cluster = await startTestCluster((i) => {
      const node = network.nodes[i];
      return node === undefined ? {} : { netns: node.netns, bindAddress: node.address };
    });
    // No cooldown here: the second test needs a second failover.
    const config = testConfig(cluster, { failover: { cooldownMs: 0 }, notify: { webhooks: [{ url: hook.url }] } });
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    running = await startDbManager(config, { coordinator, logger: testLogger() });
    client = new DbAdminClient({ url: running.adminUrl, token: ADMIN_TOKEN });
    await waitFor(async () => {
      const status = await client.status();
      return status.primary === 'db1' && status.members[0]?.readOnly === false && status.members.slice(1).every((m) => m.role === 'replica');
    }, { timeoutMs: 30_000, what: 'db1 primary and writable' });
    follower = await followPrimary(coordinator, 'platform');
    store = await appStore(cluster, follower);
  });

  after(async () => {
    await store?.close();
    await follower?.close();
    await running?.close();
    await coordinator?.close();
    await cluster?.stop();
    await hook?.stop();
    await network?.destroy();
  });

  it('cut the primary off the network: failover, the writer continues with nothing lost; back on the network it is read-only, then rejoins', async () => {
    const writer = startWriter(store, 'cut');
    let cutAt = 0;
    try {
      await waitFor(() => writer.acknowledged.length >= 50, { timeoutMs: 30_000, what: 'writes before the cut' });
      // No write in flight at the cut: one would stay behind on the old primary, unacknowledged, and be errant (next test).
      await writer.pause();
      cutAt = Date.now();
      await network.linkDown(index('db1'));
      writer.resume();
      await waitFor(() => writer.firstIssuedAfter(cutAt) !== undefined, { timeoutMs: 60_000, what: 'a write after the cut to succeed' });
      const count = writer.acknowledged.length;
      await waitFor(() => writer.acknowledged.length >= count + 30, { timeoutMs: 30_000, what: 'more writes on the new primary' });
    } finally {
      await writer.stop();
    }
    const status = await client.status();
    assert.ok(status.primary === 'db2' || status.primary === 'db3');
    const rows = new Set((await member(status.primary ?? '').query("SELECT name FROM orgs WHERE name LIKE 'cut-%'")).split('\n'));
    assert.deepEqual(writer.acknowledged.filter((n) => !rows.has(n)), [], 'every acknowledged write is on the new primary');
    // The old primary still thinks it is one: writable, until it is reachable again.
    assert.equal((await member('db1').query('SELECT @@global.read_only')).trim(), '0');

    await network.linkUp(index('db1'));
    await waitFor(async () => (await member('db1').query('SELECT @@global.read_only')).trim() === '1', { timeoutMs: 30_000, what: 'db1 fenced read-only' });
    await waitFor(
      async () => {
        const db1 = (await client.status()).members.find((m) => m.name === 'db1');
        return db1?.role === 'replica' && db1.replication?.io === 'Yes' && db1.replication.sql === 'Yes';
      },
      { timeoutMs: 30_000, what: 'db1 to rejoin as a replica' },
    );
    const events = await client.events(500);
    const fence = events.findIndex((e) => e.type === 'fence' && e.member === 'db1');
    const rejoin = events.findIndex((e) => e.type === 'rejoin' && e.member === 'db1');
    assert.ok(fence !== -1 && rejoin > fence, 'fenced first, then rejoined');
  });

  it('an errant transaction on the cut-off primary: quarantined, the alert names the GTIDs, no rejoin', async () => {
    const primaryName = (await client.status()).primary ?? '';
    const old = member(primaryName);
    await old.query('CREATE TABLE marker (id INT PRIMARY KEY)');
    const primaryPos = (await old.query('SELECT @@gtid_binlog_pos')).trim();
    await waitFor(async () => (await Promise.all(cluster.members.filter((m) => m !== old).map((m) => m.query('SELECT @@gtid_slave_pos')))).every((p) => p.trim() === primaryPos), {
      timeoutMs: 20_000,
      what: 'the replicas to have the marker table',
    });
    await network.linkDown(index(primaryName));
    // A client next to the old primary (its socket) still writes: semi-sync times out, the commit stays local.
    await old.query('INSERT INTO marker VALUES (1)');
    const errantGtid = (await old.query('SELECT @@gtid_binlog_pos')).trim();
    await waitFor(async () => (await client.status()).primary !== primaryName, { timeoutMs: 60_000, what: 'the failover away from the cut-off primary' });
    const before = hook.accepted.length;
    await network.linkUp(index(primaryName));
    const alert = await waitFor(
      () => hook.accepted.slice(before).map((h) => h.body as AlertMessage).find((m) => m.condition === 'errant-transactions' && m.status === 'firing'),
      { timeoutMs: 30_000, what: 'the errant-transactions alert' },
    );
    const item = alert.alerts[0];
    assert.equal(item?.subject, primaryName);
    assert.deepEqual(item?.details['errantGtids'], [errantGtid]);
    assert.match(item?.summary ?? '', new RegExp(`${primaryName} quarantined: it holds 1 errant transaction\\(s\\) ${errantGtid}`));
    // Quarantined: read-only, not replicating, and it stays so.
    await waitFor(async () => (await client.status()).members.find((m) => m.name === primaryName)?.role === 'quarantined', { timeoutMs: 10_000, what: 'role quarantined' });
    const probesBefore = (await client.status()).members.find((m) => m.name === primaryName)?.history.probes ?? 0;
    await waitFor(async () => ((await client.status()).members.find((m) => m.name === primaryName)?.history.probes ?? 0) >= Math.min(probesBefore + 10, 120), {
      timeoutMs: 30_000,
      what: 'ten more probes',
    });
    const status = await client.status();
    const quarantined = status.members.find((m) => m.name === primaryName);
    assert.equal(quarantined?.role, 'quarantined');
    assert.equal(quarantined?.readOnly, true);
    assert.ok(quarantined?.replication === null || quarantined?.replication.io !== 'Yes', 'not replicating');
    assert.deepEqual(status.quarantined.map((q) => q.errantGtids), [[errantGtid]]);
    assert.ok(!(await client.events(500)).some((e) => e.type === 'rejoin' && e.member === primaryName && e.at > alert.sentAt));
  });
});
