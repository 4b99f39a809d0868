import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  enrolmentToken,
  type InsituProcess,
  ok,
  runInsitu,
  startAgent,
  startPlatform,
  tunnelYaml,
  WORK_CONNECTION_MODES,
} from './support.js';

/*
 * The whole story, as new users would live it, with the real binaries: a platform
 * server, two agents of one provider dialling it through the reverse tunnel, and the
 * CLI and REST for everything else. Applications run in bubblewrap.
 */

const PASSWORD = 'a-long-enough-password';

/** A data application (node runtime, SDK): totals per region, and which instance answered. */
async function writeApp(dir: string, version: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'insitu.json'),
    JSON.stringify({
      name: 'region-totals',
      version,
      runtime: 'node',
      entry: 'index.js',
      datasets: [{ provider: 'acme-data', dataset: 'orders' }],
      endpoints: [
        { method: 'GET', path: '/totals' },
        { method: 'GET', path: '/whoami' },
      ],
    }),
  );
  await writeFile(
    join(dir, 'index.js'),
    `import { randomUUID } from 'node:crypto';
import { readDataset, serve } from '@insitu/sdk';
const instance = randomUUID();
console.log('region-totals ' + ${JSON.stringify(version)} + ' listening');
serve({
  'GET /totals': async () => {
    const out = {};
    for await (const row of readDataset('orders', { groupBy: ['region'], aggregates: [{ fn: 'sum', column: 'amount', as: 'total' }], orderBy: 'region' })) out[row.region] = Number(row.total);
    return { version: ${JSON.stringify(version)}, totals: out };
  },
  'GET /whoami': () => ({ version: ${JSON.stringify(version)}, instance }),
});
`,
  );
}

