#!/usr/bin/env node
// bench/ha — how fast the DaaS-Operator repairs, with its production timings (node lease
// 10 s, leader lease 15 s, probes every 2 s): three real `insitu node` processes on a real
// etcd, each supervising an every-node service ("web") and able to run a placed singleton
// ("single"); both are the operator tests' stand-in service (HTTP /healthz, /readyz, drains
// on SIGTERM). Measured, median of --runs:
//   - kill -9 of a web process → ready again (new pid answering /readyz);
//   - node loss (the node process and its services killed -9, as when a machine dies) of
//     a node holding the singleton but not leading → the singleton answering elsewhere;
//   - leader loss (the same, on the leading node) → a new leader elected, and the
//     singleton answering elsewhere when the leader held it;
//   - a rolling restart of web on three nodes under 64 connections of wrk through HAProxy
//     (health checks on /readyz): non-2xx answers and socket errors.
// The rolling restart of real `insitu server`s with an agent and a sandboxed application
// behind HAProxy is e2e/test/cluster-rolling-restart.test.ts (it asserts no failed call).
//
// Run after `npm run build`:  node bench/ha/run.mjs [--runs 5]   (needs etcd, haproxy, wrk)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { waitFor } from '@insitu/core';
import { createEtcdCoordinator } from '@insitu/coord';
import { KEYS, clusterStatus, parseRecord } from '@insitu/operator';
import { freePort, requireCommand, startEtcd } from '@insitu/test-helpers';
import { benchArgs } from '../args.mjs';

const values = benchArgs('node bench/ha/run.mjs [--runs N]', {
  runs: { default: '5', kind: 'count', help: 'trials of each fault' },
});
const RUNS = Number(values.runs);
const INSITU = fileURLToPath(new URL('../../packages/cli/bin/insitu.js', import.meta.url));
const FAKE = fileURLToPath(new URL('../../e2e/dist/test/fixtures/fake-service.js', import.meta.url));
const NODES = ['node1', 'node2', 'node3'];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;

async function answers(port, path = '/') {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(300) });
    const body = await response.json();
    return response.ok ? body : undefined;
  } catch {
    return undefined;
  }
}

const [haproxyBin, wrkBin] = await Promise.all([requireCommand('haproxy', 'haproxy'), requireCommand('wrk', 'wrk')]);
const dir = await mkdtemp(join(tmpdir(), 'insitu-bench-ha-'));
const etcd = await startEtcd();
const coordinator = createEtcdCoordinator({ endpoints: [etcd.endpoint], namespace: 'bench-ha/' });
const ports = { web: new Map(), single: new Map() };
const procs = new Map();
let haproxy;

