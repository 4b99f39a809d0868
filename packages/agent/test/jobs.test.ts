import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger, type AgentJob } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { Agent, bundleDigest, parseAgentConfig } from '../src/index.js';
import { salesRows, writeSqlite } from './fixtures.js';

const logger = createLogger({ name: 'test', level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'silent' });
const PROVIDER = 'prv_00000000000000000000000000';

/** A job bundle: `mode` (from the job's args) picks what it does. */
function writeJobBundle(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name: 'sales-job',
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.js',
      kind: 'job',
      datasets: [{ provider: 'acme', dataset: 'sales' }],
      limits: { memoryMb: 256, cpuSeconds: 60 },
    }),
  );
  writeFileSync(
    join(dir, 'index.js'),
    `import { jobArgs, readDataset, writeResult } from '@insitu/sdk';
import { writeFileSync } from 'node:fs';
const { mode } = jobArgs() ?? {};
if (mode === 'sum') {
  let count = 0, qty = 0;
  for await (const row of readDataset('sales', { columns: ['qty'] })) { count++; qty += Number(row.qty); }
  await writeResult('totals.json', { count, qty });
  console.log('summed ' + count + ' rows');
} else if (mode === 'by-city') {
  const groups = [];
  for await (const row of readDataset('sales', { groupBy: ['city'], aggregates: [{ fn: 'count', as: 'n' }] })) groups.push(row);
  await writeResult('groups.json', groups);
} else if (mode === 'rows') {
  try {
    for await (const row of readDataset('sales', { columns: ['id', 'qty'] })) console.log('row ' + row.id);
    await writeResult('rows.json', 'read');
  } catch (error) {
    await writeResult('refusal.json', { code: error.code, status: error.status });
  }
} else if (mode === 'big') {
  await writeResult('big.csv', 'x'.repeat(4096));
} else if (mode === 'binary') {
  await writeResult('dump.bin', 'raw rows');
} else if (mode === 'link') {
  const { symlinkSync } = await import('node:fs');
  symlinkSync('/etc/passwd', process.env.INSITU_OUTPUT_DIR + '/passwd.txt');
} else if (mode === 'forever') {
  console.log('waiting');
  setInterval(() => {}, 1000);
} else {
  process.exit(3);
}
`,
  );
  return dir;
}

