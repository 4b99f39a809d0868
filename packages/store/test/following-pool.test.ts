import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InsituError, waitFor } from '@insitu/core';
import { startMariaDbCluster, type MariaDbCluster } from '@insitu/test-helpers';
import { isUniqueViolation, openStore, type PrimaryAddress, type PrimarySource, type Store } from '../src/index.js';

/** A primary source the test moves by hand (the dbmanager publishes one through coord). */
function manualSource(first: PrimaryAddress): PrimarySource & { move(to: PrimaryAddress): void } {
  let current = first;
  const listeners = new Set<(address: PrimaryAddress) => void>();
  return {
    current: () => current,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    move(to) {
      current = to;
      for (const listener of listeners) listener(to);
    },
  };
}

/** Writes org rows one after the other, retrying each until it is acknowledged. */
function startWriter(store: Store) {
  const acknowledged: string[] = [];
  let failures = 0;
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const name = `writer-${i}`;
      for (;;) {
        try {
          await store.orgs.create({ name, displayName: name, status: 'active' });
          acknowledged.push(name);
          break;
        } catch (error) {
          // A retry of a write whose answer was lost finds it already there.
          if (isUniqueViolation(error)) {
            acknowledged.push(name);
            break;
          }
          failures += 1;
          if (!running) return;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    }
  })();
  return {
    acknowledged,
    get failures() {
      return failures;
    },
    async stop() {
      running = false;
      await done;
    },
  };
}

describe('store: a MySQL pool that follows the primary', () => {
  let cluster: MariaDbCluster;
  before(async () => {
    cluster = await startMariaDbCluster({ members: 2 });
    const [primary, replica] = cluster.members;
    assert.ok(primary && replica);
    // AFTER_SYNC semi-sync: an acknowledged commit is on the replica before the primary dies.
    await primary.query(
      "SET GLOBAL rpl_semi_sync_master_wait_point = 'AFTER_SYNC'; SET GLOBAL rpl_semi_sync_master_enabled = ON",
    );
    await replica.query('SET GLOBAL rpl_semi_sync_slave_enabled = ON; STOP SLAVE IO_THREAD; START SLAVE IO_THREAD');
    await waitFor(
      async () => (await primary.query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")).includes('\t1'),
      {
        timeoutMs: 20_000,
        what: 'the replica to acknowledge semi-synchronously',
      },
    );
  });
  after(async () => {
    await cluster?.stop();
  });

  it('a writer through the store keeps writing after the primary dies and the source moves, and loses nothing acknowledged', async () => {
    const [primary, replica] = cluster.members;
    assert.ok(primary && replica);
    const source = manualSource({ host: primary.host, port: primary.port });
    const store = await openStore({
      kind: 'mysql',
      host: '127.0.0.1',
      port: 1,
      user: 'root',
      password: primary.password,
      database: primary.database,
      primary: source,
      poolSize: 4,
    });
    const writer = startWriter(store);
    try {
      await waitFor(() => writer.acknowledged.length >= 30, {
        timeoutMs: 30_000,
        what: '30 writes on the first primary',
      });
      await primary.kill();
      const beforeMove = writer.acknowledged.length;
      // Promote as the dbmanager does: apply everything the replica received (and
      // acknowledged semi-synchronously) before RESET SLAVE ALL throws the relay log away.
      await replica.query('STOP SLAVE IO_THREAD');
      await waitFor(
        async () => {
          const [status] = await replica.queryRows('SHOW SLAVE STATUS');
          const [applied] = await replica.queryRows('SELECT @@gtid_slave_pos AS pos');
          return status !== undefined && applied !== undefined && status.Gtid_IO_Pos === applied.pos;
        },
        { timeoutMs: 30_000, what: 'the replica to apply its relay log' },
      );
      await replica.query('STOP ALL SLAVES; RESET SLAVE ALL; SET GLOBAL read_only = 0');
      source.move({ host: replica.host, port: replica.port });
      await waitFor(() => writer.acknowledged.length >= beforeMove + 30, {
        timeoutMs: 30_000,
        what: '30 more writes on the new primary',
      });
    } finally {
      await writer.stop();
    }
    const rows = await replica.query('SELECT name FROM orgs');
    const onNewPrimary = new Set(rows.split('\n').filter(Boolean));
    const missing = writer.acknowledged.filter((name) => !onNewPrimary.has(name));
    assert.deepEqual(missing, [], 'every acknowledged write is on the new primary');
    assert.ok(writer.failures > 0, 'the writer did see the primary die (otherwise this test proves nothing)');
    await store.close();
  });

  it('without a known primary the store answers INSITU_DATABASE_UNAVAILABLE, and recovers once one is published', async () => {
    const [, replica] = cluster.members;
    assert.ok(replica);
    let current: PrimaryAddress | undefined;
    const listeners = new Set<(address: PrimaryAddress) => void>();
    const source: PrimarySource = {
      current: () => current,
      onChange(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    // Falls back to host/port until the source knows a primary.
    const store = await openStore({
      kind: 'mysql',
      host: replica.host,
      port: replica.port,
      user: 'root',
      password: replica.password,
      database: replica.database,
      primary: source,
    });
    await store.ping();
    current = { host: '127.0.0.1', port: 1 };
    for (const listener of listeners) listener(current);
    await assert.rejects(
      store.ping(),
      (error: unknown) => error instanceof InsituError && error.code === 'INSITU_DATABASE_UNAVAILABLE',
    );
    current = { host: replica.host, port: replica.port };
    for (const listener of listeners) listener(current);
    await store.ping();
    await store.close();
  });
});
