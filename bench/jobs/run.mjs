// Compute jobs with the real binaries (a server, one agent in bubblewrap, the CLI):
//   1. submit → running: startedAt − createdAt as the platform records them (claim time),
//      over N jobs submitted one after another; median and max.
//   2. a job aggregating 1 M SQLite rows (sum per region) end to end (createdAt → finishedAt),
//      against the same GROUP BY run directly on the file (ratio).
// Usage: node bench/jobs/run.mjs [--jobs 10] [--rows 1000000]
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { InsituProcess, ok, runInsitu } from '../../e2e/dist/test/support.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const JOBS = arg('jobs', 10);
const ROWS = arg('rows', 1_000_000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = await makeTempDir('insitu-bench-jobs-');
let server;
let agent;
try {
  const db = new BetterSqlite3(join(dir, 'orders.db'));
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL NOT NULL)');
  const insert = db.prepare('INSERT INTO orders (region, amount) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) insert.run(['north', 'south', 'east', 'west'][i % 4], (i % 97) + 0.25);
  })();
  const t0 = performance.now();
  db.prepare('SELECT region, SUM(amount) AS total FROM orders GROUP BY region ORDER BY region').all();
  const directMs = performance.now() - t0;
  db.close();
  await writeFile(
    join(dir, 'agent.yaml'),
    'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\njobs:\n  concurrency: 2\n',
  );
  await mkdir(join(dir, 'job'));
  await writeFile(
    join(dir, 'job', 'insitu.json'),
    JSON.stringify({
      name: 'bench-job',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      kind: 'job',
      datasets: [{ provider: 'acme-data', dataset: 'orders' }],
    }),
  );
  await writeFile(
    join(dir, 'job', 'index.js'),
    `import { jobArgs, readDataset, writeResult } from '@insitu/sdk';
const { mode } = jobArgs() ?? {};
if (mode === 'sum') {
  const totals = {};
  for await (const row of readDataset('orders', { groupBy: ['region'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'region' })) totals[row.region] = Number(row.total);
  await writeResult('totals.json', totals);
}
`,
  );
  const init = await runInsitu(['init', '--data-dir', join(dir, 'platform'), '--port', '0', '--json']);
  const { admin } = JSON.parse(init.stdout);
  server = new InsituProcess('server', ['server', '--data-dir', join(dir, 'platform'), '--port', '0']);
  const url = (await server.waitForOutput(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/))[1];
  const adminToken = (await ok(url, 'POST', '/api/v1/sessions', undefined, admin, 201)).token;
  const orgs = {};
  for (const name of ['acme', 'devco']) {
    const signup = await ok(
      url,
      'POST',
      '/api/v1/signup',
      undefined,
      { org: { name }, user: { email: `a@${name}.test`, name, password: 'a-long-enough-password' } },
      201,
    );
    await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, adminToken, undefined);
    orgs[name] = { id: signup.org.id, token: signup.session.token };
  }
  const providerId = (
    await ok(url, 'POST', '/api/v1/providers', orgs.acme.token, { orgId: orgs.acme.id, name: 'acme-data' }, 201)
  ).id;
  const enrol = (await ok(url, 'POST', '/api/v1/tokens', orgs.acme.token, { providerId }, 201)).token;
  // prettier-ignore
  agent = new InsituProcess('agent', ['agent', '--platform', url, '--config', join(dir, 'agent.yaml'), '--data-dir', join(dir, 'agent'), '--token', enrol]);
  await agent.waitForOutput(/agent running/, 600_000);
  await waitFor(async () => (await ok(url, 'GET', '/api/v1/datasets?q=orders', orgs.devco.token)).items.length > 0, {
    timeoutMs: 600_000,
    what: 'the catalog to list orders',
  });
  const cli = (args, token) => runInsitu([...args, '--url', url, '--token', token]);
  const submitted = await cli(['app', 'submit', join(dir, 'job'), '--org', orgs.devco.id, '--json'], orgs.devco.token);
  const versionId = JSON.parse(submitted.stdout).id;
  await cli(['app', 'approve', versionId, '--reason', 'bench'], orgs.acme.token);

  const submit = async (args) =>
    (await ok(url, 'POST', '/api/v1/jobs', orgs.devco.token, { versionId, providerId, args }, 201)).id;
  const ended = (id) =>
    waitFor(
      async () => {
        const job = await ok(url, 'GET', `/api/v1/jobs/${id}`, orgs.devco.token);
        return ['succeeded', 'failed', 'refused', 'cancelled'].includes(job.state) ? job : false;
      },
      { timeoutMs: 600_000, intervalMs: 20, what: `job ${id} to end` },
    );
  // Warm-up: the first job fetches and unpacks the bundle.
  await ended(await submit({ mode: 'noop' }));
  const startLatencies = [];
  for (let i = 0; i < JOBS; i++) {
    const job = await ended(await submit({ mode: 'noop' }));
    startLatencies.push(Date.parse(job.startedAt) - Date.parse(job.createdAt));
  }
  const big = await ended(await submit({ mode: 'sum' }));
  if (big.state !== 'succeeded') throw new Error(`the 1 M row job ${big.state}: ${big.reason}`);
  const endToEnd = Date.parse(big.finishedAt) - Date.parse(big.createdAt);
  console.log(
    JSON.stringify({
      jobs: JOBS,
      submitToRunningMedianMs: median(startLatencies),
      submitToRunningMaxMs: Math.max(...startLatencies),
      rows: ROWS,
      aggregateJobEndToEndMs: endToEnd,
      aggregateJobRunMs: Date.parse(big.finishedAt) - Date.parse(big.startedAt),
      directSqliteGroupByMs: Math.round(directMs),
      ratioJobToDirect: Number((endToEnd / directMs).toFixed(1)),
    }),
  );
} finally {
  await agent?.stop();
  await server?.stop();
  await removeDir(dir);
}
