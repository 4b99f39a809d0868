import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  enrolmentToken,
  type InsituProcess,
  ok,
  providerAndDeveloper,
  publishApp,
  startAgent,
  startPlatform,
  writeBundle,
} from './support.js';

/*
 * The privacy budget with two agents of one provider (issue 18): a noised dataset with a
 * budget of 3 queries, a service deployed at both agents, and calls through the gateway
 * that reach both. Summed at the platform, exactly 3 noised answers leave in all; kept per
 * agent, up to 6 would.
 */

const PASSWORD = 'a-long-enough-password';
const CALLS = 16;

const AGENT_YAML = `sync: { intervalSeconds: 600 }
sources:
  - name: shop
    kind: sqlite
    path: ./orders.db
    datasets:
      orders:
        policy:
          noise: { epsilonPerQuery: 1, budget: 3 }
`;

const APP = `import { readDataset, respond, serve, DataApiError } from '@insitu/sdk';
serve({
  'GET /count': async () => {
    try {
      const rows = [];
      for await (const row of readDataset('orders', { aggregates: [{ fn: 'count', as: 'n' }] })) rows.push(row);
      return { rows };
    } catch (error) {
      if (error instanceof DataApiError) return respond(error.status, { code: error.code });
      throw error;
    }
  },
});
`;

describe('privacy budget summed over two agents of one provider', { timeout: 300_000 }, () => {
  let dir = '';
  let server: InsituProcess | undefined;
  const agents: InsituProcess[] = [];
  let url = '';
  let acme = { orgId: '', token: '', providerId: '' };
  let dev = { orgId: '', token: '' };

  before(async () => {
    dir = await makeTempDir('insitu-e2e-budget-');
    const db = new BetterSqlite3(join(dir, 'orders.db'));
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO orders (amount) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 100; i++) insert.run(i);
    })();
    db.close();
    await writeFile(join(dir, 'agent.yaml'), AGENT_YAML);
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
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await server?.stop();
    if (dir) await removeDir(dir);
  });

  it('lets exactly the budget of noised answers out over both agents together', async () => {
    await writeBundle(
      join(dir, 'app'),
      {
        name: 'orders-count',
        version: '1.0.0',
        runtime: 'node',
        entry: 'index.js',
        datasets: [{ provider: 'acme-data', dataset: 'orders' }],
        endpoints: [{ method: 'GET', path: '/count' }],
      },
      { 'index.js': APP },
    );
    const { deploymentId, key } = await publishApp(url, {
      bundle: join(dir, 'app'),
      service: 'orders-count',
      developer: dev,
      approver: acme,
    });
    await waitFor(
      async () => {
        const d = await ok(url, 'GET', `/api/v1/deployments/${deploymentId}`, dev.token, undefined);
        const running = (d.agents as Array<{ state: string; ready: number }>).filter(
          (a) => a.state === 'running' && a.ready > 0,
        );
        return running.length === 2 ? true : undefined;
      },
      { timeoutMs: 120_000, what: 'the service to run at both agents' },
    );

    const answers: Array<{ status: number; code?: string }> = [];
    for (let i = 0; i < CALLS; i++) {
      const response = await fetch(`${url}/s/orders-count/count`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await response.json()) as { code?: string; error?: { code?: string } };
      answers.push({ status: response.status, ...(body.code ? { code: body.code } : {}) });
    }
    const audit = await ok(url, 'GET', '/api/v1/audit?limit=100', dev.token, undefined);
    const servedBy = new Set(
      (audit.items as Array<{ serviceName: string; agentId: string }>)
        .filter((r) => r.serviceName === 'orders-count')
        .map((r) => r.agentId),
    );
    assert.equal(servedBy.size, 2, 'the calls reached both agents, so per-agent budgets would have let 6 out');
    assert.equal(answers.filter((a) => a.status === 200).length, 3, `answers: ${JSON.stringify(answers)}`);
    assert.ok(
      answers.filter((a) => a.status !== 200).every((a) => a.status === 403 && a.code === 'INSITU_POLICY_BUDGET_SPENT'),
      JSON.stringify(answers),
    );
  });
});
