import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  type InsituProcess,
  ok,
  runInsitu,
  providerAndDeveloper,
  publishApp,
  startAgent,
  startPlatform,
  writeBundle,
} from './support.js';

/*
 * Output policies (issue 18) end to end with the real binaries: a provider's agent whose
 * config makes `orders` aggregates-only with k = 5 and a protected column, a sandboxed
 * application that tries every way to get rows out, called through the gateway; then the
 * provider's organisation tightens the policy on the platform and the agent follows.
 */

const PASSWORD = 'a-long-enough-password';

const AGENT_YAML = `sync: { intervalSeconds: 600 }
sources:
  - name: shop
    kind: sqlite
    path: ./orders.db
    datasets:
      orders:
        description: Orders with the region and amount
        policy:
          aggregatesOnly: true
          minGroupSize: 5
          neverLeave: [customer_email]
`;

const APP = `import { readDataset, respond, serve, DataApiError } from '@insitu/sdk';
async function attempt(query) {
  try {
    const rows = [];
    for await (const row of readDataset('orders', query)) rows.push(row);
    return { rows };
  } catch (error) {
    if (error instanceof DataApiError) return respond(error.status, { code: error.code });
    throw error;
  }
}
serve({
  'GET /rows': () => attempt({ columns: ['id', 'customer_email'] }),
  'GET /all': () => attempt({}),
  'GET /emails': () => attempt({ groupBy: ['customer_email'], aggregates: [{ fn: 'count' }] }),
  'GET /first-email': () => attempt({ aggregates: [{ fn: 'min', column: 'customer_email', as: 'region' }] }),
  'GET /totals': () => attempt({ groupBy: ['region'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'region' }),
  'GET /small': () => attempt({ where: [{ column: 'id', op: '<=', value: 4 }], aggregates: [{ fn: 'count', as: 'n' }] }),
});
`;

describe('output policies through the gateway, enforced by the agent', () => {
  let dir = '';
  let server: InsituProcess;
  let agent: InsituProcess;
  let url = '';
  let adminToken = '';
  let acme = { orgId: '', token: '', providerId: '' };
  let dev = { orgId: '', token: '' };
  let key = '';

  const cli = (args: string[], token: string) => runInsitu([...args, '--url', url, '--token', token]);
  const call = async (path: string) => {
    const response = await fetch(`${url}/s/orders-report/${path}`, {
      headers: { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(30_000),
    });
    return { status: response.status, body: (await response.json()) as { code?: string; rows?: unknown[] } };
  };

  before(async () => {
    dir = await makeTempDir('insitu-e2e-policy-');
    const db = new BetterSqlite3(join(dir, 'orders.db'));
    db.exec(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL NOT NULL, customer_email TEXT)',
    );
    const insert = db.prepare('INSERT INTO orders (region, amount, customer_email) VALUES (?, ?, ?)');
    db.transaction(() => {
      // north 10 rows, south 10, east 3: east is under k and must not appear.
      for (let i = 0; i < 23; i++)
        insert.run(i < 10 ? 'north' : i < 20 ? 'south' : 'east', i + 0.5, `buyer${i}@private.example`);
    })();
    db.close();
    await writeFile(join(dir, 'agent.yaml'), AGENT_YAML);
    await writeBundle(
      join(dir, 'app'),
      {
        name: 'orders-report',
        version: '1.0.0',
        runtime: 'node',
        entry: 'index.js',
        datasets: [{ provider: 'acme-data', dataset: 'orders' }],
        endpoints: ['rows', 'all', 'emails', 'first-email', 'totals', 'small'].map((p) => ({
          method: 'GET',
          path: `/${p}`,
        })),
      },
      { 'index.js': APP },
    );

    ({ server, url, adminToken } = await startPlatform(dir));
    const parties = await providerAndDeveloper(url, adminToken, { password: PASSWORD });
    acme = parties.acme;
    dev = parties.dev;
    agent = await startAgent(dir, url, parties.acme.agentToken, { name: 'agent' });
  });

  after(async () => {
    await agent?.stop();
    await server?.stop();
    await removeDir(dir);
  });

  it('shows the policy of the agent config in the catalog', async () => {
    const shown = await cli(['catalog', 'show', 'acme-data/orders'], dev.token);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(
      shown.stdout,
      /^ {2}output policy: aggregates only; groups of at least 5 rows; never leave: customer_email$/m,
    );
  });

  it('lets a sandboxed application read only grouped aggregates of groups of at least k', async () => {
    ({ key } = await publishApp(url, {
      bundle: join(dir, 'app'),
      service: 'orders-report',
      developer: dev,
      approver: acme,
    }));

    for (const [path, code] of [
      ['rows', 'INSITU_POLICY_COLUMN_PROTECTED'],
      ['all', 'INSITU_POLICY_AGGREGATES_ONLY'],
      ['emails', 'INSITU_POLICY_COLUMN_PROTECTED'],
      ['first-email', 'INSITU_POLICY_COLUMN_PROTECTED'],
    ] as const) {
      const answer = await call(path);
      assert.deepEqual(answer, { status: 403, body: { code } }, path);
    }
    const totals = await call('totals');
    assert.equal(totals.status, 200);
    const sum = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => from + i + 0.5).reduce((a, b) => a + b, 0);
    assert.deepEqual(totals.body.rows, [
      { region: 'north', total: sum(0, 10) },
      { region: 'south', total: sum(10, 20) },
    ]);
    assert.deepEqual((await call('small')).body.rows, [], 'four rows are under k = 5');
  });

  it('follows a stricter policy set on the platform, and ignores a looser one', async () => {
    const dataset = (await ok(url, 'GET', `/api/v1/datasets?provider=${acme.providerId}`, acme.token, undefined))
      .items[0] as { id: string };
    await ok(url, 'PUT', `/api/v1/datasets/${dataset.id}/policy`, acme.token, {
      aggregatesOnly: false,
      minGroupSize: 2,
      neverLeave: [],
      maxRowsPerAnswer: 1,
    });
    // Pushed through the tunnel: the answer shrinks to one row, and nothing else loosens.
    await waitFor(async () => (await call('totals')).body.rows?.length === 1, {
      timeoutMs: 30_000,
      what: 'the platform policy to reach the agent',
    });
    assert.equal((await call('all')).body.code, 'INSITU_POLICY_AGGREGATES_ONLY');
    assert.equal((await call('emails')).body.code, 'INSITU_POLICY_COLUMN_PROTECTED');
    assert.deepEqual((await call('small')).body.rows, []);
    const shown = await cli(['catalog', 'show', 'acme-data/orders', '--json'], dev.token);
    const shownPolicy = (JSON.parse(shown.stdout) as { policy: unknown }).policy;
    assert.deepEqual(shownPolicy, {
      aggregatesOnly: true,
      minGroupSize: 5,
      neverLeave: ['customer_email'],
      maxRowsPerAnswer: 1,
    });
  });
});
