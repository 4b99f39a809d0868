#!/usr/bin/env node
// bench/callpath: one request path next to its baselines, same app, same load generator
// (wrk, in C), same run. 1 KB answers at 1 and 64 connections:
//   direct        wrk → Node http origin (bench/tunnel/app.mjs)
//   haproxy       wrk → HAProxy (plain HTTP reverse proxy, the cost of one proxy hop in C) → origin
//   ssh -R        wrk → sshd → ssh → origin (a private sshd on a free port, temp keys)
//   tunnel        wrk → bench/tunnel platform.mjs (production TunnelServer) → HTTP/2 session → agent.mjs
//                 (production TunnelClient + createHttpProxyHandler) → origin
//   tunnel+work   the same processes with work connections on (agent.mjs BENCH_WORK_CONNECTIONS=128): the
//                 platform speaks HTTP/1.1 keep-alive over connections the agent dialled, the agent pipes bytes
//   service call  wrk → `insitu server` gateway → tunnel → `insitu agent` → sandboxed app (bench/invoke
//                 set-up, its small JSON answer — not 1 KB — and its own app process), the agent with
//                 tunnel.workConnections 0: every call over HTTP/2 streams
//   service call + work  the same with tunnel.workConnections 64 (the default): calls over work connections
//                 (CPU of the server, the agent and the app shown apart for both)
// For each: req/s, p50/p99 latency (wrk --latency), and CPU time per request of the path's
// own processes (user+sys of every process of the path, from /proc/PID/stat, before and
// after each load run; the origin's own CPU is shown apart). Median of --runs runs.
// Run after `npm run build`:  node bench/callpath/run.mjs [--seconds 10] [--runs 3] [--skip-service]
//   [--only direct,haproxy,ssh,tunnel,tunnel+work,service,service+work] (the paths to measure; default all)
// Needs: wrk, haproxy (Debian), openssh-server + openssh-client.
// BENCH_PROFILE_DIR=dir writes CPU profiles of the bare tunnel's platform and agent there.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';
import { sshReversePlan } from '../ssh-reverse.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
/** The paths, by the name `--only` takes, with the name the table shows. */
const PATHS = {
  direct: 'direct',
  haproxy: 'haproxy',
  ssh: 'ssh -R',
  tunnel: 'tunnel',
  'tunnel+work': 'tunnel+work',
  service: 'service call',
  'service+work': 'service call + work',
};
const values = benchArgs('node bench/callpath/run.mjs [--seconds N] [--runs N] [--skip-service] [--only NAME,...]', {
  seconds: { default: '10', kind: 'count', help: 'seconds of load per cell' },
  runs: { default: '3', kind: 'count', help: 'runs per cell; the table shows medians' },
  'skip-service': { kind: 'switch', help: 'leave out the full service calls (their set-up takes ~30 s each)' },
  only: {
    kind: 'list',
    help: `only these paths, comma-separated: ${Object.keys(PATHS).join(', ')}`,
  },
});
const SECONDS = Number(values.seconds);
const ONLY = values.only === undefined ? Object.keys(PATHS) : String(values.only).split(',');
for (const name of ONLY) {
  if (!(name in PATHS)) {
    process.stderr.write(`bench/callpath: --only takes ${Object.keys(PATHS).join(', ')}; not "${name}"\n`);
    process.exit(2);
  }
}
const wanted = (name) => ONLY.includes(name) && !(values['skip-service'] && name.startsWith('service'));
const RUNS = Number(values.runs);
const PROFILE = process.env.BENCH_PROFILE_DIR;
const profiled = (name) =>
  PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

