import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InsituError, waitFor } from '@insitu/core';
import type { Coordinator, Leadership, WatchEvent } from '@insitu/coord';

/** Makes coordinators that share one store (one etcd, or one memory backend). */
export interface CoordinatorFactory {
  make(): Promise<Coordinator>;
  /** Cut one coordinator off the store (memory) — undefined where a test does it otherwise. */
  partition?: (coordinator: Coordinator, cut: boolean) => void;
}

/** Leases and campaigns here use this TTL (etcd's minimum is 2 s with a 1 s election timeout). */
export const TTL_MS = 2000;

function isCode(code: string) {
  return (error: unknown) => error instanceof InsituError && error.code === code;
}

/**
 * The behaviour both coordinators must share, run once per implementation.
 */
export function coordinatorSuite(label: string, factory: () => CoordinatorFactory): void {
  describe(`${label} coordinator: shared semantics`, () => {
    const opened: Coordinator[] = [];
    const open = async (): Promise<Coordinator> => {
      const coordinator = await factory().make();
      opened.push(coordinator);
      return coordinator;
    };
    after(async () => {
      await Promise.all(opened.map((coordinator) => coordinator.close().catch(() => undefined)));
    });

    it('stores, lists by prefix and deletes keys', async () => {
      const coord = await open();
      await coord.put('kv/a', '1');
      await coord.put('kv/b', '2');
      await coord.put('kvother', '3');
      assert.equal(await coord.get('kv/a'), '1');
      assert.equal(await coord.get('kv/missing'), undefined);
      assert.deepEqual([...(await coord.list('kv/'))].sort(), [
        ['kv/a', '1'],
        ['kv/b', '2'],
      ]);
      await coord.delete('kv/a');
      assert.equal(await coord.get('kv/a'), undefined);
      assert.deepEqual([...(await coord.list('kv/'))], [['kv/b', '2']]);
    });

    it('delivers puts and deletes under a watched prefix to another coordinator, and stops after close', async () => {
      const writer = await open();
      const reader = await open();
      const events: WatchEvent[] = [];
      const watch = await reader.watchPrefix('w/', (event) => events.push(event));
      await writer.put('w/x', 'one');
      await writer.put('elsewhere/x', 'no');
      await writer.put('w/x', 'two');
      await writer.delete('w/x');
      await waitFor(() => events.length >= 3, { what: 'three watch events' });
      assert.deepEqual(events, [
        { type: 'put', key: 'w/x', value: 'one' },
        { type: 'put', key: 'w/x', value: 'two' },
        { type: 'delete', key: 'w/x' },
      ]);
      await watch.close();
      await writer.put('w/y', 'after close');
      await writer.get('w/y');
      assert.equal(events.length, 3);
    });

    it('removes a lease’s keys when it is revoked, and refuses puts with a dead lease', async () => {
      const coord = await open();
      const lease = await coord.grantLease(TTL_MS);
      await coord.put('leased/k', 'v', { lease });
      assert.equal(await coord.get('leased/k'), 'v');
      await lease.revoke();
      assert.equal(lease.isAlive(), false);
      assert.equal(await coord.get('leased/k'), undefined);
      await assert.rejects(coord.put('leased/k2', 'v', { lease }), isCode('INSITU_COORD_LEASE_LOST'));
    });

    it('keeps a lease alive past its TTL, and lets it expire when its holder dies', async () => {
      const holder = await open();
      const other = await open();
      const lease = await holder.grantLease(TTL_MS);
      await holder.put('crash/k', 'v', { lease });
      const deletions: string[] = [];
      await other.watchPrefix('crash/', (event) => {
        if (event.type === 'delete') deletions.push(event.key);
      });
      const start = Date.now();
      await waitFor(() => Date.now() - start > TTL_MS * 1.5, { timeoutMs: TTL_MS * 3, intervalMs: 100 });
      assert.equal(await other.get('crash/k'), 'v', 'the keep-alive kept the key past the TTL');
      await holder.close({ revokeLeases: false });
      await waitFor(() => deletions.includes('crash/k'), {
        timeoutMs: TTL_MS * 4,
        what: 'the crashed holder’s key to expire',
      });
      assert.equal(await other.get('crash/k'), undefined);
    });

    it('elects one candidate at a time, with growing fencing tokens, and hands over on resign', async () => {
      const a = await open();
      const b = await open();
      const observer = await b.observe('suite-resign');
      const changes: Array<string | undefined> = [];
      observer.on('change', (leader) => changes.push(leader));
      const first = a.campaign('suite-resign', 'node-a', { ttlMs: TTL_MS });
      const tokenA = await first.whenElected();
      const second = b.campaign('suite-resign', 'node-b', { ttlMs: TTL_MS });
      await waitFor(() => observer.leader() === 'node-a', { what: 'observer to see node-a' });
      // node-b waits while node-a leads.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(second.isLeader(), false);
      assert.equal(first.isLeader(), true);
      assert.equal(first.token, tokenA);

      const revision = await first.fencedPut('suite-resign/state', 'written by a');
      assert.ok(revision > tokenA);
      await assert.rejects(
        second.fencedPut('suite-resign/state', 'b is not leader'),
        isCode('INSITU_COORD_NOT_LEADER'),
      );

      await first.resign();
      const tokenB = await second.whenElected();
      assert.ok(tokenB > tokenA, `token ${tokenB} after ${tokenA}`);
      assert.equal(first.isLeader(), false);
      await assert.rejects(first.fencedPut('suite-resign/state', 'a resigned'), isCode('INSITU_COORD_NOT_LEADER'));
      await second.fencedPut('suite-resign/state', 'written by b');
      assert.equal(await a.get('suite-resign/state'), 'written by b');
      await waitFor(() => observer.leader() === 'node-b', { what: 'observer to see node-b' });
      const named = changes.filter((c) => c !== undefined);
      assert.deepEqual(named.slice(named.indexOf('node-a')), ['node-a', 'node-b']);
      await assert.rejects(first.whenElected(), isCode('INSITU_COORD_NOT_LEADER'));
      await second.resign();
      await observer.close();
    });

    it('hands leadership over once a crashed leader’s lease expires', async () => {
      const a = await open();
      const b = await open();
      const first = a.campaign('suite-crash', 'node-a', { ttlMs: TTL_MS });
      const tokenA = await first.whenElected();
      const second = b.campaign('suite-crash', 'node-b', { ttlMs: TTL_MS });
      await a.close({ revokeLeases: false });
      const crashedAt = Date.now();
      const tokenB = await second.whenElected();
      assert.ok(tokenB > tokenA);
      assert.ok(Date.now() - crashedAt >= TTL_MS / 2, 'the successor waited for the lease to expire');
      await second.resign();
    });

    it('rejects invalid election names and tiny TTLs', async () => {
      const coord = await open();
      assert.throws(() => coord.campaign('bad name/with slash', 'x', { ttlMs: TTL_MS }), isCode('INSITU_VALIDATION'));
      assert.throws(() => coord.campaign('ok', 'x', { ttlMs: 10 }), isCode('INSITU_VALIDATION'));
      await assert.rejects(coord.grantLease(5), isCode('INSITU_VALIDATION'));
    });

    if (factory().partition) {
      it('steps a partitioned leader down on its own deadline, before its lease expires and before anyone else leads', async () => {
        const f = factory();
        const a = await open();
        const b = await open();
        const first = a.campaign('suite-partition', 'node-a', { ttlMs: TTL_MS });
        await first.whenElected();
        const second = b.campaign('suite-partition', 'node-b', { ttlMs: TTL_MS });
        let lostAt = 0;
        first.on('lost', () => {
          lostAt = Date.now();
        });
        let electedAt = 0;
        second.on('elected', () => {
          electedAt = Date.now();
        });
        let overlap = false;
        const sampler = setInterval(() => {
          if (first.isLeader() && second.isLeader()) overlap = true;
        }, 5);
        const cutAt = Date.now();
        f.partition?.(a, true);
        await waitFor(() => !first.isLeader(), { timeoutMs: TTL_MS * 2, intervalMs: 10 });
        const steppedDownAfter = Date.now() - cutAt;
        assert.ok(steppedDownAfter < TTL_MS, `stepped down ${steppedDownAfter} ms after the cut, within the TTL`);
        await waitFor(() => electedAt > 0, { timeoutMs: TTL_MS * 4, what: 'node-b elected' });
        clearInterval(sampler);
        assert.ok(lostAt > 0 && lostAt <= electedAt, 'node-a emitted lost before node-b was elected');
        assert.equal(overlap, false, 'never two leaders at once');
        f.partition?.(a, false);
        await assert.rejects(first.fencedPut('suite-partition/x', 'stale'), isCode('INSITU_COORD_NOT_LEADER'));
        await second.resign();
      });
    }
  });
}

