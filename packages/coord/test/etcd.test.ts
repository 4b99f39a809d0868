import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@insitu/core';
import { createEtcdCoordinator, type Coordinator } from '@insitu/coord';
import { startEtcdCluster, type EtcdCluster, type EtcdMember } from '@insitu/test-helpers';
import { TTL_MS, coordinatorSuite, fencedWorker, type FencedWrite } from './suite.js';

let cluster: EtcdCluster | undefined;
const namespace = `test-${randomBytes(4).toString('hex')}/`;

function endpoints(): string[] {
  if (!cluster) throw new Error('etcd cluster not started');
  return cluster.endpoints;
}

before(async () => {
  cluster = await startEtcdCluster({ members: 3 });
});
after(async () => {
  await cluster?.stop();
});

coordinatorSuite('etcd', () => ({
  make: async () => createEtcdCoordinator({ endpoints: endpoints(), namespace, relistIntervalMs: 500 }),
}));

async function etcdLeader(members: readonly EtcdMember[]): Promise<EtcdMember> {
  return waitFor(
    async () => {
      for (const member of members) {
        if (!member.running) continue;
        try {
          const response = await fetch(`${member.clientUrl}/v3/maintenance/status`, {
            method: 'POST',
            body: '{}',
            signal: AbortSignal.timeout(1000),
          });
          const status = (await response.json()) as { header?: { member_id?: string }; leader?: string };
          if (status.header?.member_id !== undefined && status.header.member_id === status.leader) return member;
        } catch {
          // member not answering: try the next
        }
      }
      return undefined;
    },
    { timeoutMs: 15_000, what: 'an etcd leader' },
  );
}

/** Fenced writes in store order must carry non-decreasing tokens: an older leader never writes after a newer one. */
function assertFenced(writes: readonly FencedWrite[]): void {
  const ordered = [...writes].sort((x, y) => x.revision - y.revision);
  for (let i = 1; i < ordered.length; i++) {
    const previous = ordered[i - 1];
    const current = ordered[i];
    assert.ok(
      previous && current && current.token >= previous.token,
      `write at revision ${current?.revision} by ${current?.candidate} (token ${current?.token}) came after one with token ${previous?.token}`,
    );
  }
}

describe('etcd coordinator: failures', () => {
  const opened: Coordinator[] = [];
  const open = (): Coordinator => {
    const coordinator = createEtcdCoordinator({ endpoints: endpoints(), namespace, relistIntervalMs: 500 });
    opened.push(coordinator);
    return coordinator;
  };
  after(async () => {
    await Promise.all(opened.map((coordinator) => coordinator.close().catch(() => undefined)));
  });

  it('keeps serving, with its lease and leadership, when an etcd member is killed', async () => {
    const members = cluster?.members ?? [];
    const coord = open();
    const lease = await coord.grantLease(6000);
    await coord.put('member-kill/k', 'v', { lease });
    const leadership = coord.campaign('member-kill', 'node-a', { ttlMs: 6000 });
    await leadership.whenElected();
    const victim = members.find((member) => member.running);
    assert.ok(victim);
    await victim.kill();
    try {
      await waitFor(
        async () =>
          await coord.put('member-kill/after', 'yes').then(
            () => true,
            () => false,
          ),
        { timeoutMs: 15_000, what: 'a write after the member was killed' },
      );
      assert.equal(await coord.get('member-kill/k'), 'v');
      assert.equal(lease.isAlive(), true);
      assert.equal(leadership.isLeader(), true);
      await leadership.fencedPut('member-kill/fenced', 'ok');
    } finally {
      await victim.start();
    }
    await leadership.resign();
    await lease.revoke();
  });

  it('hands over to the other candidate when the leader process is SIGKILLed, and the token grows', async () => {
    const script = fileURLToPath(new URL('./fixtures/candidate.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [script, endpoints().join(','), namespace, 'proc-kill', 'child', String(TTL_MS)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const lines = createInterface({ input: child.stdout });
      const elected = await new Promise<{ token: number }>((resolve, reject) => {
        lines.on('line', (line) => {
          const message = JSON.parse(line) as { event: string; token: number };
          if (message.event === 'elected') resolve(message);
        });
        child.once('exit', () => reject(new Error('candidate exited before it was elected')));
      });
      const coord = open();
      const successor = coord.campaign('proc-kill', 'parent', { ttlMs: TTL_MS });
      await waitFor(async () => (await coord.get('proc-kill-data/owner')) === 'child', {
        what: 'the child to write as leader',
      });
      assert.equal(successor.isLeader(), false);
      child.kill('SIGKILL');
      const token = await successor.whenElected();
      assert.ok(token > elected.token, `new token ${token} > old ${elected.token}`);
      await successor.fencedPut('proc-kill-data/owner', 'parent');
      assert.equal(await coord.get('proc-kill-data/owner'), 'parent');
      await successor.resign();
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('never has two candidates acting as leader across an etcd leader restart (etcd3 issues 158/176)', async () => {
    const members = cluster?.members ?? [];
    const a = fencedWorker(open(), 'restart', 'node-a', TTL_MS);
    const b = fencedWorker(open(), 'restart', 'node-b', TTL_MS);
    let overlap = 0;
    const sampler = setInterval(() => {
      if (a.isLeader() && b.isLeader()) overlap++;
    }, 5);
    try {
      await waitFor(() => a.writes.length + b.writes.length >= 5, { timeoutMs: 15_000, what: 'a leader writing' });
      for (let round = 0; round < 2; round++) {
        const leader = await etcdLeader(members);
        await leader.kill();
        const killedAt = Date.now();
        await waitFor(() => Date.now() - killedAt > TTL_MS, { timeoutMs: TTL_MS * 2, intervalMs: 50 });
        await leader.start();
        const before = a.writes.length + b.writes.length;
        await waitFor(() => a.writes.length + b.writes.length >= before + 5, {
          timeoutMs: 20_000,
          what: `fenced writes after restart ${round + 1}`,
        });
      }
    } finally {
      clearInterval(sampler);
      await a.stop();
      await b.stop();
    }
    assert.equal(overlap, 0, 'two candidates believed they led at the same instant');
    assertFenced([...a.writes, ...b.writes]);
  });
});
