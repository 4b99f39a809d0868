#!/usr/bin/env node
// bench/failover — time from killing the primary to the first successful write on the new
// primary, and acknowledged writes missing afterwards, over five runs; plus the window of
// refused writes during a planned switchover. Real MariaDB servers (three on loopback),
// the real manager with its default probe timing, and a writer going through the
// platform's store (FollowingPool following the primary published in coord).
//
// The pause (SIGSTOP of the primary for --fault-ms, then SIGCONT) and partition (the primary's
// link down in a network namespace for --fault-ms, then up; needs root) cases measure the first
// acknowledged write after the fault and the acknowledged writes missing on the new primary.
//
// Run after `npm run build`:  node bench/failover/run.mjs [--runs 5] [--faults kill,pause,partition] [--fault-runs 3]
import { hostname, cpus } from 'node:os';
import { createLogger, loadConfig, waitFor } from '@insitu/core';
import { createMemoryCoordinator } from '@insitu/coord';
import { DbManager, DbManagerConfigSchema, followPrimary, resolveSecrets } from '@insitu/dbmanager';
import { isUniqueViolation, openStore } from '@insitu/store';
import { createTestNetwork, startMariaDbCluster } from '@insitu/test-helpers';
import { benchArgs } from '../args.mjs';

const values = benchArgs(
  'node bench/failover/run.mjs [--runs N] [--fault-runs N] [--fault-ms MS] [--no-pause] [--no-partition]',
  {
    runs: { default: '5', kind: 'count', help: 'primary kills timed' },
    'fault-runs': { default: '3', kind: 'count', help: 'runs of each of the pause and partition faults' },
    'fault-ms': { default: '20000', kind: 'count', help: 'how long the primary stays paused or cut off' },
    'no-pause': { kind: 'switch', help: 'skip the pause (SIGSTOP) case' },
    'no-partition': { kind: 'switch', help: 'skip the partition case (it needs root for network namespaces)' },
  },
);
const RUNS = Number(values.runs);
const FAULT_RUNS = Number(values['fault-runs']);
const FAULT_MS = Number(values['fault-ms']);
const APP = { user: 'app', password: 'bench-app-password' };

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const median = (xs) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const max = (xs) => Math.max(...xs);

async function setup({ netns = false } = {}) {
  const network = netns ? await createTestNetwork({ nodes: 3 }) : undefined;
  const cluster = await startMariaDbCluster({
    memberOptions: (i) => ({
      extraConfig: {
        read_only: 'ON',
        rpl_semi_sync_slave_enabled: 'ON',
        rpl_semi_sync_master_wait_point: 'AFTER_SYNC',
      },
      ...(network ? { netns: network.nodes[i].netns, bindAddress: network.nodes[i].address } : {}),
    }),
  });
  await Promise.all(
    cluster.members.map((m) =>
      m.query(
        `SET SESSION sql_log_bin = 0; CREATE USER '${APP.user}'@'%' IDENTIFIED BY '${APP.password}'; GRANT ALL ON ${m.database}.* TO '${APP.user}'@'%'`,
      ),
    ),
  );
  const config = loadConfig(DbManagerConfigSchema, {
    base: {
      members: cluster.members.map((m, i) => ({ name: `db${i + 1}`, host: m.host, port: m.port })),
      credentials: { user: 'root', password: cluster.members[0].password },
      replication: { user: cluster.replicationUser, password: cluster.replicationPassword },
      // Default probe timing (1 s interval, 1 s connect timeout, 2 failed probes, 250 ms while suspect).
      failover: { cooldownMs: 0 },
      log: { level: 'silent' },
    },
  });
  const coordinator = createMemoryCoordinator();
  const manager = new DbManager({
    config,
    secrets: resolveSecrets(config, {}),
    coordinator,
    logger: createLogger({ level: 'silent' }),
  });
  await manager.start();
  await waitFor(() => manager.status().primary === 'db1' && manager.status().members[0].readOnly === false, {
    timeoutMs: 30_000,
    what: 'db1 writable',
  });
  await waitFor(() => manager.status().members[0].semiSync?.masterClients >= 1, {
    timeoutMs: 30_000,
    what: 'semi-sync replica connected',
  });
  const follower = await followPrimary(coordinator, 'platform');
  const first = cluster.members[0];
  // Seen twice in ~30 runs: the first migration's connection closed by the server right after
  // the replicas' IO threads restarted for semi-sync (PROTOCOL_CONNECTION_LOST); a retry opens it.
  const open = () =>
    openStore({
      kind: 'mysql',
      host: first.host,
      port: first.port,
      user: APP.user,
      password: APP.password,
      database: first.database,
      primary: follower,
      poolSize: 4,
    });
  const store = await open()
    .catch(() => open())
    .catch(() => open());
  return {
    cluster,
    network,
    manager,
    store,
    async close() {
      await store.close();
      await follower.close();
      await manager.stop();
      await coordinator.close();
      await cluster.stop();
      await network?.destroy();
    },
  };
}

