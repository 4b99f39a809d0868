#!/usr/bin/env node
// bench/invoke: the cost of calling a data service. One run, one machine, one small JSON
// answer from one application instance (sandboxed by the agent), reached:
//   (a) directly on the instance's Unix socket,
//   (b) through the platform: gateway (key auth, grant, rate limit, quota, metering,
//       audit) + tunnel + agent + sandbox, with the real `insitu server` and `insitu agent`,
//   (c) through the bare tunnel from bench/tunnel (no gateway) to the same socket.
// Prints requests/s and p50/p99 at 1 and 64 callers, the ratios (b)/(c) and (b)/(a), and
// the p99 that (b) adds over (a) at one caller. After `npm run build`:
//   node bench/invoke/run.mjs [--seconds 5] [--log-level warn]
import { spawn } from 'node:child_process';
import { appendFileSync, readdirSync, rmSync, statSync, mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { canonicalTarball } from '@insitu/agent';
import { benchArgs } from '../args.mjs';
import { load } from '../load.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const INSITU = join(root, 'packages/cli/bin/insitu.js');
const values = benchArgs(
  'node bench/invoke/run.mjs [--seconds N] [--log-level LEVEL] [--audit-flush-ms N] [--work-connections N] [--keep]',
  {
    seconds: { default: '5', kind: 'count', help: 'seconds of load per cell' },
    'log-level': { default: 'warn', kind: 'level', help: "the platform server's log level" },
    'audit-flush-ms': {
      kind: 'count',
      help: "how often the server writes its metering and audit batch (default: the server's own)",
    },
    'work-connections': {
      default: '0',
      kind: 'natural',
      help: "the agent's tunnel.workConnections (0: every call over HTTP/2 streams)",
    },
    keep: {
      kind: 'switch',
      help: 'leave everything running after set-up and print how to reach each path (Ctrl-C ends)',
    },
  },
);
const SECONDS = Number(values.seconds);
// BENCH_PROFILE_DIR=dir: write CPU profiles of the platform and agent processes there.
// BENCH_PROFILE_PREFIX: put before the profiles' names (two set-ups writing to one directory).
const PROFILE = process.env.BENCH_PROFILE_DIR;
const profiled = (name) =>
  PROFILE
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${PROFILE}`,
        `--cpu-prof-name=${process.env.BENCH_PROFILE_PREFIX ?? ''}${name}.cpuprofile`,
      ]
    : [];
const LOG_LEVEL = values['log-level'];
// How often the server writes its metering and audit batch (ms); default: the server's own.
const AUDIT_FLUSH_MS = values['audit-flush-ms'];
const children = [];
const tmp = mkdtempSync(join(os.tmpdir(), 'insitu-bench-invoke-'));

function cleanup() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function start(argv, env = {}) {
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  let output = '';
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => (output += `${line}\n`));
  child.stderr.on('data', (c) => (output += c.toString()));
  const waitFor = (pattern, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      const deadline = setTimeout(
        () => reject(new Error(`timed out waiting for ${pattern}: ${output.slice(-2000)}`)),
        timeoutMs,
      );
      const check = () => {
        const match = output.match(pattern);
        if (match) {
          clearTimeout(deadline);
          lines.off('line', check);
          resolve(match);
        }
      };
      lines.on('line', check);
      child.stderr.on('data', check);
      child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}: ${output.slice(-2000)}`)));
      check();
    });
  return { child, waitFor, output: () => output };
}

