#!/usr/bin/env node
// bench/tunnel: the same small app reached (a) directly, (b) through the Insitu tunnel
// (front → platform → HTTP/2 session → agent → app) and (c) through OpenSSH `ssh -R`
// reverse forwarding. Prints requests/s and p50/p99 for 1 KB answers at 1 and 64
// clients, MB/s for one 1 GB transfer, the ratios (b)/(a) and (b)/(c), and the resident
// memory of a platform node holding 10,000 idle sessions (agents simulated in another
// process). Run after `npm run build`:  node bench/tunnel/run.mjs [--seconds 5] [--idle 10000]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';
import { sshReversePlan } from '../ssh-reverse.mjs';
import { get, load } from '../load.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const values = benchArgs('node bench/tunnel/run.mjs [--seconds N] [--idle N]', {
  seconds: { default: '5', kind: 'count', help: 'seconds of load per run' },
  idle: { default: '10000', kind: 'count', help: 'idle agent sessions for the memory figure' },
});
const SECONDS = Number(values.seconds);
const IDLE = Number(values.idle);
// The `ssh -R` baseline needs OpenSSH's server and client (Debian: openssh-server, openssh-client).
for (const [binary, debianPackage] of [
  ['/usr/sbin/sshd', 'openssh-server'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
]) {
  if (spawnSync(binary, ['-V']).error) {
    process.stderr.write(`bench/tunnel: ${binary} is missing; install it with: apt-get install -y ${debianPackage}\n`);
    process.exit(2);
  }
}
const children = [];
let tmp;

function cleanup() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function start(command, argv, opts = {}) {
  const child = spawn(command, argv, {
    stdio: ['ignore', 'pipe', 'inherit', ...(opts.ipc ? ['ipc'] : [])],
    ...opts.spawn,
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  const next = () =>
    new Promise((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`${command} ${argv.join(' ')} exited with ${code}`)));
    });
  return { child, next };
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitPort(port, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function bulk(port) {
  const agent = new http.Agent({ keepAlive: false });
  const t = performance.now();
  const bytes = await get(agent, { host: '127.0.0.1', port }, '/bulk');
  const seconds = (performance.now() - t) / 1000;
  if (bytes !== 1024 ** 3) throw new Error(`bulk transfer got ${bytes} bytes`);
  return bytes / 1024 / 1024 / seconds;
}

function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function startSshReverse(appPort) {
  tmp = mkdtempSync(join(tmpdir(), 'insitu-bench-ssh-'));
  const sshdPort = await freePort();
  const remotePort = await freePort();
  const plan = sshReversePlan(tmp, { sshdPort, remotePort, appPort });
  const sshd = start(...plan.sshd);
  sshd.child.stdout.resume();
  await waitPort(sshdPort);
  const ssh = start(...plan.ssh);
  ssh.child.stdout.resume();
  await waitPort(remotePort);
  return remotePort;
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

async function main() {
  const app = start(process.execPath, [join(here, 'app.mjs')]);
  const appPort = JSON.parse(await app.next()).port;
  const platform = start(process.execPath, [join(here, 'platform.mjs')]);
  const { tunnelPort, frontPort } = JSON.parse(await platform.next());
  const agent = start(process.execPath, [join(here, 'agent.mjs'), `http://127.0.0.1:${tunnelPort}`, String(appPort)]);
  await agent.next();
  // The session is routable once its hello arrived.
  for (let i = 0; i < 100; i++) {
    try {
      await get(new http.Agent(), { host: '127.0.0.1', port: frontPort }, '/1k');
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const sshPort = await startSshReverse(appPort);
  const paths = { direct: appPort, tunnel: frontPort, 'ssh -R': sshPort };
  const results = {};
  for (const [name, port] of Object.entries(paths)) {
    results[name] = {};
    for (const clients of [1, 64]) {
      results[name][clients] = await load({ host: '127.0.0.1', port }, '/1k', undefined, clients, SECONDS);
      process.stderr.write(`${name} ${clients} clients: ${fmt(results[name][clients].rps)} req/s\n`);
    }
    results[name].bulk = await bulk(port);
    process.stderr.write(`${name} 1 GB: ${fmt(results[name].bulk)} MB/s\n`);
  }
  for (const child of children) child.kill('SIGKILL');
  children.length = 0;

  // Idle sessions: a fresh platform node, its RSS before and after IDLE agents connect.
  const idlePlatform = start(process.execPath, [join(here, 'platform.mjs')], { ipc: true });
  const idlePorts = JSON.parse(await idlePlatform.next());
  await new Promise((r) => setTimeout(r, 1000));
  const rssBefore = rssOf(idlePlatform.child.pid);
  const sim = start(process.execPath, [join(here, 'idle-agents.mjs'), String(idlePorts.tunnelPort), String(IDLE)]);
  await sim.next();
  const ask = (message) =>
    new Promise((resolve) => {
      idlePlatform.child.once('message', resolve);
      idlePlatform.child.send(message);
    });
  for (let i = 0; i < 600 && (await ask('ready-sessions')) < IDLE; i++) await new Promise((r) => setTimeout(r, 100));
  const sessions = await ask('ready-sessions');
  await new Promise((r) => setTimeout(r, 2000));
  const rssAfter = rssOf(idlePlatform.child.pid);
  const perSession = (rssAfter - rssBefore) / sessions;

  const row = (name) => {
    const r = results[name];
    return `| ${name} | ${fmt(r[1].rps)} | ${fmt(r[1].p50, 3)} | ${fmt(r[1].p99, 3)} | ${fmt(r[64].rps)} | ${fmt(r[64].p50, 2)} | ${fmt(r[64].p99, 2)} | ${fmt(r.bulk)} |`;
  };
  const d = results.direct;
  const t = results.tunnel;
  const s = results['ssh -R'];
  const lines = [
    `Node ${process.version}, ${SECONDS} s per load run after 1 s of warm-up, load generator in the same machine.`,
    '',
    '| path | 1 client req/s | p50 ms | p99 ms | 64 clients req/s | p50 ms | p99 ms | 1 GB MB/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    row('direct'),
    row('tunnel'),
    row('ssh -R'),
    '',
    '| ratio | 1 client req/s | 64 clients req/s | 1 GB MB/s | p99 added at 1 client (ms) |',
    '|---|---:|---:|---:|---:|',
    `| tunnel / direct | ${fmt(t[1].rps / d[1].rps, 2)} | ${fmt(t[64].rps / d[64].rps, 2)} | ${fmt(t.bulk / d.bulk, 2)} | ${fmt(t[1].p99 - d[1].p99, 3)} |`,
    `| tunnel / ssh -R | ${fmt(t[1].rps / s[1].rps, 2)} | ${fmt(t[64].rps / s[64].rps, 2)} | ${fmt(t.bulk / s.bulk, 2)} | |`,
    '',
    `Idle sessions: ${fmt(sessions)} agent sessions held by one platform node: RSS ${fmt(rssBefore / 1048576)} MiB before, ${fmt(rssAfter / 1048576)} MiB after, **${fmt(perSession / 1024, 1)} KiB per session**.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
    cleanup();
    process.exit(1);
  },
);