function startWriter(store, prefix) {
  const acked = [];
  const done = [];
  let running = true;
  let firstFailureAt;
  let lastError;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const name = `${prefix}-${i}`;
      for (;;) {
        const issuedAt = performance.now();
        try {
          await store.orgs.create({ name, displayName: name, status: 'active' });
          acked.push(name);
          done.push({ issuedAt, doneAt: performance.now() });
          break;
        } catch (error) {
          if (isUniqueViolation(error)) {
            // A retry of a write whose answer was lost in the failover: it is there.
            acked.push(name);
            done.push({ issuedAt, doneAt: performance.now() });
            break;
          }
          firstFailureAt ??= performance.now();
          lastError = error?.message;
          if (!running) return;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }
  })();
  return {
    acked,
    done,
    get lastError() {
      return lastError;
    },
    get firstFailureAt() {
      return firstFailureAt;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

function gaps(done, from, to) {
  const inWindow = done.filter((d) => d.doneAt >= from && d.doneAt <= to).map((d) => d.doneAt);
  const out = [];
  for (let i = 1; i < inWindow.length; i++) out.push(inWindow[i] - inWindow[i - 1]);
  return out;
}

async function missingOn(member, acked, prefix) {
  const rows = new Set((await member.query(`SELECT name FROM orgs WHERE name LIKE '${prefix}-%'`)).split('\n'));
  return acked.filter((n) => !rows.has(n)).length;
}

const failovers = [];
const steady = [];
let switchover;
for (let run = 1; run <= RUNS; run++) {
  const env = await setup();
  try {
    const prefix = `r${run}`;
    const writer = startWriter(env.store, prefix);
    await waitFor(() => writer.acked.length >= 300, { timeoutMs: 60_000, what: 'steady writes' });
    const steadyStart = performance.now();
    await new Promise((r) => setTimeout(r, 1500));
    const killAt = performance.now();
    const latencies = writer.done
      .filter((d) => d.doneAt >= steadyStart && d.doneAt < killAt)
      .map((d) => d.doneAt - d.issuedAt);
    steady.push({
      medianMs: median(latencies),
      maxGapMs: max(gaps(writer.done, steadyStart, killAt)),
      writesPerS: latencies.length / ((killAt - steadyStart) / 1000),
    });
    await env.cluster.members[0].kill();
    const first = await waitFor(() => writer.done.find((d) => d.issuedAt >= killAt), {
      timeoutMs: 60_000,
      what: 'a write after the kill',
    }).catch((error) => {
      console.error(
        `run ${run} failed: ${error.message}; writer: ${writer.acked.length} acknowledged, last error: ${writer.lastError}`,
      );
      for (const e of env.manager.events()) console.error(`  ${e.at} ${e.type}: ${e.message}`);
      throw error;
    });
    const count = writer.acked.length;
    await waitFor(() => writer.acked.length >= count + 100, { timeoutMs: 30_000, what: 'writes on the new primary' });
    await writer.stop();
    const primary = env.manager.status().primary;
    const newPrimary = env.cluster.members[Number(primary.slice(2)) - 1];
    const missing = await missingOn(newPrimary, writer.acked, prefix);
    const failover = env.manager.events().find((e) => e.type === 'failover');
    failovers.push({
      run,
      ms: first.doneAt - killAt,
      missing,
      acked: writer.acked.length,
      to: primary,
      writableAfterMs: failover?.details.writableAfterMs,
    });
    console.log(
      `run ${run}: kill → first write on ${primary}: ${(first.doneAt - killAt).toFixed(0)} ms (manager: writable ${failover?.details.writableAfterMs} ms after deciding); acknowledged ${writer.acked.length}, missing ${missing}`,
    );

    if (run === RUNS) {
      // Planned switchover on the healthy pair that is left: refused-write window.
      await waitFor(
        () =>
          env.manager.status().members.filter((m) => m.role === 'replica' && m.replication?.io === 'Yes').length >= 1,
        { timeoutMs: 30_000, what: 'a healthy replica' },
      );
      const target = env.manager
        .status()
        .members.find((m) => m.role === 'replica' && m.replication?.io === 'Yes' && m.replication?.sql === 'Yes').name;
      const sw = startWriter(env.store, `${prefix}s`);
      await waitFor(() => sw.acked.length >= 300, { timeoutMs: 60_000, what: 'writes before the switchover' });
      const before = performance.now();
      const result = await env.manager.switchover(target);
      const after = performance.now();
      const c = sw.acked.length;
      await waitFor(() => sw.acked.length >= c + 100, { timeoutMs: 30_000, what: 'writes after the switchover' });
      const end = performance.now();
      await sw.stop();
      const targetMember = env.cluster.members[Number(target.slice(2)) - 1];
      const window = max(gaps(sw.done, before - 1000, end));
      switchover = {
        to: target,
        readOnlyMs: result.readOnlyMs,
        callMs: after - before,
        refusedWindowMs: window,
        missing: await missingOn(targetMember, sw.acked, `${prefix}s`),
      };
      console.log(
        `switchover → ${target}: primary read-only for ${result.readOnlyMs} ms; longest gap between acknowledged writes ${window.toFixed(0)} ms; missing ${switchover.missing}`,
      );
    }
  } finally {
    await env.close();
  }
}

// Pause and partition: the primary is silent (not dead) for FAULT_MS, then returns.
const faults = [];
const kinds = [
  ...(values['no-pause'] ? [] : ['pause']),
  ...(values['no-partition'] || process.getuid?.() !== 0 ? [] : ['partition']),
];
for (const kind of kinds) {
  for (let run = 1; run <= FAULT_RUNS; run++) {
    const env = await setup({ netns: kind === 'partition' });
    try {
      const prefix = `${kind}${run}`;
      const writer = startWriter(env.store, prefix);
      await waitFor(() => writer.acked.length >= 300, { timeoutMs: 60_000, what: 'steady writes' });
      const old = env.cluster.members[0];
      // Timed from when the fault is in place (`ip link set down` takes a few ms; writes before it still reach the replicas).
      if (kind === 'pause') await old.kill('SIGSTOP');
      else await env.network.linkDown(0);
      const faultAt = performance.now();
      const first = await waitFor(() => writer.done.find((d) => d.issuedAt >= faultAt), {
        timeoutMs: 60_000,
        what: `a write after the ${kind}`,
      });
      await new Promise((r) => setTimeout(r, Math.max(0, faultAt + FAULT_MS - performance.now())));
      const healAt = performance.now();
      if (kind === 'pause') await old.kill('SIGCONT');
      else await env.network.linkUp(0);
      await waitFor(async () => (await old.query('SELECT @@global.read_only')).trim() === '1', {
        timeoutMs: 30_000,
        what: 'the old primary fenced',
      });
      const fencedMs = performance.now() - healAt;
      const count = writer.acked.length;
      await waitFor(() => writer.acked.length >= count + 100, { timeoutMs: 30_000, what: 'writes on the new primary' });
      await writer.stop();
      const primary = env.manager.status().primary;
      const missing = await missingOn(env.cluster.members[Number(primary.slice(2)) - 1], writer.acked, prefix);
      const failover = env.manager.events().find((e) => e.type === 'failover');
      faults.push({
        kind,
        run,
        ms: first.doneAt - faultAt,
        missing,
        acked: writer.acked.length,
        fencedMs,
        failoverStartedMs: failover ? Date.parse(failover.at) : undefined,
      });
      console.log(
        `${kind} run ${run}: fault → first write on ${primary}: ${(first.doneAt - faultAt).toFixed(0)} ms (manager: writable ${failover?.details.writableAfterMs} ms after deciding); ` +
          `old primary read-only ${fencedMs.toFixed(0)} ms after it returned (upper bound: the check itself polls); acknowledged ${writer.acked.length}, missing ${missing}`,
      );
    } finally {
      await resumeOld(env);
      await env.close();
    }
  }
}

async function resumeOld(env) {
  await env.cluster.members[0].kill('SIGCONT').catch(() => undefined);
}

const times = failovers.map((f) => f.ms);
const baselineGap = median(steady.map((s) => s.maxGapMs));
console.log('');
console.log(`machine: ${hostname()}, ${cpus().length} cores, Node ${process.version}`);
console.log(
  `steady state (baseline, same runs): ${median(steady.map((s) => s.writesPerS)).toFixed(0)} writes/s, median commit ${median(steady.map((s) => s.medianMs)).toFixed(2)} ms, longest gap between writes ${baselineGap.toFixed(0)} ms`,
);
console.log(
  `failover (kill -9 of the primary → first write acknowledged by the new primary), ${RUNS} runs: median ${median(times).toFixed(0)} ms, max ${max(times).toFixed(0)} ms (${(median(times) / baselineGap).toFixed(0)}x the steady-state longest gap)`,
);
console.log(
  `acknowledged writes missing after failover: ${failovers.reduce((sum, f) => sum + f.missing, 0)} of ${failovers.reduce((sum, f) => sum + f.acked, 0)}`,
);
if (switchover) {
  console.log(
    `planned switchover: writes refused for ${switchover.refusedWindowMs.toFixed(0)} ms (primary read-only ${switchover.readOnlyMs} ms), missing ${switchover.missing}`,
  );
}
for (const kind of kinds) {
  const runs = faults.filter((f) => f.kind === kind);
  console.log(
    `${kind} (${FAULT_MS} ms) → first write acknowledged by the new primary, ${runs.length} runs: median ${median(runs.map((f) => f.ms)).toFixed(0)} ms, max ${max(runs.map((f) => f.ms)).toFixed(0)} ms; ` +
      `acknowledged writes missing: ${runs.reduce((sum, f) => sum + f.missing, 0)} of ${runs.reduce((sum, f) => sum + f.acked, 0)}`,
  );
}
process.exit(0);
