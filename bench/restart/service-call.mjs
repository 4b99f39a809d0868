#!/usr/bin/env node
// bench/restart/service-call — how soon a data service answers again after `insitu server` restarts
// (issue 14: "service calls fail for ~17 s after a platform restart"). Real binaries: `insitu up` sets up
// the demo (provider, agent, application deployed and published, a key) in a temp data dir and is stopped;
// then `insitu server` and `insitu agent` run as separate processes on that data dir. Each trial stops the
// server (SIGTERM), keeps it down --down-ms, starts it again on the same port, and times
//   listen: spawn → /healthz answers (process start-up, migrations, ...),
//   call:   /healthz answers → the first 200 of GET /s/sales-insights/cities (agent redial, session,
//           deployment status, routing), polled every 50 ms,
// printing each trial, the medians and the failures seen before the first 200.
// After `npm run build`:  node bench/restart/service-call.mjs [--trials 5] [--down-ms 2000] [--up-ms 3000]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';

const args = benchArgs('node bench/restart/service-call.mjs [--trials 5] [--down-ms 2000] [--up-ms 3000]', {
  trials: { default: '5', kind: 'count', help: 'restarts to time' },
  'down-ms': { default: '2000', kind: 'count', help: 'how long the server stays down per restart' },
  'up-ms': {
    default: '3000',
    kind: 'count',
    help: 'how long the server serves after the first 200 before the next restart',
  },
});
const CLI = fileURLToPath(new URL('../../packages/cli/bin/insitu.js', import.meta.url));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const children = new Set();

function start(argv) {
  const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.output = '';
  child.stdout.on('data', (d) => (child.output += d));
  child.stderr.on('data', (d) => (child.output = (child.output + d).slice(-20_000)));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
async function stop(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid, signal);
  await exited;
}
async function until(what, deadlineMs, check) {
  const t0 = Date.now();
  let last = '';
  for (;;) {
    const result = await check().catch((error) => ({ ok: false, why: error.message }));
    if (result.ok) return { ms: Date.now() - t0, last };
    last = result.why ?? last;
    if (Date.now() - t0 > deadlineMs) throw new Error(`${what}: none in ${deadlineMs} ms (last: ${last})`);
    await sleep(50);
  }
}
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const dir = mkdtempSync(join(os.tmpdir(), 'insitu-bench-restart-'));
const dataDir = join(dir, '.insitu');
try {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const up = start(['up', '--data-dir', dataDir, '--port', String(port), '--json', '--log-level', 'warn']);
  const report = await until('insitu up', 300_000, async () => {
    const line = up.output.split('\n').find((l) => l.startsWith('{'));
    if (up.exitCode !== null) throw new Error(`insitu up exited: ${up.output.slice(-2000)}`);
    return line ? { ok: true } : { ok: false, why: 'starting' };
  }).then(() => JSON.parse(up.output.split('\n').find((l) => l.startsWith('{'))));
  await stop(up, 'SIGINT');
  const key = report.key;
  const healthy = async () => ({ ok: (await fetch(`${url}/healthz`)).status === 200, why: 'not listening' });
  const served = async () => {
    const response = await fetch(`${url}/s/sales-insights/cities`, {
      headers: { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    const code = /"code":"([A-Z_]+)"/.exec(body)?.[1] ?? '';
    return { ok: response.status === 200, why: `${response.status} ${code}` };
  };
  const serverArgs = ['server', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn'];
  let server = start(serverArgs);
  await until('server listening', 120_000, healthy);
  const agent = start([
    'agent',
    '--platform',
    url,
    '--config',
    join(dataDir, 'demo', 'agent.yaml'),
    '--data-dir',
    join(dataDir, 'demo', 'agent'),
    '--log-level',
    'warn',
  ]);
  await until('the first call before any restart', 120_000, served);
  const listens = [];
  const calls = [];
  for (let i = 0; i < Number(args.trials); i++) {
    // Restarts a few seconds apart (a rolling restart, an operator repairing a crash): the agents were back.
    await sleep(Number(args['up-ms']));
    await stop(server);
    await sleep(Number(args['down-ms']));
    server = start(serverArgs);
    const listen = await until('server listening', 120_000, healthy);
    const call = await until('a 200 after the restart', 120_000, served);
    listens.push(listen.ms);
    calls.push(call.ms);
    console.log(
      `trial ${i + 1}: listening ${listen.ms} ms after spawn; first 200 ${call.ms} ms after listening (before: ${call.last || 'none'})`,
    );
  }
  console.log(
    `server down ${args['down-ms']} ms: median ${median(listens)} ms to listen, then median ${median(calls)} ms to the first 200 (${calls.join(', ')})`,
  );
  await stop(agent);
  await stop(server);
} finally {
  for (const child of children) await stop(child, 'SIGKILL').catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
