// The DaaS-Operator on three management nodes: three real `insitu node` processes on a
// real three-member etcd, each supervising a fake every-node service ("web") and able to
// run a placed singleton ("single"). Faults: kill -9 of the leader's node, SIGSTOP of the
// leader past its lease, a node stopped, etcd down for 30 s, a bad cluster.yaml.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { waitFor } from '@insitu/core';
import { createEtcdCoordinator, type Coordinator } from '@insitu/coord';
import { KEYS, clusterStatus, listEvents, parseRecord, type NodeRecord, type PlacementRecord } from '@insitu/operator';
import { freePort, makeTempDir, removeDir, startEtcdCluster, type EtcdCluster } from '@insitu/test-helpers';
import { InsituProcess, runInsitu } from './support.js';

const FAKE = fileURLToPath(new URL('./fixtures/fake-service.js', import.meta.url));
const NODES = ['node1', 'node2', 'node3'] as const;
type NodeName = (typeof NODES)[number];

const SPEC = {
  deepProbes: { enabled: false },
  services: {
    web: {
      placement: 'every-node',
      liveness: { path: '/healthz', periodMs: 500, timeoutMs: 500, failureThreshold: 4 },
      readiness: { path: '/readyz', periodMs: 200, timeoutMs: 200 },
      startupGraceMs: 5000,
      stopGraceMs: 3000,
      restart: { backoffInitialMs: 200, backoffMaxMs: 1000 },
    },
    single: {
      placement: { count: 1 },
      liveness: { path: '/healthz', periodMs: 500, timeoutMs: 500, failureThreshold: 4 },
      startupGraceMs: 5000,
      stopGraceMs: 2000,
    },
  },
};

