import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { type InsituProcess, ok, runInsitu, providerAndDeveloper, startAgent, startPlatform } from './support.js';

/*
 * Compute jobs with the real binaries: a platform server, one agent (bubblewrap) dialling
 * it, and the CLI. A job sums a SQLite dataset and its result is fetched; one over the
 * provider's result cap is refused; one past its wall-time budget is killed; one is cancelled.
 */

const PASSWORD = 'a-long-enough-password';

async function writeJob(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name: 'region-report',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      kind: 'job',
      datasets: [{ provider: 'acme-data', dataset: 'orders' }],
    }),
  );
  await writeFile(
    join(dir, 'index.js'),
    `import { jobArgs, readDataset, writeResult } from '@insitu/sdk';
const { mode } = jobArgs() ?? {};
if (mode === 'sum') {
  const totals = {};
  for await (const row of readDataset('orders', { groupBy: ['region'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'region' })) totals[row.region] = Number(row.total);
  await writeResult('totals.json', totals);
  console.log('regions: ' + Object.keys(totals).length);
} else if (mode === 'big') {
  await writeResult('big.csv', 'x'.repeat(8192));
} else {
  console.log('waiting');
  setInterval(() => {}, 1000);
}
`,
  );
}

describe('compute jobs, end to end', () => {
  let dir = '';
  let server: InsituProcess;
  let agent: InsituProcess;
  let url = '';
  let acme = { orgId: '', token: '', providerId: '' };
  let dev = { orgId: '', token: '' };
  let versionId = '';

  const cli = (args: string[], token: string) => runInsitu([...args, '--url', url, '--token', token]);
  const run = async (args: string, extra: string[] = []) => {
    const result = await cli(
      ['job', 'run', versionId, '--provider', 'acme-data', '--args', args, '--json', ...extra],
      dev.token,
    );
    return {
      ...result,
      job: result.stdout ? (JSON.parse(result.stdout) as { id: string; state: string; reason: string }) : undefined,
    };
  };

  before(async () => {
    dir = await makeTempDir('insitu-e2e-jobs-');
    const db = new BetterSqlite3(join(dir, 'orders.db'));
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL NOT NULL)');
    const insert = db.prepare('INSERT INTO orders (region, amount) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 300; i++) insert.run(['north', 'south', 'east'][i % 3], (i % 7) + 0.5);
    })();
    db.close();
    await writeFile(
      join(dir, 'agent.yaml'),
      'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\njobs:\n  concurrency: 2\n  shareLogs: true\n  results: { maxFileBytes: 4096, extensions: [json, csv] }\n',
    );
    const platform = await startPlatform(dir);
    ({ server, url } = platform);
    const adminToken = platform.adminToken;
    const parties = await providerAndDeveloper(url, adminToken, { password: PASSWORD });
    acme = parties.acme;
    dev = parties.dev;
    agent = await startAgent(dir, url, parties.acme.agentToken, { name: 'agent-a' });
    await writeJob(join(dir, 'job'));
    const submitted = await cli(['app', 'submit', join(dir, 'job'), '--org', dev.orgId, '--json'], dev.token);
    assert.equal(submitted.code, 0, submitted.stderr);
    versionId = (JSON.parse(submitted.stdout) as { id: string }).id;
    const approved = await cli(
      ['app', 'approve', versionId, '--reason', 'sums per region', '--share-job-logs'],
      acme.token,
    );
    assert.equal(approved.code, 0, approved.stderr);
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    await removeDir(dir);
  });

  it('runs a job over the SQLite dataset and hands its result to the submitter', async () => {
    const { code, stderr, job } = await run('{"mode":"sum"}', ['--wait']);
    assert.equal(code, 0, stderr);
    assert.equal(job?.state, 'succeeded', job?.reason);
    const out = join(dir, 'results');
    const fetched = await cli(['job', 'results', job?.id ?? '', '--out', out, '--json'], dev.token);
    assert.equal(fetched.code, 0, fetched.stderr);
    const expected: Record<string, number> = { east: 0, north: 0, south: 0 };
    for (let i = 0; i < 300; i++) {
      const region = ['north', 'south', 'east'][i % 3] ?? '';
      expected[region] = (expected[region] ?? 0) + (i % 7) + 0.5;
    }
    assert.deepEqual(JSON.parse(await readFile(join(out, 'totals.json'), 'utf8')), expected);
    const logs = await cli(['job', 'logs', job?.id ?? ''], dev.token);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /regions: 3/);
    const asProvider = await cli(['job', 'results', job?.id ?? ''], acme.token);
    assert.notEqual(asProvider.code, 0, 'the provider does not read the results');
    assert.match(asProvider.stderr, /INSITU_FORBIDDEN/);
  });

  it("refuses a result over the provider's cap: nothing leaves", async () => {
    const { code, job } = await run('{"mode":"big"}', ['--wait']);
    assert.equal(code, 1);
    assert.equal(job?.state, 'refused');
    assert.match(job?.reason ?? '', /big\.csv: 4097 bytes; the provider allows 4096 per file/);
    const status = await cli(['job', 'status', job?.id ?? '', '--json'], dev.token);
    assert.deepEqual((JSON.parse(status.stdout) as { results: unknown[] }).results, []);
  });

  it('kills a job past its wall-time budget', async () => {
    const { code, job } = await run('{"mode":"forever"}', ['--wait', '--wall-time', '2']);
    assert.equal(code, 1);
    assert.equal(job?.state, 'failed');
    assert.match(job?.reason ?? '', /wall-time budget of 2000 ms/);
  });

  it('cancels a running job: the agent kills it', async () => {
    const { code, stderr, job } = await run('{"mode":"forever"}');
    assert.equal(code, 0, stderr);
    const id = job?.id ?? '';
    await waitFor(async () => (await ok(url, 'GET', `/api/v1/jobs/${id}`, dev.token, undefined)).state === 'running', {
      timeoutMs: 30_000,
      what: 'the job to run',
    });
    const cancelled = await cli(['job', 'cancel', id, '--json'], dev.token);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal((JSON.parse(cancelled.stdout) as { state: string }).state, 'cancelled');
    await agent.waitForOutput(new RegExp(`"job":"${id}".*"state":"cancelled"`), 30_000);
    const list = await cli(['job', 'list', '--json'], dev.token);
    assert.equal(list.code, 0, list.stderr);
    assert.equal((JSON.parse(list.stdout) as unknown[]).length, 4);
  });
});
