#!/usr/bin/env node
// bench/console: first load of the web console in Debian's Chromium against a real server
// (SQLite, one node). For N fresh browser contexts (empty cache): the sign-in page, and the
// catalog page of a signed-in user. Reports the bytes sent compressed (the budget is 300 KB
// of JS and CSS) and the time until the page is usable: the sign-in form shown, or the
// catalog's result count shown after its API calls (median and worst of N). Usage:
//   node bench/console/run.mjs [--runs 10]
import os from 'node:os';
import { chromium } from 'playwright-core';
import { defaultServerConfig, startServer } from '@insitu/server';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { benchArgs } from '../args.mjs';

const values = benchArgs('node bench/console/run.mjs [--runs N]', {
  runs: { default: '10', kind: 'count', help: 'fresh browser contexts per page' },
});
const RUNS = Number(values.runs);

const dir = await makeTempDir('insitu-bench-console-');
const server = await startServer({
  config: defaultServerConfig({ listen: { port: 0 }, log: { level: 'silent' }, auth: { passwordCost: 10 } }),
  dataDir: dir,
});
const { initPlatform } = await import('@insitu/server');
const init = await initPlatform(
  server.store,
  { adminEmail: 'root@bench.test', password: 'bench-password-long' },
  { N: 1024, r: 8, p: 1 },
);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

const measure = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const assets = performance.getEntriesByType('resource').filter((r) => r.name.includes('/console/assets/'));
  const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/v1/'));
  return { usableMs: performance.now(), dclMs: nav.domContentLoadedEventEnd, bytes: nav.encodedBodySize + assets.reduce((n, r) => n + r.encodedBodySize, 0), apiCalls: api.length };
})()`;

async function run(page, cookies) {
  const out = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    if (cookies) await context.addCookies(cookies);
    const tab = await context.newPage();
    await tab.goto(`${server.url}/console/${page === 'catalog' ? 'catalog' : ''}`);
    if (page === 'catalog') await tab.getByText(/^\d+ datasets?$/).waitFor();
    else await tab.getByLabel('Email').waitFor();
    out.push(await tab.evaluate(measure));
    await context.close();
  }
  return out;
}

function summary(name, rows) {
  const sorted = (key) => rows.map((r) => r[key]).sort((a, b) => a - b);
  const median = (key) => sorted(key)[Math.floor(rows.length / 2)];
  const worst = (key) => sorted(key).at(-1);
  return `${name.padEnd(22)} ${String(rows[0].bytes).padStart(7)} B compressed  usable: median ${median('usableMs').toFixed(0)} ms, worst ${worst('usableMs').toFixed(0)} ms  (DOMContentLoaded median ${median('dclMs').toFixed(0)} ms, API calls ${rows[0].apiCalls})`;
}

try {
  const signIn = await run('sign-in');
  // Sign in once through the console's own endpoint, then load the catalog signed in.
  const context = await browser.newContext();
  const tab = await context.newPage();
  await tab.goto(`${server.url}/console/`);
  await tab.getByLabel('Email').fill(init.admin.email);
  await tab.getByLabel('Password').fill('bench-password-long');
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByRole('button', { name: 'Sign out' }).waitFor();
  const cookies = await context.cookies();
  await context.close();
  const catalog = await run('catalog', cookies);
  process.stdout.write(
    `console first load, ${RUNS} fresh contexts each, ${os.cpus().length} cores, Node ${process.versions.node}, ${browser.version()}\n`,
  );
  process.stdout.write(`${summary('sign-in page', signIn)}\n${summary('catalog (signed in)', catalog)}\n`);
} finally {
  await browser.close();
  await server.close();
  await removeDir(dir);
}