describe('operator on three nodes and a three-member etcd', { timeout: 300_000 }, () => {
  let dir: string;
  let etcd: EtcdCluster;
  let coordinator: Coordinator;
  const nodes = new Map<NodeName, InsituProcess>();
  const configs = new Map<NodeName, string>();
  const ports = { web: new Map<NodeName, number>(), single: new Map<NodeName, number>() };
  // Every 50 ms: how many singletons answer. Never more than one.
  let monitor: NodeJS.Timeout | undefined;
  let maxSingletons = 0;

  const startNode = async (name: NodeName) => {
    const proc = new InsituProcess(name, ['node', '--config', configs.get(name) ?? '']);
    nodes.set(name, proc);
    await proc.waitForOutput(/joined/, 30_000);
    return proc;
  };
  const record = async (name: NodeName) => parseRecord<NodeRecord>(await coordinator.get(`${KEYS.nodes}${name}`));
  const placement = async () => parseRecord<PlacementRecord>(await coordinator.get(`${KEYS.placements}single`));
  const leader = async () => (await clusterStatus(coordinator)).leader as NodeName | undefined;
  const answers = async (port: number): Promise<number | undefined> => {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(500) });
      return ((await response.json()) as { pid: number }).pid;
    } catch {
      return undefined;
    }
  };
  const runningSingletons = async () => {
    const found: NodeName[] = [];
    for (const name of NODES) if ((await answers(ports.single.get(name) ?? 0)) !== undefined) found.push(name);
    return found;
  };
  const singleRunsOn = (name: NodeName) =>
    waitFor(async () => (await runningSingletons()).join() === name, {
      timeoutMs: 30_000,
      what: `the singleton running on ${name} only`,
    });

  before(async () => {
    dir = await makeTempDir('insitu-operator-e2e-');
    etcd = await startEtcdCluster();
    coordinator = createEtcdCoordinator({ endpoints: etcd.endpoints, namespace: 'ops-test/' });
    for (const name of NODES) {
      ports.web.set(name, await freePort());
      ports.single.set(name, await freePort());
      const file = join(dir, `${name}.yaml`);
      const service = (port: number) => ({
        command: [process.execPath, FAKE],
        env: { FAKE_PORT: String(port), FAKE_DRAIN_MS: '300' },
        health: `http://127.0.0.1:${port}`,
      });
      await writeFile(
        file,
        stringify({
          node: name,
          dataDir: join(dir, name),
          coord: { endpoints: etcd.endpoints, namespace: 'ops-test/' },
          services: { web: service(ports.web.get(name) ?? 0), single: service(ports.single.get(name) ?? 0) },
          timing: { nodeLeaseTtlMs: 6000, nodeRenewMs: 500, leaderLeaseTtlMs: 9000, leaderRetryMs: 300, tickMs: 200 },
          log: { level: 'info' },
        }),
      );
      configs.set(name, file);
    }
    await writeFile(join(dir, 'cluster.yaml'), stringify(SPEC));
    // node1 alone first: it leads, and the singleton can only go to it.
    await startNode('node1');
    await waitFor(async () => (await leader()) === 'node1', { timeoutMs: 30_000, what: 'node1 leading' });
    const applied = await runInsitu([
      'operator',
      'apply',
      '-f',
      join(dir, 'cluster.yaml'),
      '--config',
      configs.get('node1') ?? '',
    ]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /\+ services\.single\.placement\.count: 1/);
    await waitFor(async () => (await placement())?.nodes.join() === 'node1', {
      timeoutMs: 30_000,
      what: 'the singleton placed on node1',
    });
    await startNode('node2');
    await startNode('node3');
    monitor = setInterval(() => {
      void runningSingletons().then((found) => {
        maxSingletons = Math.max(maxSingletons, found.length);
      });
    }, 50);
  });

  after(async () => {
    if (monitor) clearInterval(monitor);
    await Promise.all([...nodes.values()].map((proc) => proc.stop('SIGKILL')));
    await coordinator?.close();
    await etcd?.stop();
    if (process.env.KEEP_TEST_DIR) {
      for (const [name, proc] of nodes) await writeFile(join(dir, `${name}.out`), proc.output);
      process.stdout.write(`kept ${dir}\n`);
    } else await removeDir(dir);
  });

  it('every node runs web; the singleton runs on exactly one node; status shows nodes, leader and placement', async () => {
    for (const name of NODES)
      await waitFor(async () => (await record(name))?.services.web?.state === 'ready', {
        timeoutMs: 30_000,
        what: `web ready on ${name}`,
      });
    await singleRunsOn('node1');
    const status = await runInsitu(['operator', 'status', '--json', '--config', configs.get('node2') ?? '']);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as Awaited<ReturnType<typeof clusterStatus>>;
    assert.ok(NODES.includes(parsed.leader as NodeName), `a leader (${parsed.leader})`);
    assert.deepEqual(
      parsed.nodes.map((n) => `${n.node}:${n.state}`),
      ['node1:up', 'node2:up', 'node3:up'],
    );
    assert.ok(
      parsed.nodes.every((n) => (n.leaseAgeMs ?? 99_999) < 5000),
      'lease ages are fresh',
    );
    assert.deepEqual(parsed.placements.find((p) => p.service === 'single')?.nodes, ['node1']);
    const text = await runInsitu(['operator', 'status', '--config', configs.get('node2') ?? '']);
    assert.match(text.stdout, /node node\d +UP .* leader/);
    assert.match(text.stdout, /web +ready +pid \d+/);
  });

  it("kill -9 of the leader's insitu node: a new leader, the singleton moved, never two copies", async () => {
    const before = await placement();
    assert.ok(before);
    // The leader holds the singleton (it was alone when it was placed).
    await waitFor(async () => (await leader()) === 'node1', { timeoutMs: 30_000, what: 'node1 (the holder) leading' });
    await nodes.get('node1')?.stop('SIGKILL');
    const next = await waitFor(
      async () => {
        const current = await leader();
        return current && current !== 'node1' ? current : undefined;
      },
      { timeoutMs: 40_000, what: 'a new leader' },
    );
    const moved = await waitFor(
      async () => {
        const current = await placement();
        return current && !current.nodes.includes('node1') && current.nodes.length === 1 ? current : undefined;
      },
      { timeoutMs: 30_000, what: 'the singleton moved off node1' },
    );
    assert.equal(moved.leader, next, 'the new leader moved it');
    assert.ok(moved.token > before.token, `a fenced write with a larger token (${before.token} -> ${moved.token})`);
    await singleRunsOn(moved.nodes[0] as NodeName);
    const events = await listEvents(coordinator, { type: 'moved' });
    assert.match(events.at(-1)?.reason ?? '', /moved single from node1 to node\d: node1 lost/);
    assert.ok(maxSingletons <= 1, 'never two singletons at once');
    // node1 comes back and joins; the singleton stays where it is (no needless move).
    await startNode('node1');
    await waitFor(async () => (await record('node1'))?.services.web?.state === 'ready', {
      timeoutMs: 30_000,
      what: 'node1 back',
    });
    assert.deepEqual((await placement())?.nodes, moved.nodes);
  });

  it('a leader paused (SIGSTOP) past its lease does not act when it wakes (SIGCONT)', async () => {
    const paused = (await leader()) as NodeName;
    const proc = nodes.get(paused);
    assert.ok(proc?.child.pid);
    const before = await placement();
    proc.child.kill('SIGSTOP');
    const stoppedAt = new Date().toISOString();
    const next = await waitFor(
      async () => {
        const current = await leader();
        return current && current !== paused ? current : undefined;
      },
      { timeoutMs: 40_000, what: 'another leader while the old one sleeps' },
    );
    // If the sleeper held the singleton, the new leader moves it (its lease lapsed).
    if (before?.nodes.includes(paused)) {
      await waitFor(async () => !(await placement())?.nodes.includes(paused), {
        timeoutMs: 20_000,
        what: 'the singleton moved off the sleeper',
      });
    }
    const placedBeforeWake = await placement();
    proc.child.kill('SIGCONT');
    const wokeAt = new Date().toISOString();
    await proc.waitForOutput(/stopped leading/, 10_000);
    // Let the woken node run a good number of its ticks (200 ms).
    await waitFor(async () => (await record(paused))?.services.web?.state === 'ready', {
      timeoutMs: 20_000,
      what: 'the woken node re-registered',
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal(await leader(), next, 'the new leader still leads');
    const after = await placement();
    assert.deepEqual(after, placedBeforeWake, 'the woken node changed no placement');
    const fromSleeper = (await listEvents(coordinator, { node: paused, limit: 500 })).filter(
      (e) => e.node === paused && e.at > wokeAt,
    );
    const leaderKinds = new Set([
      'placed',
      'moved',
      'unplaced',
      'command-started',
      'silence-expired',
      'leader-elected',
    ]);
    assert.deepEqual(
      fromSleeper.filter((e) => leaderKinds.has(e.type)),
      [],
      'the woken node took no leader action',
    );
    assert.ok(
      fromSleeper.some((e) => e.type === 'leader-lost'),
      'it noticed that it no longer leads',
    );
    assert.ok(maxSingletons <= 1, 'never two singletons at once');
    assert.ok(stoppedAt < wokeAt);
  });

  it('a node stopped (SIGTERM): its placed service runs elsewhere at once, web keeps running on the others', async () => {
    const holder = (await placement())?.nodes[0] as NodeName;
    const webPids = new Map<NodeName, number | undefined>();
    for (const name of NODES) if (name !== holder) webPids.set(name, (await record(name))?.services.web?.pid);
    assert.equal(await nodes.get(holder)?.stop('SIGTERM'), 0, 'insitu node exits 0 on SIGTERM');
    const moved = await waitFor(
      async () => {
        const current = await placement();
        return current && current.nodes.length === 1 && !current.nodes.includes(holder) ? current : undefined;
      },
      { timeoutMs: 20_000, what: 'the singleton placed elsewhere' },
    );
    await singleRunsOn(moved.nodes[0] as NodeName);
    for (const [name, pid] of webPids)
      assert.equal((await record(name))?.services.web?.pid, pid, `web on ${name} untouched`);
    assert.equal(await answers(ports.web.get(holder) ?? 0), undefined, "the stopped node's services stopped with it");
    assert.ok(maxSingletons <= 1);
    await startNode(holder);
    await waitFor(async () => (await record(holder))?.services.web?.state === 'ready', {
      timeoutMs: 30_000,
      what: `${holder} back`,
    });
  });

  it("etcd down 30 s: every service keeps running except the placed one (Patroni's rule), nothing moves, all recovers", async () => {
    const holder = (await placement())?.nodes[0] as NodeName;
    await singleRunsOn(holder);
    const webPids = new Map<NodeName, number | undefined>();
    for (const name of NODES) webPids.set(name, await answers(ports.web.get(name) ?? 0));
    assert.ok([...webPids.values()].every((pid) => pid !== undefined));
    const downAt = Date.now();
    await Promise.all(etcd.members.map((member) => member.kill('SIGKILL')));
    // Past the node lease (5 s) the holder stops its placed singleton; web keeps answering.
    await waitFor(async () => (await runningSingletons()).length === 0, {
      timeoutMs: 15_000,
      what: 'the singleton stopped without a lease',
    });
    while (Date.now() - downAt < 30_000) {
      for (const name of NODES)
        assert.equal(await answers(ports.web.get(name) ?? 0), webPids.get(name), `web on ${name} keeps running`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    await Promise.all(etcd.members.map((member) => member.start({ wait: false })));
    await Promise.all(
      etcd.members.map((member) =>
        waitFor(() => member.health(), { timeoutMs: 30_000, what: `${member.name} healthy` }),
      ),
    );
    await singleRunsOn(holder);
    assert.equal((await placement())?.nodes[0], holder, 'nothing moved');
    for (const name of NODES) {
      await waitFor(async () => (await record(name))?.services.web?.state === 'ready', {
        timeoutMs: 30_000,
        what: `${name} republished`,
      });
      assert.equal(await answers(ports.web.get(name) ?? 0), webPids.get(name), `web on ${name} is the same process`);
    }
    await waitFor(async () => (await leader()) !== undefined, { timeoutMs: 20_000, what: 'a leader again' });
    const lost = await listEvents(coordinator, { type: 'lease-lost', limit: 200 });
    assert.ok(
      lost.some((e) => e.node === holder && /stopping its placed services single/.test(e.reason)),
      'the holder said why it stopped the singleton',
    );
    assert.ok(maxSingletons <= 1);
  });

  it('a rolling restart restarts web one node at a time, each ready again before the next', async () => {
    const before = new Map<NodeName, number | undefined>();
    for (const name of NODES) before.set(name, (await record(name))?.services.web?.pid);
    // While it rolls, at least two of three webs answer ready at every sample.
    let minReady = 3;
    // A sample counts only when every node gave a definite answer (ready, 503, or refused):
    // a probe that merely timed out on this busy machine says nothing.
    const sampler = setInterval(() => {
      void Promise.all(
        NODES.map(async (name) => {
          try {
            const response = await fetch(`http://127.0.0.1:${ports.web.get(name) ?? 0}/readyz`, {
              signal: AbortSignal.timeout(2000),
            });
            await response.arrayBuffer();
            return response.ok;
          } catch (error) {
            return (error as Error).name === 'TimeoutError' ? undefined : false;
          }
        }),
      ).then((ready) => {
        if (ready.every((r) => r !== undefined)) minReady = Math.min(minReady, ready.filter(Boolean).length);
      });
    }, 50);
    const result = await runInsitu([
      'operator',
      'restart',
      'web',
      '--rolling',
      '--json',
      '--config',
      configs.get('node3') ?? '',
    ]);
    clearInterval(sampler);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const command = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
      state: string;
      steps: { node: string; state: string }[];
    };
    assert.equal(command.state, 'done');
    assert.deepEqual(
      command.steps.map((s) => `${s.node}:${s.state}`),
      ['node1:ready', 'node2:ready', 'node3:ready'],
    );
    for (const name of NODES)
      assert.notEqual((await record(name))?.services.web?.pid, before.get(name), `web on ${name} restarted`);
    assert.ok(minReady >= 2, `one node at a time: never fewer than two ready (saw ${minReady})`);
    const restarted = await listEvents(coordinator, { type: 'restarted', service: 'web' });
    assert.deepEqual(
      restarted.slice(-3).map((e) => e.subject),
      ['node1', 'node2', 'node3'],
    );
  });

  it('a bad cluster.yaml is refused with a coded error and changes nothing', async () => {
    const before = await coordinator.get(KEYS.spec);
    const bad = join(dir, 'bad.yaml');
    await writeFile(
      bad,
      stringify({
        services: { web: { placement: { count: 0 } }, single: { placement: 'every-node', restart: { budjet: 3 } } },
      }),
    );
    const result = await runInsitu(['operator', 'apply', '-f', bad, '--config', configs.get('node1') ?? '']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\[INSITU_OPERATOR_SPEC_INVALID\]/);
    assert.match(
      result.stderr,
      /services\.single\.restart\.budjet: unknown option; did you mean "services\.single\.restart\.budget"\?/,
    );
    assert.equal(await coordinator.get(KEYS.spec), before, 'the stored spec is unchanged');
  });
});
