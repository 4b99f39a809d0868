import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  enrolmentToken,
  type InsituProcess,
  ok,
  runInsitu,
  providerAndDeveloper,
  startAgent,
  startPlatform,
  writeBundle,
} from './support.js';

/*
 * Jobs written with the Python SDK, run by two agents of one provider (both bubblewrap,
 * both serving the same SQLite dataset): every job runs exactly once, at one of them; the
 * Python job reads its args, aggregates through the data API and writes its result file,
 * which the submitter fetches; the job's output lines reach the submitter because the
 * approval shares them; the runs are metered (`insitu usage --jobs`) with CPU time.
 */

const PASSWORD = 'a-long-enough-password';
const JOBS = 6;

const PYTHON_JOB = `
import insitu

args = insitu.job_args() or {}
factor = args.get("factor", 1)
totals = {}
for row in insitu.read_dataset("orders", group_by=["region"],
                               aggregates=[{"fn": "sum", "column": "amount", "as": "total"},
                                           {"fn": "count", "as": "n"}],
                               order_by="region"):
    totals[row["region"]] = {"total": row["total"] * factor, "n": row["n"]}
insitu.write_result("totals.json", {"tag": args.get("tag"), "totals": totals})
print("python job %s: %d regions" % (args.get("tag"), len(totals)), flush=True)
`;