async function rest(url, method, path, token, body, contentType = 'application/json') {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': contentType } : {}),
    },
    ...(body !== undefined ? { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

function findSocket(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (!info) continue;
    if (info.isSocket() && name === 'app.sock') return path;
    if (info.isDirectory()) {
      const found = findSocket(path);
      if (found) return found;
    }
  }
  return undefined;
}

async function main() {
  // The platform and a provider whose agent runs the application in its sandbox.
  const platformDir = join(tmp, 'platform');
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const chosen = probe.address().port;
      probe.close(() => resolve(chosen));
    });
  });
  const init = start([INSITU, 'init', '--data-dir', platformDir, '--port', String(port), '--json']);
  const { admin } = JSON.parse((await init.waitFor(/^\{.*\}$/m))[0]);
  if (AUDIT_FLUSH_MS)
    appendFileSync(join(platformDir, 'config.yaml'), `audit:\n  flushIntervalMs: ${Number(AUDIT_FLUSH_MS)}\n`);
  const platform = start([
    ...profiled('platform'),
    INSITU,
    'server',
    '--data-dir',
    platformDir,
    '--log-level',
    LOG_LEVEL,
  ]);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {
      if (i > 600) throw new Error(`the platform did not start: ${platform.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const token = (await rest(url, 'POST', '/api/v1/sessions', undefined, admin)).token;
  const org = (await rest(url, 'POST', '/api/v1/orgs', token, { name: 'bench' })).id;
  const provider = (await rest(url, 'POST', '/api/v1/providers', token, { orgId: org, name: 'bench-data' })).id;
  const enrol = (await rest(url, 'POST', '/api/v1/tokens', token, { providerId: provider })).token;
  const db = new BetterSqlite3(join(tmp, 'bench.db'));
  db.exec('CREATE TABLE numbers (n INTEGER PRIMARY KEY); INSERT INTO numbers VALUES (1), (2), (3);');
  db.close();
  writeFileSync(
    join(tmp, 'agent.yaml'),
    `sources:\n  - name: bench\n    kind: sqlite\n    path: ./bench.db\ntunnel: { workConnections: ${Number(values['work-connections'])} }\n`,
  );
  const agentTmp = join(tmp, 'agent-tmp');
  mkdirSync(agentTmp);
  const agent = start(
    [
      ...profiled('agent'),
      INSITU,
      'agent',
      '--platform',
      url,
      '--token',
      enrol,
      '--config',
      join(tmp, 'agent.yaml'),
      '--data-dir',
      join(tmp, 'agent'),
      '--log-level',
      'warn',
    ],
    { TMPDIR: agentTmp },
  );
  for (const deadline = Date.now() + 60_000; ;) {
    const found = await rest(url, 'GET', '/api/v1/datasets?provider=bench-data', token);
    if (found.items.length > 0) break;
    if (Date.now() > deadline) throw new Error(`the agent did not publish its catalog within 60 s: ${agent.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const appDir = join(tmp, 'app');
  mkdirSync(appDir);
  writeFileSync(
    join(appDir, 'insitu.json'),
    JSON.stringify({
      name: 'small',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      datasets: [{ provider: 'bench-data', dataset: 'numbers' }],
      endpoints: [{ method: 'GET', path: '/small' }],
    }),
  );
  writeFileSync(
    join(appDir, 'index.js'),
    "import { serve } from '@insitu/sdk';\nconst answer = { city: 'Lyon', stores: 3, revenue: 20182.53, currency: 'EUR', ok: true };\nserve({ 'GET /small': () => answer });\n",
  );
  const app = (await rest(url, 'POST', '/api/v1/apps', token, { orgId: org, name: 'small' })).id;
  const version = (
    await rest(url, 'POST', `/api/v1/apps/${app}/versions`, token, await canonicalTarball(appDir), 'application/x-tar')
  ).id;
  const [approval] = (await rest(url, 'GET', '/api/v1/approvals?state=pending', token)).items;
  await rest(url, 'POST', `/api/v1/approvals/${approval.id}/approve`, token, {});
  const deployment = (
    await rest(url, 'POST', '/api/v1/deployments', token, { versionId: version, providerId: provider, replicas: 1 })
  ).id;
  await rest(url, 'POST', '/api/v1/services', token, {
    name: 'bench',
    appId: app,
    ratePerSecond: 1_000_000,
    burst: 1_000_000,
    dailyQuota: 1_000_000_000,
  });
  const key = (await rest(url, 'POST', '/api/v1/keys', token, { orgId: org, name: 'bench', services: ['bench'] })).key;
  const base = new URL(url);
  for (let i = 0; i < 400; i++) {
    const response = await fetch(`${url}/s/bench/small`, { headers: { authorization: `Bearer ${key}` } });
    await response.body?.cancel();
    if (response.ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const socketPath = findSocket(agentTmp);
  if (!socketPath) throw new Error(`no app.sock under ${agentTmp}`);
  void deployment;

  // (c): the bare tunnel of bench/tunnel to the same instance.
  const bare = start([join(root, 'bench/tunnel/platform.mjs')]);
  const { tunnelPort, frontPort } = JSON.parse((await bare.waitFor(/^\{.*\}$/m))[0]);
  const bareAgent = start([join(here, '../tunnel/agent.mjs'), `http://127.0.0.1:${tunnelPort}`, socketPath]);
  await bareAgent.waitFor(/ready/);
  await new Promise((r) => setTimeout(r, 300));

  const paths = {
    '(a) direct to the instance': { target: { socketPath }, path: '/small', headers: {} },
    '(b) gateway + tunnel + agent': {
      target: { host: '127.0.0.1', port: Number(base.port) },
      path: '/s/bench/small',
      headers: { authorization: `Bearer ${key}` },
    },
    '(c) bare tunnel': { target: { host: '127.0.0.1', port: frontPort }, path: '/small', headers: {} },
  };
  if (values.keep) {
    // Leave everything up for poking: print how to reach each path, wait for Ctrl-C.
    console.log(
      JSON.stringify({ socketPath, gateway: `${url}/s/bench/small`, key, bare: `http://127.0.0.1:${frontPort}/small` }),
    );
    await new Promise(() => undefined);
  }
  const results = {};
  for (const [name, p] of Object.entries(paths)) {
    results[name] = {};
    for (const clients of [1, 64]) {
      results[name][clients] = await load(p.target, p.path, p.headers, clients, SECONDS);
      process.stderr.write(`${name}, ${clients} callers: ${Math.round(results[name][clients].rps)} req/s\n`);
    }
  }
  const fmt = (n, d = 0) => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  console.log(
    `\nbench/invoke — small JSON answer, ${SECONDS} s per cell, server log level ${LOG_LEVEL}${AUDIT_FLUSH_MS ? `, audit flush every ${AUDIT_FLUSH_MS} ms` : ''}; ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}, node ${process.version}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${new Date().toISOString()}`,
  );
  console.log('| path | 1 caller req/s | p50 / p99 ms | 64 callers req/s | p50 / p99 ms |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `| ${name} | ${fmt(r[1].rps)} | ${fmt(r[1].p50, 2)} / ${fmt(r[1].p99, 2)} | ${fmt(r[64].rps)} | ${fmt(r[64].p50, 2)} / ${fmt(r[64].p99, 2)} |`,
    );
  }
  const a = results['(a) direct to the instance'];
  const b = results['(b) gateway + tunnel + agent'];
  const c = results['(c) bare tunnel'];
  console.log(
    `\n(b)/(c) throughput: ${(b[1].rps / c[1].rps).toFixed(2)} at 1 caller, ${(b[64].rps / c[64].rps).toFixed(2)} at 64 (aim ≥ 0.8: the gateway's own work under 20%)`,
  );
  console.log(
    `(b)/(a) throughput: ${(b[1].rps / a[1].rps).toFixed(2)} at 1 caller, ${(b[64].rps / a[64].rps).toFixed(2)} at 64`,
  );
  console.log(
    `p99 added by (b) over (a) at 1 caller: ${fmt(b[1].p99 - a[1].p99, 2)} ms (aim < 1 ms); p50 added: ${fmt(b[1].p50 - a[1].p50, 2)} ms`,
  );
  if (PROFILE) {
    // A clean exit writes the profiles.
    for (const child of [platform.child, agent.child]) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
