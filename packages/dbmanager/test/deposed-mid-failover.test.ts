import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '@insitu/core';
import type { AlertMessage } from '@insitu/notify';
import { startWebhookReceiver, type MariaDbCluster, type WebhookReceiver } from '@insitu/test-helpers';
import {
  coordKeys,
  createCoordinator,
  startDbManager,
  type Coordinator,
  type ManagerEvent,
  type RunningDbManager,
} from '../src/index.js';
import { startTestCluster, testConfig, testLogger } from './support.js';

const ELECTION = '_election/dbmanager.platform/';

/**
 * The real coordinator, with one fault at an exact point: when `cutAt()` names this manager, its
 * candidate key is deleted (what etcd does when the lease lapses) right before its fenced write of
 * the topology, the failover's publish, which coord then refuses with INSITU_COORD_NOT_LEADER.
 */
function cutBeforePublish(inner: Coordinator, id: string, cutAt: () => string | undefined, onCut: () => void) {
  const topologyKey = coordKeys('platform').topology;
  const bound = (target: object, prop: string | symbol): unknown => {
    const value: unknown = Reflect.get(target, prop, target);
    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
  };
  return new Proxy(inner, {
    get(target, prop) {
      if (prop !== 'campaign') return bound(target, prop);
      return (...args: Parameters<Coordinator['campaign']>) => {
        const leadership = target.campaign(...args);
        return new Proxy(leadership, {
          get(l, p) {
            if (p !== 'fencedPut') return bound(l, p);
            return async (key: string, value: string) => {
              if (key === topologyKey && cutAt() === id) {
                onCut();
                for (const [candidate, who] of await inner.list(ELECTION))
                  if (who === id) await inner.delete(candidate);
              }
              return l.fencedPut(key, value);
            };
          },
        });
      };
    },
  });
}

// Regression (3+2 bed, node-loss-primary): the elected manager lost its leader key in the middle
// of a failover. Its fenced publish was refused with coord's INSITU_COORD_NOT_LEADER, which the
// failover did not take for "deposed": it undid the failover (repointing the replicas at the dead
// primary) and sent a `failover-failed` alert that nobody ever resolved; and the `primary-down` it
// had already sent was not in the state it had published, so the next manager sent it again.
// Wanted: the next manager finishes the failover; one primary-down (firing, resolved), no failover-failed.
describe('dbmanager: a manager deposed in the middle of a failover', () => {
  let cluster: MariaDbCluster;
  let coordinator: Coordinator;
  let hook: WebhookReceiver;
  const managers: RunningDbManager[] = [];
  /** The manager whose next publish of the topology loses its leader key first; 'done' once it did. */
  let cut: string | undefined;

  before(async () => {
    [cluster, hook] = await Promise.all([startTestCluster(), startWebhookReceiver()]);
    coordinator = await createCoordinator({ kind: 'memory', endpoints: [] });
    for (const id of ['mgr-a', 'mgr-b']) {
      const wrapped = cutBeforePublish(
        coordinator,
        id,
        () => cut,
        () => (cut = 'done'),
      );
      managers.push(
        await startDbManager(
          testConfig(cluster, {
            managerId: id,
            // Short, so that primary-down goes out while the failover is still running.
            notify: { webhooks: [{ url: hook.url }], groupWaitMs: 5, retry: { attempts: 3, initialDelayMs: 20 } },
          }),
          { coordinator: wrapped, logger: testLogger() },
        ),
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

  it('the primary dies, the leader loses its key at the failover’s publish: the next one fails over; one primary-down, no failover-failed', async () => {
    const leader = managers.find((m) => m.manager.isLeader());
    assert.ok(leader !== undefined);
    const leaderEvents: ManagerEvent[] = [];
    leader.manager.on('event', (event: ManagerEvent) => leaderEvents.push(event));
    cut = leader.manager.id;
    await cluster.members[0]?.kill('SIGKILL');

    const messages = () =>
      hook.accepted.map((h) => h.body as AlertMessage).filter((m) => m.alerts.some((a) => a.subject === 'db1'));
    await waitFor(
      () =>
        managers.some((m) => {
          const status = m.manager.status();
          return m.manager.isLeader() && status.primary !== 'db1' && status.primary !== null;
        }) && messages().some((m) => m.condition === 'primary-down' && m.status === 'resolved'),
      { timeoutMs: 60_000, what: 'a failover by the next leader, primary-down resolved' },
    );
    assert.equal(cut, 'done', 'the leader was deposed at its publish');
    // What is asserted is an absence (no second message): give a late one the time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const states = (condition: string) =>
      messages()
        .filter((m) => m.condition === condition)
        .map((m) => m.status);
    assert.deepEqual(states('primary-down'), ['firing', 'resolved'], 'one primary-down incident');
    assert.deepEqual(states('failover-failed'), [], 'the deposed manager reports no failed failover');
    assert.deepEqual(
      leaderEvents.filter((e) => e.type === 'failover-attempt-failed').map((e) => e.message),
      [],
      'the deposed manager took it for its leadership lost, not for a failed failover',
    );
    assert.equal(leaderEvents.filter((e) => e.type === 'failover-interrupted').length, 1);
  });
});