describe('Python jobs at two agents of one provider', { timeout: 300_000 }, () => {
  let dir = '';
  let server: InsituProcess | undefined;
  const agents: InsituProcess[] = [];
  let url = '';
  let acme = { orgId: '', token: '', providerId: '' };
  let dev = { orgId: '', token: '' };
  let versionId = '';

  const cli = (args: string[], token: string) => runInsitu([...args, '--url', url, '--token', token]);

  before(async () => {
    dir = await makeTempDir('insitu-e2e-pyjobs-');
    const db = new BetterSqlite3(join(dir, 'orders.db'));
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO orders (region, amount) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 400; i++) insert.run(['north', 'south'][i % 2], i % 10);
    })();
    db.close();
    await writeFile(
      join(dir, 'agent.yaml'),
      'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\njobs:\n  concurrency: 2\n  shareLogs: true\n  results: { extensions: [json] }\n',
    );
    const platform = await startPlatform(dir);
    ({ server, url } = platform);
    const adminToken = platform.adminToken;
    const parties = await providerAndDeveloper(url, adminToken, { password: PASSWORD });
    acme = parties.acme;
    dev = parties.dev;
    for (const name of ['agent-a', 'agent-b']) {
      const token = name === 'agent-a' ? parties.acme.agentToken : await enrolmentToken(url, acme);
      agents.push(await startAgent(dir, url, token, { name }));
    }
    const bundle = join(dir, 'job');
    await writeBundle(
      bundle,
      {
        name: 'region-totals-py',
        version: '1.0.0',
        runtime: 'python',
        entry: 'main.py',
        kind: 'job',
        datasets: [{ provider: 'acme-data', dataset: 'orders' }],
      },
      { 'main.py': PYTHON_JOB },
    );
    const submitted = await cli(['app', 'submit', bundle, '--org', dev.orgId, '--json'], dev.token);
    assert.equal(submitted.code, 0, submitted.stderr);
    versionId = (JSON.parse(submitted.stdout) as { id: string }).id;
    const approved = await cli(
      [
        'app',
        'approve',
        versionId,
        '--reason',
        'totals per region',
        '--share-job-logs',
        '--job-result-types',
        'json',
        '--job-max-result-bytes',
        '65536',
        '--json',
      ],
      acme.token,
    );
    assert.equal(approved.code, 0, approved.stderr);
    assert.deepEqual((JSON.parse(approved.stdout) as Array<{ jobPolicy?: unknown }>)[0]?.jobPolicy, {
      shareLogs: true,
      results: { extensions: ['json'], maxFileBytes: 65536 },
    });
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  it('runs every job exactly once, at one of the two agents, and hands each result to the submitter', async () => {
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const run = await cli(
        [
          'job',
          'run',
          versionId,
          '--provider',
          'acme-data',
          '--args',
          JSON.stringify({ tag: `t${i}`, factor: i + 1 }),
          '--json',
        ],
        dev.token,
      );
      assert.equal(run.code, 0, run.stderr);
      ids.push((JSON.parse(run.stdout) as { id: string }).id);
    }
    const final = new Set(['succeeded', 'failed', 'refused', 'cancelled']);
    const jobs = await waitFor(
      async () => {
        const rows = await Promise.all(ids.map((id) => ok(url, 'GET', `/api/v1/jobs/${id}`, dev.token, undefined)));
        return rows.every((r: { state: string }) => final.has(r.state)) ? rows : undefined;
      },
      { timeoutMs: 180_000, what: `${JOBS} jobs to end` },
    );
    for (const job of jobs as Array<{ id: string; state: string; reason: string }>)
      assert.equal(job.state, 'succeeded', `${job.id}: ${job.reason}`);

    // Exactly once: each job started at one agent, and only once there.
    const startedAt = ids.map((id) =>
      agents.map(
        (a) => a.output.split('\n').filter((l) => l.includes(`"job":"${id}"`) && l.includes('job started')).length,
      ),
    );
    for (const [i, counts] of startedAt.entries())
      assert.equal(
        counts.reduce((n, c) => n + c, 0),
        1,
        `job ${ids[i]} started once in all (per agent: ${counts.join(', ')})`,
      );
    // The audit log holds one JOB record per job, naming the agent that ran it.
    const audit = await ok(url, 'GET', '/api/v1/audit?limit=100', dev.token, undefined);
    const records = (audit.items as Array<{ requestId: string; method: string; agentId: string }>).filter(
      (r) => r.method === 'JOB',
    );
    assert.deepEqual(records.map((r) => r.requestId).sort(), [...ids].sort());

    // The Python job's result: its args and the aggregate over the dataset.
    const expected: Record<string, { total: number; n: number }> = {};
    for (let i = 0; i < 400; i++) {
      const region = ['north', 'south'][i % 2] ?? '';
      const entry = (expected[region] ??= { total: 0, n: 0 });
      entry.total += i % 10;
      entry.n += 1;
    }
    for (const [i, id] of ids.entries()) {
      const out = join(dir, 'results', id);
      const fetched = await cli(['job', 'results', id, '--out', out, '--json'], dev.token);
      assert.equal(fetched.code, 0, fetched.stderr);
      const result = JSON.parse(await readFile(join(out, 'totals.json'), 'utf8')) as {
        tag: string;
        totals: Record<string, { total: number; n: number }>;
      };
      assert.equal(result.tag, `t${i}`);
      assert.deepEqual(
        result.totals,
        Object.fromEntries(Object.entries(expected).map(([k, v]) => [k, { total: v.total * (i + 1), n: v.n }])),
      );
    }
    // The approval shares the output lines, and the agents' config allows it.
    const logs = await cli(['job', 'logs', ids[0] ?? ''], dev.token);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /python job t0: 2 regions/);
  });

  it('meters the runs: outcome, CPU time measured by the agents, result bytes', async () => {
    const usage = await cli(['usage', '--jobs', '--version-id', versionId, '--by', 'version', '--json'], dev.token);
    assert.equal(usage.code, 0, usage.stderr);
    const rows = (
      JSON.parse(usage.stdout) as Array<{
        versionId: string;
        runs: number;
        succeeded: number;
        cpuTimeMs: number;
        cpuMeasuredRuns: number;
        resultFiles: number;
        resultBytes: number;
      }>
    ).filter((r) => r.versionId === versionId);
    const sum = (f: 'runs' | 'succeeded' | 'cpuMeasuredRuns' | 'resultFiles' | 'cpuTimeMs' | 'resultBytes') =>
      rows.reduce((n, r) => n + r[f], 0);
    assert.deepEqual([sum('runs'), sum('succeeded'), sum('resultFiles')], [JOBS, JOBS, JOBS]);
    assert.equal(sum('cpuMeasuredRuns'), JOBS, 'both agents measured the CPU time of their jobs');
    assert.ok(sum('cpuTimeMs') > 0);
    assert.ok(sum('resultBytes') > 0);
    // The provider sees the same runs of jobs at its agents.
    const asProvider = await cli(['usage', '--jobs', '--json'], acme.token);
    assert.equal(
      (JSON.parse(asProvider.stdout) as Array<{ runs: number }>).reduce((n, r) => n + r.runs, 0),
      JOBS,
    );
    const misuse = await cli(['usage', '--jobs', '--service', 'x'], dev.token);
    assert.equal(misuse.code, 2);
  });
});