for (const workConnections of WORK_CONNECTION_MODES)
  describe(`from application to data service, end to end (work connections: ${workConnections})`, () => {
    let dir = '';
    let server: InsituProcess;
    const agents: InsituProcess[] = [];
    let url = '';
    let adminToken = '';
    let acme = { orgId: '', token: '', providerId: '' };
    let dev = { orgId: '', token: '' };
    let versionId = '';
    let appId = '';
    let key = '';
    let keyId = '';
    let deploymentId = '';

    const cli = (args: string[], token: string) => runInsitu([...args, '--url', url, '--token', token]);
    const call = (path: string, apiKey = key) =>
      fetch(`${url}/s/regions/${path}`, {
        headers: { authorization: `Bearer ${apiKey}` },
        signal: AbortSignal.timeout(30_000),
      });

    before(async () => {
      dir = await makeTempDir('insitu-e2e-');
      const db = new BetterSqlite3(join(dir, 'orders.db'));
      db.exec(
        'CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount REAL NOT NULL, customer_email TEXT)',
      );
      const insert = db.prepare('INSERT INTO orders (region, amount, customer_email) VALUES (?, ?, ?)');
      db.transaction(() => {
        for (let i = 0; i < 300; i++)
          insert.run(['north', 'south', 'east'][i % 3], (i % 7) + 0.5, `buyer${i}@private.example`);
      })();
      db.close();
      await writeFile(
        join(dir, 'agent.yaml'),
        'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\n    datasets:\n      orders: { description: Orders with the region and amount, tags: [sales] }\n' +
          tunnelYaml(workConnections),
      );

      ({ server, url, adminToken } = await startPlatform(dir));
    });

    after(async () => {
      for (const agent of agents) await agent.stop();
      await server?.stop();
      await removeDir(dir);
    });

    it('signs up a provider and a developer organisation, approved by the platform admin', async () => {
      for (const [name, email] of [
        ['acme', 'ann@acme.test'],
        ['devco', 'dev@devco.test'],
      ] as const) {
        const signup = await ok(
          url,
          'POST',
          '/api/v1/signup',
          undefined,
          { org: { name }, user: { email, name, password: PASSWORD } },
          201,
        );
        assert.equal(signup.org.status, 'pending');
        await ok(url, 'POST', `/api/v1/orgs/${signup.org.id}/approve`, adminToken, undefined);
        if (name === 'acme') acme = { orgId: signup.org.id, token: signup.session.token, providerId: '' };
        else dev = { orgId: signup.org.id, token: signup.session.token };
      }
      acme.providerId = (
        await ok(url, 'POST', '/api/v1/providers', acme.token, { orgId: acme.orgId, name: 'acme-data' }, 201)
      ).id;
    });

    it('enrols two agents with a SQLite source; the catalog shows metadata only', async () => {
      for (const name of ['agent-a', 'agent-b']) {
        agents.push(await startAgent(dir, url, await enrolmentToken(url, acme), { name }));
      }
      const found = await ok(url, 'GET', '/api/v1/datasets?q=region%20amount', dev.token, undefined);
      assert.deepEqual(
        found.items.map((d: { name: string; providerName: string }) => `${d.providerName}/${d.name}`),
        ['acme-data/orders'],
      );
      assert.equal(found.items[0].rowCount, 300);
      assert.ok(!JSON.stringify(found).includes('private.example'), 'no row value reaches the catalog');
      const sessions = (await ok(url, 'GET', '/api/v1/cluster', adminToken, undefined)).tunnel.sessions;
      assert.equal(
        new Set(sessions.map((s: { agentId: string }) => s.agentId)).size,
        2,
        'both agents hold a tunnel session',
      );
    });

    it('submits an application that cannot run until the provider approves it', async () => {
      await writeApp(join(dir, 'app-v1'), '1.0.0');
      const submitted = await cli(['app', 'submit', join(dir, 'app-v1'), '--org', dev.orgId, '--json'], dev.token);
      assert.equal(submitted.code, 0, submitted.stderr);
      const version = JSON.parse(submitted.stdout) as { id: string; appId: string; state: string };
      versionId = version.id;
      appId = version.appId;
      assert.equal(version.state, 'pending');
      const blocked = await cli(['app', 'deploy', versionId, '--provider', 'acme-data'], dev.token);
      assert.equal(blocked.code, 1);
      assert.match(blocked.stderr, /\[INSITU_APP_NOT_APPROVED\]/);
      const review = await ok(url, 'GET', '/api/v1/approvals?state=pending', acme.token, undefined);
      assert.equal(review.items.length, 1);
      const approved = await cli(['app', 'approve', versionId, '--reason', 'reads only totals'], acme.token);
      assert.equal(approved.code, 0, approved.stderr);
    });

    it('deploys to both agents, publishes, and serves computed answers through the tunnel', async () => {
      const deployed = await cli(
        ['app', 'deploy', versionId, '--provider', 'acme-data', '--wait', '--json'],
        dev.token,
      );
      assert.equal(deployed.code, 0, deployed.stderr);
      deploymentId = (JSON.parse(deployed.stdout) as { id: string }).id;
      await waitFor(
        async () => {
          const d = await ok(url, 'GET', `/api/v1/deployments/${deploymentId}`, dev.token, undefined);
          return d.agents.filter((a: { state: string }) => a.state === 'running').length === 2;
        },
        { timeoutMs: 60_000, what: 'both agents to run the deployment' },
      );
      assert.equal(
        (await cli(['service', 'publish', 'regions', '--app', appId, '--rate', '1000', '--burst', '1000'], dev.token))
          .code,
        0,
      );
      const created = await cli(
        ['key', 'create', '--org', dev.orgId, '--service', 'regions', '--name', 'e2e', '--json'],
        dev.token,
      );
      assert.equal(created.code, 0, created.stderr);
      ({ key, id: keyId } = JSON.parse(created.stdout) as { key: string; id: string });

      const invoked = await runInsitu(['service', 'invoke', 'regions', 'totals', '--key', key, '--url', url]);
      assert.equal(invoked.code, 0, invoked.stderr);
      const answer = JSON.parse(invoked.stdout) as { version: string; totals: Record<string, number> };
      assert.equal(answer.version, '1.0.0');
      const expected = { east: 0, north: 0, south: 0 } as Record<string, number>;
      for (let i = 0; i < 300; i++) {
        const region = ['north', 'south', 'east'][i % 3] ?? '';
        expected[region] = (expected[region] ?? 0) + (i % 7) + 0.5;
      }
      assert.deepEqual(answer.totals, expected);
      assert.ok(!invoked.stdout.includes('private.example'), 'rows stay at the provider');

      const instances = new Set<string>();
      await waitFor(
        async () => {
          const response = await call('whoami');
          instances.add(((await response.json()) as { instance: string }).instance);
          return instances.size >= 2;
        },
        // The balancer prefers the agent that answered faster until latencies converge (EWMA decay, 10 s).
        { timeoutMs: 60_000, intervalMs: 50, what: 'calls to reach both agents' },
      );
    });

    // Issue 14: the application's own output, streamed from the agent, when the provider allows it.
    it("shows the application's output to its developers only when the provider allows it", async () => {
      const refused = await cli(['app', 'logs', deploymentId, '--lines', '5'], dev.token);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /INSITU_FORBIDDEN/);

      const own = await cli(['app', 'logs', deploymentId, '--lines', '5', '--json'], acme.token);
      assert.equal(own.code, 0, own.stderr);
      const lines = own.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { instance: string; stream: string; line: string });
      assert.ok(
        lines.some((l) => l.stream === 'stdout' && l.line === 'region-totals 1.0.0 listening'),
        own.stdout,
      );

      assert.equal((await cli(['app', 'logs', deploymentId, '--allow'], acme.token)).code, 0);
      const allowed = await cli(['app', 'logs', deploymentId, '--lines', '5'], dev.token);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stdout, /region-totals 1\.0\.0 listening/);

      // --follow: the last lines at once, then the answer stays open until the caller leaves.
      const abort = new AbortController();
      const response = await fetch(`${url}/api/v1/deployments/${deploymentId}/logs?lines=1&follow=true`, {
        headers: { authorization: `Bearer ${dev.token}` },
        signal: abort.signal,
      });
      assert.equal(response.status, 200);
      const reader = response.body?.getReader();
      const first = await reader?.read();
      assert.match(new TextDecoder().decode(first?.value), /listening/);
      abort.abort();
      await reader?.cancel().catch(() => undefined);

      assert.equal((await cli(['app', 'logs', deploymentId, '--deny'], acme.token)).code, 0);
      assert.notEqual((await cli(['app', 'logs', deploymentId], dev.token)).code, 0);
    });

    it('meters every call, audits it without payloads, and the audit chain verifies', async () => {
      const usage = await ok(url, 'GET', `/api/v1/usage?key=${keyId}&granularity=hour`, dev.token, undefined);
      const calls = usage.items.reduce((n: number, i: { calls: number }) => n + i.calls, 0);
      assert.ok(calls >= 3, `metered ${calls} calls`);
      const records: Array<{ agentId: string; version: string }> = [];
      let before: number | undefined;
      do {
        const page = await ok(
          url,
          'GET',
          `/api/v1/audit?service=regions&limit=1000${before ? `&before=${before}` : ''}`,
          acme.token,
          undefined,
        );
        records.push(...page.items);
        before = page.nextBefore;
      } while (before);
      assert.equal(records.length, calls, 'the provider sees an audit record of every call that ran at its agents');
      assert.ok(records.every((r) => r.agentId.startsWith('agt_') && r.version === '1.0.0'));
      const verified = await cli(['audit', 'verify', '--json'], adminToken);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.equal((JSON.parse(verified.stdout) as { ok: boolean }).ok, true);
    });

    it('rolls to version 2 while calls continue: each succeeds or fails with a code, none hangs', async () => {
      await writeApp(join(dir, 'app-v2'), '2.0.0');
      const v2 = JSON.parse(
        (await cli(['app', 'submit', join(dir, 'app-v2'), '--org', dev.orgId, '--json'], dev.token)).stdout,
      ) as { id: string };
      assert.equal((await cli(['app', 'approve', v2.id], acme.token)).code, 0);
      const outcomes: string[] = [];
      let calling = true;
      const caller = (async () => {
        while (calling) {
          const started = Date.now();
          const response = await call('whoami');
          const body = (await response.json()) as { version?: string; error?: { code: string } };
          assert.ok(Date.now() - started < 30_000, 'no call hangs');
          outcomes.push(response.ok ? `ok ${body.version}` : `error ${body.error?.code}`);
        }
      })();
      assert.equal((await cli(['app', 'deploy', v2.id, '--provider', 'acme-data', '--wait'], dev.token)).code, 0);
      await waitFor(async () => ((await (await call('whoami')).json()) as { version: string }).version === '2.0.0', {
        timeoutMs: 60_000,
        what: 'calls to reach 2.0.0',
      });
      calling = false;
      await caller;
      const errors = outcomes.filter((o) => o.startsWith('error'));
      assert.ok(
        errors.every((e) => /^error INSITU_[A-Z_]+$/.test(e)),
        `errors carry codes: ${errors.join(', ')}`,
      );
      assert.ok(
        outcomes.includes('ok 1.0.0') && outcomes.includes('ok 2.0.0'),
        'calls were answered by both versions during the roll',
      );
    });

    it('keeps serving when an agent dies and comes back', async () => {
      const [first] = agents;
      assert.ok(first);
      await first.stop('SIGKILL');
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const response = await call('whoami');
          const text = await response.text();
          return { status: response.status, code: /"code":"(INSITU_[A-Z_]+)"/.exec(text)?.[1] ?? '' };
        }),
      );
      const during = answers.map((a) => a.status);
      const seen = answers.map((a) => `${a.status} ${a.code}`).join(', ');
      assert.ok(
        during.every((s) => s === 200 || s === 502 || s === 503),
        `statuses: ${seen}`,
      );
      assert.ok(during.includes(200), `the other agent keeps serving; answers: ${seen}`);
      agents.push(await startAgent(dir, url, undefined, { name: 'agent-a' }));
      await waitFor(
        async () => (await ok(url, 'GET', '/api/v1/cluster', adminToken, undefined)).tunnel.sessions.length >= 2,
        { timeoutMs: 30_000, what: 'the agent to reconnect' },
      );
    });

    it('refuses a revoked key with 401', async () => {
      assert.equal((await call('totals')).status, 200);
      await ok(url, 'DELETE', `/api/v1/keys/${keyId}`, dev.token, undefined, 204);
      const refused = await call('totals');
      assert.equal(refused.status, 401);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'INSITU_KEY_INVALID');
    });

    it('detects a tampered audit record', async () => {
      const db = new BetterSqlite3(join(dir, 'platform', 'platform.db'));
      try {
        db.prepare('UPDATE audit_log SET status = 500 WHERE seq = (SELECT MIN(seq) FROM audit_log)').run();
      } finally {
        db.close();
      }
      const verified = await runInsitu(['audit', 'verify', '--data-dir', join(dir, 'platform'), '--json']);
      assert.equal(verified.code, 1);
      const result = JSON.parse(verified.stdout) as { ok: boolean; firstBroken: { seq: number; reason: string } };
      assert.equal(result.ok, false);
      assert.match(result.firstBroken.reason, /edited/);
    });
  });