function startNode(name) {
  const child = spawn(process.execPath, [INSITU, 'node', '--config', join(dir, `${name}.yaml`)], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  procs.set(name, child);
  return child;
}
const record = async (name) => parseRecord(await coordinator.get(`${KEYS.nodes}${name}`));
const leader = async () => (await clusterStatus(coordinator)).leader;
const singleOn = async () => {
  const found = [];
  for (const name of NODES) if ((await answers(ports.single.get(name))) !== undefined) found.push(name);
  return found;
};
/** Kill a node as a machine dies: its `insitu node` and the services it runs, all at once. */
async function killNode(name) {
  const r = await record(name);
  const pids = [procs.get(name)?.pid, ...Object.values(r?.services ?? {}).map((s) => s.pid)].filter((p) => p);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  procs.delete(name);
}

try {
  for (const name of NODES) {
    ports.web.set(name, await freePort());
    ports.single.set(name, await freePort());
    const service = (port) => ({
      command: [process.execPath, FAKE],
      env: { FAKE_PORT: String(port), FAKE_DRAIN_MS: '1500' },
      health: `http://127.0.0.1:${port}`,
    });
    await writeFile(
      join(dir, `${name}.yaml`),
      stringify({
        node: name,
        dataDir: join(dir, name),
        coord: { endpoints: [etcd.endpoint], namespace: 'bench-ha/' },
        services: { web: service(ports.web.get(name)), single: service(ports.single.get(name)) },
        log: { level: 'warn' },
      }),
    );
  }
  await writeFile(
    join(dir, 'cluster.yaml'),
    stringify({
      deepProbes: { enabled: false },
      services: {
        web: {
          placement: 'every-node',
          liveness: { path: '/healthz' },
          readiness: { path: '/readyz' },
          stopGraceMs: 5000,
        },
        single: { placement: { count: 1 }, liveness: { path: '/healthz' } },
      },
    }),
  );
  for (const name of NODES) startNode(name);
  await waitFor(async () => (await leader()) !== undefined, { timeoutMs: 60_000, what: 'a leader' });
  const applied = spawnSync(
    process.execPath,
    [INSITU, 'operator', 'apply', '-f', join(dir, 'cluster.yaml'), '--config', join(dir, 'node1.yaml')],
    { encoding: 'utf8' },
  );
  if (applied.status !== 0) throw new Error(`operator apply failed: ${applied.stderr}`);
  const allReady = async () =>
    (await Promise.all(NODES.map(async (n) => (await record(n))?.services.web?.state === 'ready'))).every(Boolean);
  await waitFor(async () => (await allReady()) && (await singleOn()).length === 1, {
    timeoutMs: 120_000,
    what: 'web on every node and one singleton',
  });

  // 1. kill -9 of a service process → ready again.
  const killToReady = [];
  for (let i = 0; i < RUNS; i++) {
    const name = NODES[i % NODES.length];
    const before = (await record(name)).services.web.pid;
    const started = Date.now();
    process.kill(before, 'SIGKILL');
    await waitFor(
      async () => {
        const body = await answers(ports.web.get(name), '/readyz');
        if (!body) return false;
        const now = await answers(ports.web.get(name));
        return now !== undefined && now.pid !== before;
      },
      { timeoutMs: 60_000, intervalMs: 10, what: `web on ${name} ready again` },
    );
    killToReady.push(Date.now() - started);
    await waitFor(allReady, { timeoutMs: 60_000, what: 'records ready' });
  }

  // 2 and 3. node loss and leader loss.
  const nodeLoss = [];
  const leaderElected = [];
  const leaderSingleton = [];
  for (let trial = 0; trial < RUNS * 4 && (nodeLoss.length < RUNS || leaderElected.length < RUNS); trial++) {
    const lead = await leader();
    const [holder] = await singleOn();
    let victim;
    if (holder !== lead && nodeLoss.length < RUNS) victim = holder;
    else if (leaderElected.length < RUNS || holder === lead) victim = lead;
    else victim = holder;
    const started = Date.now();
    await killNode(victim);
    if (victim === lead) {
      await waitFor(
        async () => {
          const now = await leader();
          return now !== undefined && now !== victim;
        },
        { timeoutMs: 120_000, intervalMs: 50, what: 'a new leader' },
      );
      leaderElected.push(Date.now() - started);
    }
    if (victim === holder) {
      await waitFor(
        async () => {
          const on = await singleOn();
          return on.length === 1 && on[0] !== victim;
        },
        { timeoutMs: 120_000, intervalMs: 50, what: 'the singleton elsewhere' },
      );
      if (victim === lead) leaderSingleton.push(Date.now() - started);
      else nodeLoss.push(Date.now() - started);
    }
    startNode(victim);
    await waitFor(async () => (await record(victim))?.services.web?.state === 'ready', {
      timeoutMs: 120_000,
      what: `${victim} back`,
    });
  }

  // 4. Rolling restart under 64 connections through HAProxy.
  const front = await freePort();
  await writeFile(
    join(dir, 'haproxy.cfg'),
    [
      'global',
      '  maxconn 4000',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  retries 3',
      '  option redispatch 1',
      '  retry-on conn-failure empty-response',
      'frontend calls',
      `  bind 127.0.0.1:${front}`,
      '  default_backend web',
      'backend web',
      '  balance roundrobin',
      '  option httpchk GET /readyz',
      '  http-check expect status 200',
      '  default-server inter 200ms fall 1 rise 2',
      ...NODES.map((n, i) => `  server w${i + 1} 127.0.0.1:${ports.web.get(n)} check`),
      '',
    ].join('\n'),
  );
  haproxy = spawn(haproxyBin, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
  await waitFor(() => answers(front, '/readyz').then((b) => b !== undefined), { timeoutMs: 30_000, what: 'HAProxy' });
  const wrk = spawn(wrkBin, ['-t', '2', '-c', '64', '-d', '40s', '--latency', `http://127.0.0.1:${front}/`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let wrkOut = '';
  wrk.stdout.on('data', (c) => (wrkOut += c));
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const rolled = spawnSync(
    process.execPath,
    [INSITU, 'operator', 'restart', 'web', '--rolling', '--json', '--config', join(dir, 'node2.yaml')],
    { encoding: 'utf8' },
  );
  await new Promise((resolve) => wrk.on('close', resolve));
  const command = JSON.parse(rolled.stdout.trim().split('\n').at(-1) ?? '{}');
  const requests = Number(/(\d+) requests in/.exec(wrkOut)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(wrkOut)?.[1] ?? 0);
  const socketErrors = /Socket errors: (.*)/.exec(wrkOut)?.[1] ?? 'none';

  const lines = [
    `bench/ha — ${new Date().toISOString().slice(0, 10)}, ${hostname()}, ${cpus().length} cores, operator default timings, ${RUNS} trials each`,
    '',
    '| fault | median | all | aim |',
    '|---|---:|---|---|',
    `| kill -9 of a service → ready again | ${seconds(median(killToReady))} | ${killToReady.map(seconds).join(', ')} | ≤ 2 s |`,
    `| node loss → placed singleton answering elsewhere | ${seconds(median(nodeLoss))} | ${nodeLoss.map(seconds).join(', ')} | ≤ 10 s |`,
    `| leader loss → new leader elected | ${seconds(median(leaderElected))} | ${leaderElected.map(seconds).join(', ')} | ≤ lease (15 s) + 2 s |`,
    `| leader loss → its singleton answering elsewhere | ${leaderSingleton.length ? seconds(median(leaderSingleton)) : 'n/a'} | ${leaderSingleton.map(seconds).join(', ')} | |`,
    `| rolling restart of 3 nodes under 64 connections (wrk → HAProxy) | ${command.state ?? rolled.stderr.trim()} | ${requests} requests, ${non2xx} non-2xx, socket errors: ${socketErrors} | 0 failed |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  haproxy?.kill('SIGTERM');
  for (const name of [...procs.keys()]) await killNode(name).catch(() => undefined);
  await coordinator.close();
  await etcd.stop();
  await rm(dir, { recursive: true, force: true });
}
