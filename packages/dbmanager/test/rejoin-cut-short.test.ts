import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import type { Store } from '@insitu/store';
import type { MariaDbCluster, MariaDbInstance } from '@insitu/test-helpers';
import {
  createCoordinator,
  followPrimary,
  startDbManager,
  type Coordinator,
  type PrimaryFollower,
  type RunningDbManager,
} from '../src/index.js';
import { appStore, startTestCluster, startWriter, testConfig, testLogger } from './support.js';

// Regression (test bed, random sequence: a primary kill, then the elected manager paused): a
// former primary whose rejoin was cut short between its demotion and the publish that clears
// its pending entry already replicated from the new primary. The next manager compared it
// with the failover's base alone, took every transaction it had replicated since for errant,
// and quarantined a healthy member for good.
describe('dbmanager: a rejoin cut short is finished by the next manager, not quarantined', () => {
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let follower: PrimaryFollower;
  let store: Store;
  const managers: RunningDbManager[] = [];
  const config = () => testConfig(cluster);

  const member = (name: string): MariaDbInstance => {
    const found = cluster.members[Number(name.slice(2)) - 1];
    if (found === undefined) throw new Error(`no ${name}`);
    return found;
  };

  before(async () => {
    cluster = await startTestCluster();
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    managers.push(await startDbManager(config(), { coordinator, logger: testLogger() }));
    await waitFor(
      () => {
        const status = managers[0]?.manager.status();
        return status?.primary === 'db1' && status.members[0]?.readOnly === false;
      },
      { timeoutMs: 30_000, what: 'db1 primary and writable' },
    );
    follower = await followPrimary(coordinator, 'platform');
    store = await appStore(cluster, follower);
  });

  after(async () => {
    await store?.close();
    await follower?.close();
    for (const m of managers) await m.close().catch(() => undefined);
    await coordinator?.close();
    await cluster?.stop();
  });

  it('the former primary, demoted and replicating when its manager stopped, rejoins: what it replicated since the failover is not errant', async () => {
    const first = managers[0];
    assert.ok(first !== undefined);
    const writer = startWriter(store, 'cut');
    try {
      await waitFor(() => writer.acknowledged.length >= 20, { timeoutMs: 30_000, what: 'writes before the kill' });
      const killedAt = Date.now();
      await member('db1').kill();
      const failedOver = await waitFor(
        () => {
          const status = first.manager.status();
          return status.primary !== 'db1' && status.primary !== null ? status : undefined;
        },
        { timeoutMs: 30_000, what: 'a failover away from db1' },
      );
      assert.deepEqual(
        failedOver.pendingRejoin.map((p) => p.name),
        ['db1'],
      );
      await waitFor(() => writer.firstIssuedAfter(killedAt) !== undefined, {
        timeoutMs: 30_000,
        what: 'writes on the new primary',
      });
      const primary = member(failedOver.primary ?? '');

      // The manager stops before db1 is back: nobody rejoins it. Then db1 returns and is
      // demoted exactly as the rejoin does it (MASTER_DEMOTE_TO_SLAVE=1), and the publish
      // that would clear its pending entry never happens.
      await first.close();
      await member('db1').start();
      await member('db1').query(
        [
          'SET GLOBAL rpl_semi_sync_master_enabled = OFF',
          'STOP SLAVE',
          `CHANGE MASTER TO MASTER_HOST = '${primary.host}', MASTER_PORT = ${primary.port}, MASTER_USER = '${cluster.replicationUser}', MASTER_PASSWORD = '${cluster.replicationPassword}', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_DEMOTE_TO_SLAVE = 1`,
          'START SLAVE',
        ].join('; '),
      );
      // db1 replicates the new primary's transactions since the failover (beyond its base).
      await writer.pause();
      const target = (await primary.query('SELECT @@gtid_binlog_pos')).trim();
      await waitFor(async () => (await member('db1').query('SELECT @@gtid_slave_pos')).trim() === target, {
        timeoutMs: 20_000,
        what: `db1 to apply the new primary's writes up to ${target}`,
      });
      writer.resume();
    } finally {
      await writer.stop();
    }

    const second = await startDbManager(config(), { coordinator, logger: testLogger() });
    managers.push(second);
    const status = await waitFor(
      () => {
        const s = second.manager.status();
        const db1 = s.members.find((m) => m.name === 'db1');
        return db1?.role === 'replica' && db1.replication?.io === 'Yes' && db1.replication.sql === 'Yes'
          ? s
          : undefined;
      },
      { timeoutMs: 30_000, what: 'db1 to be a replica again under the second manager' },
    );
    assert.deepEqual(status.quarantined, [], 'nothing quarantined');
    assert.deepEqual(status.pendingRejoin, [], 'the rejoin was finished');
    const events = second.manager.status().events;
    assert.ok(
      events.some((e) => e.type === 'rejoin' && e.member === 'db1'),
      `a rejoin of db1: ${events.map((e) => e.type).join(', ')}`,
    );
    assert.ok(!events.some((e) => e.type === 'quarantine'), 'no quarantine');
    const names = async (name: string) =>
      (await member(name).query("SELECT name FROM orgs WHERE name LIKE 'cut-%' ORDER BY name"))
        .split('\n')
        .filter(Boolean);
    const onPrimary = await names(status.primary ?? '');
    assert.ok(onPrimary.length >= 20);
    await waitFor(async () => (await names('db1')).join() === onPrimary.join(), {
      timeoutMs: 20_000,
      what: 'db1 to hold every row of the primary',
    });
  });
});