describe('jobs at the agent: run once in the sandbox, results checked against the provider policy', () => {
  let dir = '';
  let agent: Agent;
  let bundle = '';
  let digest = '';
  let next = 0;

  const job = (args: unknown, wallTimeMs = 60_000): AgentJob => ({
    id: `job_0000000000000000000000000${next++}`,
    state: 'queued',
    app: 'sales-job',
    version: '1.0.0',
    digest,
    bundle,
    args,
    datasets: [{ providerId: PROVIDER, dataset: 'sales' }],
    wallTimeMs,
  });

  before(async () => {
    dir = await makeTempDir('insitu-agent-jobs-');
    writeSqlite(join(dir, 'shop.db'), salesRows(20));
    bundle = writeJobBundle(join(dir, 'job'));
    digest = await bundleDigest(bundle);
    const config = parseAgentConfig(
      {
        sources: [{ name: 'shop', kind: 'sqlite', path: 'shop.db' }],
        jobs: { concurrency: 1, results: { maxFileBytes: 1024, extensions: ['json', 'csv', 'txt'] } },
      },
      { what: 'test config', baseDir: dir },
    );
    agent = await Agent.create({ config, dataDir: join(dir, 'agent'), logger, provider: { id: PROVIDER } });
    await agent.registry.refresh();
  });
  after(async () => {
    await agent?.close();
    if (dir) await removeDir(dir);
  });

  it('reads its approved dataset through the data API and leaves its result file', async () => {
    const outcome = await agent.runJob(job({ mode: 'sum' }), new AbortController().signal);
    assert.equal(outcome.state, 'succeeded', `${outcome.reason}: ${outcome.output.join('\n')}`);
    const rows = salesRows(20);
    assert.deepEqual(
      outcome.files?.map((f) => [f.name, JSON.parse(f.data.toString('utf8')) as unknown]),
      [['totals.json', { count: 20, qty: rows.reduce((n, r) => n + r.qty, 0) }]],
    );
    assert.ok(outcome.output.includes('summed 20 rows'));
    if (process.getuid?.() === 0)
      assert.ok(
        (outcome.cpuTimeMs ?? 0) > 0,
        `the CPU time of the job's processes is measured in its cgroup (got ${String(outcome.cpuTimeMs)})`,
      );
  });

  it('refuses a result over the per-file cap: the write fails in the sandbox and nothing leaves', async () => {
    const outcome = await agent.runJob(job({ mode: 'big' }), new AbortController().signal);
    assert.equal(outcome.state, 'refused', `${outcome.reason}: ${outcome.output.join('\n')}`);
    assert.match(outcome.reason, /big.csv: 1025 bytes; the provider allows 1024 per file/);
    assert.equal(outcome.files, undefined);
  });

  it("applies the approval's tighter result policy: it can narrow the config's, never widen it", async () => {
    const narrowed = await agent.runJob(
      { ...job({ mode: 'sum' }), policy: { shareLogs: false, results: { extensions: ['csv'] } } },
      new AbortController().signal,
    );
    assert.equal(narrowed.state, 'refused', narrowed.reason);
    assert.match(narrowed.reason, /extension "json" is not allowed/);
    assert.equal(narrowed.files, undefined);
    const widened = await agent.runJob(
      {
        ...job({ mode: 'binary' }),
        policy: { shareLogs: true, results: { extensions: ['bin'], maxFileBytes: 1 << 20 } },
      },
      new AbortController().signal,
    );
    assert.equal(widened.state, 'refused', 'an approval cannot allow what the config does not');
    assert.match(widened.reason, /extension "bin" is not allowed/);
  });

  it('refuses a file type the provider does not allow, and a symbolic link', async () => {
    const binary = await agent.runJob(job({ mode: 'binary' }), new AbortController().signal);
    assert.equal(binary.state, 'refused');
    assert.match(binary.reason, /extension "bin" is not allowed/);
    const link = await agent.runJob(job({ mode: 'link' }), new AbortController().signal);
    assert.equal(link.state, 'refused');
    assert.match(link.reason, /passwd\.txt: not a regular file/);
    assert.equal(link.files, undefined);
  });

  it('obeys the output policies of services: a platform policy (aggregatesOnly, minGroupSize) binds a job too', async () => {
    const k = 3;
    agent.setPlatformPolicies([{ dataset: 'sales', policy: { aggregatesOnly: true, minGroupSize: k } }]);
    try {
      const rows = await agent.runJob(job({ mode: 'rows' }), new AbortController().signal);
      assert.equal(rows.state, 'succeeded', `${rows.reason}: ${rows.output.join('\n')}`);
      assert.deepEqual(
        rows.files?.map((f) => [f.name, JSON.parse(f.data.toString('utf8')) as unknown]),
        [['refusal.json', { code: 'INSITU_POLICY_AGGREGATES_ONLY', status: 403 }]],
      );
      assert.ok(!rows.output.some((line) => line.startsWith('row ')), 'no row reached the job');

      const grouped = await agent.runJob(job({ mode: 'by-city' }), new AbortController().signal);
      assert.equal(grouped.state, 'succeeded', `${grouped.reason}: ${grouped.output.join('\n')}`);
      const groups = JSON.parse(grouped.files?.[0]?.data.toString('utf8') ?? '[]') as Array<{
        city: string;
        n: number;
      }>;
      const expected = new Map<string, number>();
      for (const r of salesRows(20)) expected.set(r.city, (expected.get(r.city) ?? 0) + 1);
      assert.deepEqual(
        groups.map((g) => [g.city, Number(g.n)]).sort(),
        [...expected].filter(([, n]) => n >= k).sort(),
        'groups under k vanished, the others are whole',
      );
      assert.ok(
        [...expected.values()].some((n) => n < k),
        'the fixture has a group under k, so the check can fail',
      );
    } finally {
      agent.setPlatformPolicies([]);
    }
  });

  it('kills a job past its wall-time budget', async () => {
    const outcome = await agent.runJob(job({ mode: 'forever' }, 1000), new AbortController().signal);
    assert.equal(outcome.state, 'failed');
    assert.match(outcome.reason, /wall-time budget of 1000 ms/);
  });

  it('a cancel kills the process group', async () => {
    const abort = new AbortController();
    let pid: number | undefined;
    const outcome = await agent.runJob(job({ mode: 'forever' }), abort.signal, {
      onStart: (started) => {
        pid = started;
        abort.abort();
      },
    });
    assert.equal(outcome.state, 'cancelled');
    assert.ok(pid !== undefined);
    assert.throws(() => process.kill(-(pid as number), 0), { code: 'ESRCH' }, 'no process of the group is left');
  });

  it('reports a failing exit code', async () => {
    const outcome = await agent.runJob(job({ mode: 'nothing' }), new AbortController().signal);
    assert.equal(outcome.state, 'failed');
    assert.equal(outcome.reason, 'exited with code 3');
  });
});