for (const [binary, debianPackage] of [
  ['wrk', 'wrk'],
  ['haproxy', 'haproxy'],
  ['/usr/sbin/sshd', 'openssh-server'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
]) {
  if (spawnSync(binary, ['-v']).error) {
    process.stderr.write(
      `bench/callpath: ${binary} is missing; install it with: apt-get install -y ${debianPackage}\n`,
    );
    process.exit(2);
  }
}

const children = [];
const tmp = mkdtempSync(join(os.tmpdir(), 'insitu-bench-callpath-'));
function cleanup() {
  // Kill each child's whole tree (sshd's sessions, the sandboxed app) by the PIDs we started.
  for (const child of children) {
    if (child.exitCode !== null) continue;
    for (const pid of tree(child.pid).reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function start(command, argv, env = {}) {
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  let output = '';
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => (output += `${line}\n`));
  child.stderr.on('data', (c) => (output += c.toString()));
  const waitFor = (pattern, timeoutMs = 120_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for ${pattern} from ${command}: ${output.slice(-2000)}`)),
        timeoutMs,
      );
      const check = () => {
        const match = output.match(pattern);
        if (!match) return;
        clearTimeout(timer);
        lines.off('line', check);
        child.stderr.off('data', check);
        resolve(match);
      };
      lines.on('line', check);
      child.stderr.on('data', check);
      child.once('exit', (code) =>
        reject(new Error(`${command} ${argv.join(' ')} exited with ${code}: ${output.slice(-2000)}`)),
      );
      check();
    });
  return { child, waitFor, output: () => output };
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(check, what, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function answers(port, path, headers = {}) {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** pid and every descendant, parents first (read from /proc). */
function tree(pid) {
  const parentOf = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parentOf) if (parent === out[i]) out.push(child);
  return out;
}

/** user+sys CPU (µs) of each process of the trees rooted at pids (or of the pids a function lists), by pid. */
function cpuOf(pids) {
  const out = new Map();
  for (const pid of typeof pids === 'function' ? pids() : pids.flatMap((p) => tree(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, (Number(fields[11]) + Number(fields[12])) * TICK_US);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** CPU used between two snapshots by processes present in the second (new ones count from 0). */
function cpuDelta(before, after) {
  let sum = 0;
  for (const [pid, us] of after) sum += us - (before.get(pid) ?? 0);
  return sum;
}

function toMs(value, unit) {
  return Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit];
}

function wrk(url, connections, seconds, headers = {}) {
  const args = ['-t', connections === 1 ? '1' : '2', '-c', String(connections), '-d', `${seconds}s`, '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('close', (code) => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      const p50 = /\s50%\s+([\d.]+)(us|ms|s|m)\b/.exec(out);
      const p99 = /\s99%\s+([\d.]+)(us|ms|s|m)\b/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = /Socket errors: (.*)/.exec(out)?.[1];
      if (code !== 0 || !rps || !p50 || !p99) return reject(new Error(`wrk failed (${code}): ${out}`));
      resolve({ rps, requests, p50: toMs(p50[1], p50[2]), p99: toMs(p99[1], p99[2]), non2xx, errors });
    });
  });
}

async function startSshReverse(appPort) {
  const sshdPort = await freePort();
  const remotePort = await freePort();
  const plan = sshReversePlan(tmp, { sshdPort, remotePort, appPort });
  const sshd = start(...plan.sshd);
  await waitFor(() => answersTcp(sshdPort), 'sshd');
  const ssh = start(...plan.ssh);
  await waitFor(() => answers(remotePort, '/1k'), 'ssh -R');
  return { port: remotePort, pids: [sshd.child.pid, ssh.child.pid] };
}

function answersTcp(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function startHaproxy(appPort) {
  const port = await freePort();
  writeFileSync(
    join(tmp, 'haproxy.cfg'),
    [
      'global',
      '  maxconn 4000',
      'defaults',
      '  mode http',
      '  option http-keep-alive',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      'frontend calls',
      `  bind 127.0.0.1:${port}`,
      '  default_backend origin',
      'backend origin',
      '  http-reuse always',
      `  server o1 127.0.0.1:${appPort}`,
      '',
    ].join('\n'),
  );
  const haproxy = start('haproxy', ['-db', '-f', join(tmp, 'haproxy.cfg')]);
  await waitFor(() => answers(port, '/1k'), 'HAProxy');
  return { port, pids: [haproxy.child.pid] };
}

async function startTunnel(appPort, workConnections = 0) {
  const suffix = workConnections > 0 ? '-work' : '';
  const platform = start(process.execPath, [
    ...profiled(`tunnel-platform${suffix}`),
    join(root, 'bench/tunnel/platform.mjs'),
  ]);
  const { tunnelPort, frontPort } = JSON.parse((await platform.waitFor(/^\{.*\}$/m))[0]);
  const agent = start(
    process.execPath,
    [
      ...profiled(`tunnel-agent${suffix}`),
      join(root, 'bench/tunnel/agent.mjs'),
      `http://127.0.0.1:${tunnelPort}`,
      String(appPort),
    ],
    { BENCH_WORK_CONNECTIONS: String(workConnections) },
  );
  await agent.waitFor(/ready/);
  await waitFor(() => answers(frontPort, '/1k'), 'the bare tunnel');
  return { port: frontPort, pids: [platform.child.pid, agent.child.pid], platform, agent };
}

/** bench/invoke's set-up (real `insitu server` and `insitu agent`, one sandboxed app), left running. */
async function startService(workConnections) {
  const invoke = start(
    process.execPath,
    [
      join(root, 'bench/invoke/run.mjs'),
      '--keep',
      '--log-level',
      'warn',
      '--work-connections',
      String(workConnections),
    ],
    { BENCH_PROFILE_PREFIX: workConnections > 0 ? 'work-' : '' },
  );
  const info = JSON.parse((await invoke.waitFor(/^\{"socketPath".*\}$/m, 300_000))[0]);
  const gateway = new URL(info.gateway);
  // invoke's children: the server, the agent (whose tree holds the sandboxed app), the bare tunnel's pair.
  const kids = tree(invoke.child.pid).filter((pid) => {
    try {
      return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === invoke.child.pid;
    } catch {
      return false;
    }
  });
  const cmd = (pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const server = kids.find((pid) => cmd(pid).includes('server'));
  const agent = kids.find((pid) => cmd(pid).includes('agent'));
  if (!server || !agent) throw new Error('could not find the server and agent processes of bench/invoke');
  return {
    port: Number(gateway.port),
    path: gateway.pathname,
    headers: { authorization: `Bearer ${info.key}` },
    pids: [server, agent],
    server,
    agent,
    // CPU apart: the server's tree, the agent process alone, the app (the agent's descendants: bwrap, the instance).
    split: { server: () => tree(server), agent: () => [agent], app: () => tree(agent).slice(1) },
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n, d = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '—';

async function main() {
  const app = start(process.execPath, [join(root, 'bench/tunnel/app.mjs')]);
  const appPort = JSON.parse((await app.waitFor(/^\{.*\}$/m))[0]).port;
  const originPid = app.child.pid;
  const starters = {
    direct: async () => ({ port: appPort, pids: [] }),
    haproxy: () => startHaproxy(appPort),
    ssh: () => startSshReverse(appPort),
    tunnel: () => startTunnel(appPort),
    'tunnel+work': () => startTunnel(appPort, 128),
    service: () => startService(0),
    'service+work': () => startService(64),
  };
  const paths = [];
  for (const [id, name] of Object.entries(PATHS))
    if (wanted(id)) paths.push({ name, path: '/1k', headers: {}, ...(await starters[id]()) });
  // Warm-up of each path (JIT, connection pools).
  for (const p of paths) await wrk(`http://127.0.0.1:${p.port}${p.path}`, 64, 2, p.headers);

  const cells = new Map();
  for (let run = 0; run < RUNS; run++) {
    for (const p of paths) {
      for (const connections of [1, 64]) {
        const ownPids = p.pids.length > 0 ? p.pids : [originPid];
        const groups = { own: ownPids, origin: [originPid], ...(p.split ?? {}) };
        const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, cpuOf(pids)]));
        const result = await wrk(`http://127.0.0.1:${p.port}${p.path}`, connections, SECONDS, p.headers);
        const cpu = Object.fromEntries(
          Object.entries(groups).map(([k, pids]) => [k, cpuDelta(before[k], cpuOf(pids)) / result.requests]),
        );
        const key = `${p.name}|${connections}`;
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push({ ...result, cpu });
        process.stderr.write(
          `run ${run + 1}/${RUNS} ${p.name.padEnd(12)} c=${String(connections).padEnd(2)} ${fmt(result.rps).padStart(7)} req/s p50 ${fmt(result.p50, 2)} ms p99 ${fmt(result.p99, 2)} ms own CPU ${fmt(cpu.own)} µs/req${result.non2xx ? ` NON-2XX ${result.non2xx}` : ''}${result.errors ? ` socket errors: ${result.errors}` : ''}\n`,
        );
      }
    }
  }
  const m = (name, connections, pick) => median(cells.get(`${name}|${connections}`).map(pick));
  const lines = [
    `bench/callpath — ${new Date().toISOString()}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, wrk, ${SECONDS} s per cell, median of ${RUNS} runs, load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    '',
    '| path | 1 conn req/s | p50 ms | p99 ms | 64 conn req/s | p50 ms | p99 ms | path CPU µs/req at 64 (at 1) | origin CPU µs/req at 64 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const p of paths) {
    const split = p.split
      ? ` — ${Object.keys(p.split)
          .map((k) => `${k} ${fmt(m(p.name, 64, (c) => c.cpu[k]))}`)
          .join(', ')}`
      : '';
    const own =
      p.pids.length > 0
        ? `${fmt(m(p.name, 64, (c) => c.cpu.own))} (${fmt(m(p.name, 1, (c) => c.cpu.own))})${split}`
        : '— (the origin alone)';
    const origin = p.split ? 'in app' : fmt(m(p.name, 64, (c) => c.cpu.origin));
    lines.push(
      `| ${p.name} | ${fmt(m(p.name, 1, (c) => c.rps))} | ${fmt(
        m(p.name, 1, (c) => c.p50),
        2,
      )} | ${fmt(
        m(p.name, 1, (c) => c.p99),
        2,
      )} | ${fmt(m(p.name, 64, (c) => c.rps))} | ${fmt(
        m(p.name, 64, (c) => c.p50),
        2,
      )} | ${fmt(
        m(p.name, 64, (c) => c.p99),
        2,
      )} | ${own} | ${origin} |`,
    );
  }
  lines.push('', '| ratio (req/s) | 1 conn | 64 conn | path CPU per request at 64 |', '|---|---:|---:|---:|');
  const measured = new Set(paths.map((p) => p.name));
  for (const p of paths.filter((x) => x.pids.length > 0)) {
    const own = { 'tunnel+work': ['tunnel'], 'service call + work': ['service call', 'tunnel+work'] }[p.name] ?? [];
    for (const base of ['ssh -R', 'haproxy', ...own]) {
      if (base === p.name || !measured.has(base)) continue;
      lines.push(
        `| ${p.name} / ${base} | ${fmt(m(p.name, 1, (c) => c.rps) / m(base, 1, (c) => c.rps), 2)} | ${fmt(m(p.name, 64, (c) => c.rps) / m(base, 64, (c) => c.rps), 2)} | ${fmt(m(p.name, 64, (c) => c.cpu.own) / m(base, 64, (c) => c.cpu.own), 2)}× |`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (PROFILE) {
    // A clean exit writes the profiles.
    for (const p of paths.filter((x) => x.platform)) {
      for (const proc of [p.platform, p.agent]) {
        proc.child.kill('SIGINT');
        await new Promise((r) => proc.child.once('exit', r));
      }
    }
    // The service calls' server and agent are bench/invoke's children: stopped by pid, waited for by /proc.
    for (const p of paths.filter((x) => x.server)) {
      for (const pid of [p.server, p.agent]) {
        process.kill(pid, 'SIGTERM');
        await waitFor(() => !existsSync(`/proc/${pid}`), `process ${pid} to exit and write its profile`, 30_000);
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