/** Record fenced writes; used by the etcd chaos tests. */
export interface FencedWrite {
  candidate: string;
  token: number;
  revision: number;
}

/** Keep campaigning and writing while leader, until stopped; returns the successful writes. */
export function fencedWorker(coord: Coordinator, election: string, candidate: string, ttlMs: number) {
  const writes: FencedWrite[] = [];
  let stopped = false;
  let current: Leadership | undefined;
  const loop = (async () => {
    while (!stopped) {
      const leadership = coord.campaign(election, candidate, { ttlMs });
      current = leadership;
      const ended = new Promise<void>((resolve) => leadership.on('lost', () => resolve()));
      try {
        await Promise.race([leadership.whenElected(), ended]);
      } catch {
        // the campaign ended before election: run again
      }
      while (!stopped && leadership.isLeader()) {
        try {
          const token = leadership.token ?? -1;
          const revision = await leadership.fencedPut(`${election}-data/owner`, `${candidate}:${token}`);
          writes.push({ candidate, token, revision });
        } catch {
          // refused or store unavailable: isLeader() decides whether to go on
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (!stopped) await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 200))]);
      await leadership.resign().catch(() => undefined);
    }
  })();
  return {
    writes,
    isLeader: () => current?.isLeader() ?? false,
    async stop(): Promise<void> {
      stopped = true;
      // Ends a campaign still waiting to be elected, so the loop can see `stopped`.
      await current?.resign();
      await loop;
    },
  };
}
