import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import type { Store } from '@insitu/store';
import {
  createTestNetwork,
  startEtcd,
  startWebhookReceiver,
  type EtcdMember,
  type MariaDbCluster,
  type MariaDbInstance,
  type TestNetwork,
  type WebhookReceiver,
} from '@insitu/test-helpers';
import {
  DbAdminClient,
  MemberGuard,
  createCoordinator,
  followPrimary,
  startDbManager,
  type Coordinator,
  type PrimaryFollower,
  type RunningDbManager,
} from '../src/index.js';
import {
  ADMIN_TOKEN,
  MANAGER_PASSWORD,
  MANAGER_USER,
  appStore,
  startProxy,
  startTestCluster,
  startWritableSampler,
  startWriter,
  testConfig,
  testLogger,
  type Proxy,
  type WritableSampler,
} from './support.js';

const isRoot = process.getuid?.() === 0;

/**
 * Members in network namespaces on one bridge; the test (manager, writer, sampler) sits in
 * the root namespace. A partition takes a member's link down. Each member's guard runs
 * beside it (here in the test process): it reaches its member through the Unix socket
 * (unaffected by the link) and etcd through a TCP proxy the test cuts together with the
 * link — the guard's machine loses the cluster's etcd exactly when its member does.
 */
describe(
  'dbmanager: network partitions (members in network namespaces, guards beside them, etcd)',
  { skip: isRoot ? false : 'needs root for network namespaces' },
  () => {
    let network: TestNetwork;
    let etcd: EtcdMember;
    let cluster: MariaDbCluster;
    let coordinator: Coordinator;
    let running: RunningDbManager;
    let client: DbAdminClient;
    let hook: WebhookReceiver;
    let follower: PrimaryFollower;
    let store: Store;
    const etcdProxies: Proxy[] = [];
    const guardCoordinators: Coordinator[] = [];
    const guards: MemberGuard[] = [];

    const member = (name: string): MariaDbInstance => {
      const found = cluster.members[Number(name.slice(2)) - 1];
      if (found === undefined) throw new Error(`no ${name}`);
      return found;
    };
    const index = (name: string) => Number(name.slice(2)) - 1;
    const cut = async (name: string) => {
      await network.linkDown(index(name));
      etcdProxies[index(name)]?.cut();
    };
    const heal = async (name: string) => {
      etcdProxies[index(name)]?.restore();
      await network.linkUp(index(name));
    };
    const readOnly = async (name: string) => (await member(name).query('SELECT @@global.read_only')).trim();

    before(async () => {
      network = await createTestNetwork({ nodes: 3 });
      [hook, etcd] = await Promise.all([startWebhookReceiver(), startEtcd()]);
      cluster = await startTestCluster((i) => {
        const node = network.nodes[i];
        return node === undefined ? {} : { netns: node.netns, bindAddress: node.address };
      });
      const etcdUrl = new URL(etcd.endpoint);
      for (const [i, m] of cluster.members.entries()) {
        const proxy = await startProxy({ host: etcdUrl.hostname, port: Number(etcdUrl.port) });
        etcdProxies.push(proxy);
        const guardCoordinator = await createCoordinator({
          kind: 'etcd',
          endpoints: [`http://${proxy.host}:${proxy.port}`],
        });
        guardCoordinators.push(guardCoordinator);
        const guard = new MemberGuard({
          cluster: 'platform',
          member: `db${i + 1}`,
          endpoint: {
            name: `db${i + 1}`,
            host: m.host,
            port: m.port,
            socket: m.socket,
            login: { user: MANAGER_USER, password: MANAGER_PASSWORD },
          },
          coordinator: guardCoordinator,
          leaseTtlMs: 2000,
          spareUsers: [MANAGER_USER, cluster.replicationUser],
          logger: testLogger(),
        });
        guard.start();
        guards.push(guard);
      }
      // No cooldown here: the second test needs a second failover.
      const config = testConfig(cluster, {
        failover: { cooldownMs: 0 },
        coord: { kind: 'etcd', endpoints: [etcd.endpoint] },
        notify: { webhooks: [{ url: hook.url }] },
      });
      coordinator = await createCoordinator({ kind: 'etcd', endpoints: [etcd.endpoint] });
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
      await waitFor(() => guards.every((g) => g.holding()), {
        timeoutMs: 20_000,
        what: 'every guard holding its lease',
      });
      follower = await followPrimary(coordinator, 'platform');
      store = await appStore(cluster, follower);
    });

    after(async () => {
      await store?.close();
      await follower?.close();
      await running?.close();
      await Promise.all(guards.map((g) => g.stop()));
      await Promise.all(guardCoordinators.map((c) => c.close().catch(() => undefined)));
      await coordinator?.close();
      await Promise.all(etcdProxies.map((p) => p.close()));
      await cluster?.stop();
      await etcd?.stop();
      await hook?.stop();
      await network?.destroy();
    });

    it('cut the primary off (20 s): its guard fences it, the writer continues on the new primary with nothing lost, never two writable members; back on the network it rejoins', async () => {
      const writer = startWriter(store, 'cut');
      let sampler: WritableSampler | undefined;
      let cutAt = 0;
      try {
        await waitFor(() => writer.acknowledged.length >= 50, { timeoutMs: 30_000, what: 'writes before the cut' });
        sampler = startWritableSampler(cluster);
        // No write in flight at the cut: one would stay behind on the old primary, unacknowledged, and be errant (next test).
        await writer.pause();
        cutAt = Date.now();
        await cut('db1');
        writer.resume();
        await waitFor(() => writer.firstIssuedAfter(cutAt) !== undefined, {
          timeoutMs: 60_000,
          what: 'a write after the cut to succeed',
        });
        // The guard beside db1 fenced it on its own, while it was cut off.
        const fence = await waitFor(() => guards[0]?.fences[0], {
          timeoutMs: 20_000,
          what: 'the guard of db1 to fence it',
        });
        assert.equal(fence.reason, 'lease-lost');
        assert.equal(await readOnly('db1'), '1');
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, cutAt + 20_000 - Date.now()))); // the fault lasts 20 s
        await heal('db1');
        await waitFor(
          async () => {
            const db1 = (await client.status()).members.find((m) => m.name === 'db1');
            return db1?.role === 'replica' && db1.replication?.io === 'Yes' && db1.replication.sql === 'Yes';
          },
          { timeoutMs: 30_000, what: 'db1 to rejoin as a replica' },
        );
        const count = writer.acknowledged.length;
        await waitFor(() => writer.acknowledged.length >= count + 30, {
          timeoutMs: 30_000,
          what: 'more writes on the new primary',
        });
      } finally {
        await writer.stop();
        await sampler?.stop();
      }
      const status = await client.status();
      assert.ok(status.primary === 'db2' || status.primary === 'db3');
      const rows = new Set(
        (await member(status.primary ?? '').query("SELECT name FROM orgs WHERE name LIKE 'cut-%'")).split('\n'),
      );
      assert.deepEqual(
        writer.acknowledged.filter((n) => !rows.has(n)),
        [],
        'every acknowledged write is on the new primary',
      );
      assert.deepEqual(sampler?.splitBrain() ?? [], [], 'never two writable members in any sample');
      const firstMs = (writer.firstIssuedAfter(cutAt) ?? 0) - cutAt;
      process.stderr.write(
        `partition: first acknowledged write ${firstMs} ms after the cut; guard fence ${(guards[0]?.fences[0]?.at ?? 0) - cutAt} ms after the cut\n`,
      );
      assert.ok((await client.events(500)).some((e) => e.type === 'rejoin' && e.member === 'db1'));
    });

    it('a write on the cut-off primary is never acknowledged (lossless semi-sync, the guard kills it); it stays errant there: quarantined, the alert names the GTID', async () => {
      const primaryName = (await client.status()).primary ?? '';
      const old = member(primaryName);
      await old.query('CREATE TABLE marker (id INT PRIMARY KEY)');
      const primaryPos = (await old.query('SELECT @@gtid_binlog_pos')).trim();
      await waitFor(
        async () =>
          (
            await Promise.all(cluster.members.filter((m) => m !== old).map((m) => m.query('SELECT @@gtid_slave_pos')))
          ).every((p) => p.trim() === primaryPos),
        {
          timeoutMs: 20_000,
          what: 'the replicas to have the marker table',
        },
      );
      await cut(primaryName);
      // A client next to the old primary (its socket) writes: the commit waits for a replica that never answers,
      // until the guard fences the member and kills the connection. The client never hears OK.
      await assert.rejects(
        old.query('INSERT INTO marker VALUES (1)'),
        'the write on the cut-off primary is not acknowledged',
      );
      // The guard kills the clients first and sets read_only=1 on another connection right after
      // (fence.ts): the client's error can come before read_only=1 has returned (seen under load).
      await waitFor(async () => (await readOnly(primaryName)) === '1', {
        timeoutMs: 10_000,
        what: 'the guard to fence the cut-off primary',
      });
      const errantGtid = (await old.query('SELECT @@gtid_binlog_pos')).trim();
      assert.notEqual(errantGtid, primaryPos, "the killed commit stays in the old primary's binlog");
      await waitFor(async () => (await client.status()).primary !== primaryName, {
        timeoutMs: 60_000,
        what: 'the failover away from the cut-off primary',
      });
      const newPrimary = member((await client.status()).primary ?? '');
      assert.equal(
        (await newPrimary.query('SELECT COUNT(*) FROM marker')).trim(),
        '0',
        'the write never reached the new primary',
      );
      const before = hook.accepted.length;
      await heal(primaryName);
      const alert = await waitFor(
        () =>
          hook.accepted
            .slice(before)
            .map((h) => h.body as AlertMessage)
            .find((m) => m.condition === 'errant-transactions' && m.status === 'firing'),
        { timeoutMs: 30_000, what: 'the errant-transactions alert' },
      );
      const item = alert.alerts[0];
      assert.equal(item?.subject, primaryName);
      assert.deepEqual(item?.details['errantGtids'], [errantGtid]);
      assert.match(
        item?.summary ?? '',
        new RegExp(`${primaryName} quarantined: it holds 1 errant transaction\\(s\\) ${errantGtid}`),
      );
      // Quarantined: read-only, not replicating, and it stays so.
      await waitFor(
        async () => (await client.status()).members.find((m) => m.name === primaryName)?.role === 'quarantined',
        { timeoutMs: 10_000, what: 'role quarantined' },
      );
      const probesBefore = (await client.status()).members.find((m) => m.name === primaryName)?.history.probes ?? 0;
      await waitFor(
        async () =>
          ((await client.status()).members.find((m) => m.name === primaryName)?.history.probes ?? 0) >=
          Math.min(probesBefore + 10, 120),
        {
          timeoutMs: 30_000,
          what: 'ten more probes',
        },
      );
      const status = await client.status();
      const quarantined = status.members.find((m) => m.name === primaryName);
      assert.equal(quarantined?.role, 'quarantined');
      assert.equal(quarantined?.readOnly, true);
      assert.ok(quarantined?.replication === null || quarantined?.replication.io !== 'Yes', 'not replicating');
      assert.deepEqual(
        status.quarantined.map((q) => q.errantGtids),
        [[errantGtid]],
      );
      assert.ok(
        !(await client.events(500)).some((e) => e.type === 'rejoin' && e.member === primaryName && e.at > alert.sentAt),
      );
    });
  },
);
