#!/usr/bin/env node
// bench/callpath/ab.mjs: the full service call of two builds side by side, in one run: this
// checkout and another built checkout (--base DIR, e.g. a `git worktree` of the commit
// before a change). Both bench/invoke set-ups (real `insitu server`, `insitu agent`,
// sandboxed app) stay up together and wrk (64 connections) alternates between them, so
// both see the same machine. For each cell: req/s, and CPU per request (user+sys from
// /proc/PID/stat) of the server, and of the agent with its app, raw and with the process's
// idle CPU taken out (its rate over the --idle seconds just before, times the load's
// duration): on a shared, loaded machine the raw figure at low req/s is mostly the fixed
// background work (timers, status reports) spread over few requests.
// Run after `npm run build` in both trees:
//   node bench/callpath/ab.mjs --base ../other-tree [--runs 5] [--seconds 10] [--idle 3] [--work-connections 64]
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const values = benchArgs('node bench/callpath/ab.mjs --base DIR [--runs N] [--seconds N] [--idle N]', {
  base: { kind: 'path', help: 'a built checkout of the other revision (its bench/invoke is used)' },
  runs: { default: '5', kind: 'count', help: 'alternating runs per build; the table shows medians' },
  seconds: { default: '10', kind: 'count', help: 'seconds of load per cell' },
  idle: { default: '3', kind: 'count', help: 'seconds of idle CPU measured before each cell' },
  'work-connections': {
    default: '64',
    kind: 'natural',
    help: 'tunnel.workConnections of both agents (0: HTTP/2 streams)',
  },
});
if (!values.base) {
  process.stderr.write('bench/callpath/ab.mjs: --base DIR is required\n');
  process.exit(2);
}
const SECONDS = Number(values.seconds);
const IDLE = Number(values.idle);
const RUNS = Number(values.runs);
const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);
const children = [];
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGINT');
});
process.on('SIGINT', () => process.exit(130));

function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** pid and every descendant. */
function tree(pid) {
  const parents = new Map();
  for (const name of readdirSync('/proc')) if (/^\d+$/.test(name)) parents.set(Number(name), parentOf(name));
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parents) if (parent === out[i]) out.push(child);
  return out;
}

/** user+sys CPU (µs) summed over pids. */
function cpu(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += (Number(fields[11]) + Number(fields[12])) * TICK_US;
    } catch {
      // exited meanwhile
    }
  }
  return sum;
}

async function setUp(tree_, label) {
  const invoke = spawn(
    process.execPath,
    [
      join(tree_, 'bench/invoke/run.mjs'),
      '--keep',
      '--log-level',
      'warn',
      '--work-connections',
      String(Number(values['work-connections'])),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(invoke);
  let output = '';
  invoke.stderr.on('data', (c) => (output += c));
  const info = await new Promise((resolve_, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: set-up timed out: ${output.slice(-2000)}`)), 600_000);
    createInterface({ input: invoke.stdout }).on('line', (line) => {
      output += `${line}\n`;
      if (line.startsWith('{"socketPath"')) {
        clearTimeout(timer);
        resolve_(JSON.parse(line));
      }
    });
    invoke.once('exit', (code) =>
      reject(new Error(`${label}: bench/invoke exited with ${code}: ${output.slice(-2000)}`)),
    );
  });
  const kids = tree(invoke.pid).filter((pid) => parentOf(pid) === invoke.pid);
  const cmd = (pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const server = kids.find((pid) => cmd(pid).includes('server'));
  const agent = kids.find((pid) => cmd(pid).includes('agent'));
  if (!server || !agent) throw new Error(`${label}: could not find the server and agent processes`);
  return { label, url: info.gateway, key: info.key, server: () => [server], agent: () => tree(agent) };
}

function wrk(url, key, seconds) {
  return new Promise((resolve_, reject) => {
    const child = spawn('wrk', ['-t', '2', '-c', '64', '-d', `${seconds}s`, '-H', `authorization: Bearer ${key}`, url]);
    children.push(child);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('close', (code) => {
      const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      if (code !== 0 || !requests) return reject(new Error(`wrk failed (${code}): ${out}`));
      resolve_({ requests, non2xx });
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cell(side) {
  const idleStart = { server: cpu(side.server()), agent: cpu(side.agent()), at: performance.now() };
  await sleep(IDLE * 1000);
  const before = { server: cpu(side.server()), agent: cpu(side.agent()), at: performance.now() };
  const idleRate = {
    server: (before.server - idleStart.server) / (before.at - idleStart.at),
    agent: (before.agent - idleStart.agent) / (before.at - idleStart.at),
  };
  const { requests, non2xx } = await wrk(side.url, side.key, SECONDS);
  const after = { server: cpu(side.server()), agent: cpu(side.agent()), at: performance.now() };
  const elapsed = after.at - before.at;
  const per = (k) => (after[k] - before[k]) / requests;
  const net = (k) => (after[k] - before[k] - idleRate[k] * elapsed) / requests;
  return {
    rps: requests / (elapsed / 1000),
    server: per('server'),
    serverNet: net('server'),
    agent: per('agent'),
    agentNet: net('agent'),
    non2xx,
    load: os.loadavg()[0],
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (n) => Math.round(n).toLocaleString('en-US');

async function main() {
  const sides = [await setUp(resolve(String(values.base)), 'base'), await setUp(root, 'this')];
  for (const side of sides) await wrk(side.url, side.key, 2); // warm-up
  const cells = { base: [], this: [] };
  for (let run = 0; run < RUNS; run++) {
    for (const side of run % 2 ? [...sides].reverse() : sides) {
      const c = await cell(side);
      cells[side.label].push(c);
      process.stderr.write(
        `run ${run + 1}/${RUNS} ${side.label.padEnd(4)} ${f(c.rps).padStart(6)} req/s server ${f(c.server)} µs/req (${f(c.serverNet)} without idle) agent+app ${f(c.agent)} (${f(c.agentNet)}) load ${c.load.toFixed(1)}${c.non2xx ? ` NON-2XX ${c.non2xx}` : ''}\n`,
      );
    }
  }
  const lines = [
    `bench/callpath/ab.mjs — ${new Date().toISOString()}, ${os.cpus().length} cores, Node ${process.version}, wrk 64 connections, ${SECONDS} s per cell, ${RUNS} alternating runs, medians; tunnel.workConnections ${Number(values['work-connections'])}; load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    '',
    '| build | req/s | server CPU µs/req | server without idle | agent+app µs/req | agent+app without idle |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const label of ['base', 'this']) {
    const m = (k) => f(median(cells[label].map((c) => c[k])));
    lines.push(`| ${label} | ${m('rps')} | ${m('server')} | ${m('serverNet')} | ${m('agent')} | ${m('agentNet')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
    process.exit(1);
  },
);
