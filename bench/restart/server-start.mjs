#!/usr/bin/env node
// bench/restart/server-start — how long `insitu server` takes from spawn to its first answer
// (issue 14: "start takes 10-24 s under load"). Initialises a data dir once (SQLite, in a temp
// dir), then per run spawns `insitu server --port 0 --log-level debug`, polls the URL of its run
// file until /healthz answers 200, and stops it (SIGTERM). Prints per run the wall time, the
// process's CPU time at that moment (user + system, from /proc: less sensitive to a busy
// machine than wall time) and the start steps the server logs at debug; then the medians.
// After `npm run build`:  node bench/restart/server-start.mjs [--runs 7] [--cli packages/cli/bin/insitu.js]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '../args.mjs';

const args = benchArgs('node bench/restart/server-start.mjs [--runs 7] [--cli PATH]', {
  runs: { default: '7', kind: 'count', help: 'starts to time' },
  cli: {
    default: fileURLToPath(new URL('../../packages/cli/bin/insitu.js', import.meta.url)),
    kind: 'path',
    help: 'the insitu binary to time (another checkout, to compare)',
  },
});
const CLI = resolve(String(args.cli));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Math.round((Number(fields[11]) + Number(fields[12])) * TICK_MS);
}

async function startOnce(dataDir) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'server', '--data-dir', dataDir, '--port', '0', '--log-level', 'debug'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`insitu server exited ${child.exitCode}: ${log.slice(-2000)}`);
      let url;
      try {
        url = JSON.parse(readFileSync(join(dataDir, 'run.json'), 'utf8')).url;
      } catch {
        url = undefined; // not written yet, or being written
      }
      if (url) {
        const ok = await fetch(`${url}/healthz`)
          .then(async (r) => (await r.text(), r.ok))
          .catch(() => false);
        if (ok) {
          const wallMs = Math.round(performance.now() - t0);
          const steps = log
            .split('\n')
            .filter((l) => l.includes('"start: '))
            .map((l) => JSON.parse(l))
            .map((l) => `${l.msg.slice(7)} ${l.sinceProcessStartMs}`);
          return { wallMs, cpuMs: cpuMs(child.pid), steps };
        }
      }
      await sleep(20);
    }
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

const dir = mkdtempSync(join(os.tmpdir(), 'insitu-bench-start-'));
try {
  const dataDir = join(dir, 'data');
  execFileSync(process.execPath, [CLI, 'init', '--data-dir', dataDir, '--port', '0', '--json'], { stdio: 'ignore' });
  if (!existsSync(join(dataDir, 'platform.db'))) throw new Error('insitu init made no database');
  const runs = [];
  for (let i = 0; i < Number(args.runs); i++) {
    const run = await startOnce(dataDir);
    runs.push(run);
    console.log(
      `run ${i + 1}: ${run.wallMs} ms wall, ${run.cpuMs} ms CPU; steps (ms since process start): ${run.steps.join(', ')}`,
    );
  }
  console.log(
    `median of ${runs.length}: ${median(runs.map((r) => r.wallMs))} ms wall, ${median(runs.map((r) => r.cpuMs))} ms CPU (load average ${os.loadavg()[0].toFixed(1)})`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
