import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { waitFor } from '@insitu/core';
import { databaseTargets } from '@insitu/test-helpers';
import { type Api, type OrgWorld, expectStatus, makeOrg, startApi } from './fixtures.js';
import { HttpDispatcher, bundle, startTestApp, type TestApp } from './gateway-fixtures.js';

const manifest = (version: string, extra: Record<string, unknown> = {}) => ({
  name: 'sales-stats',
  version,
  runtime: 'node',
  entry: 'index.js',
  datasets: [{ provider: 'acme-data', dataset: 'public_sales' }],
  endpoints: [{ method: 'GET', path: '/totals', description: 'Sales totals per city' }],
  ...extra,
});

for (const target of databaseTargets()) {
  describe(`applications to services on ${target.dialect}`, () => {
    let api: Api;
    let acme: OrgWorld;
    let dev: OrgWorld;
    let other: OrgWorld;
    let appV1: TestApp;
    let appV2: TestApp;
    const dispatcher = new HttpDispatcher();
    let appId = '';
    let v1 = '';
    let deployment1 = '';
    let serviceId = '';
    let key = '';
    let keyId = '';

    const submit = (version: string, body: Buffer) =>
      api.call('POST', `/api/v1/apps/${appId}/versions`, {
        token: dev.tokens.developer,
        body: body as unknown as string,
        headers: { 'content-type': 'application/x-tar' },
      });
    const invoke = (path: string, options: { key?: string; method?: string; body?: string } = {}) =>
      api.app.inject({
        method: (options.method ?? 'GET') as 'GET',
        url: `/s/${path}`,
        headers: {
          authorization: `Bearer ${options.key ?? key}`,
          ...(options.body ? { 'content-type': 'application/json' } : {}),
        },
        ...(options.body ? { payload: options.body } : {}),
      });
    const report = async (deploymentId: string, state = 'running'): Promise<void> => {
      expectStatus(
        await api.call('PUT', '/api/v1/agents/self/status', {
          token: acme.tokens.agent,
          body: { deployments: [{ id: deploymentId, state, ready: 1, desired: 1 }] },
        }),
        204,
      );
    };

    before(async () => {
      api = await startApi(target, { gateway: { drainGraceMs: 300 }, audit: { flushIntervalMs: 50 } });
      api.app.insitu.setDispatcher(dispatcher);
      acme = await makeOrg(api, 'acme');
      dev = await makeOrg(api, 'devco');
      other = await makeOrg(api, 'otherco');
      appV1 = await startTestApp('v1');
      appV2 = await startTestApp('v2');
    });
    after(async () => {
      await api.close();
      await appV1.close();
      await appV2.close();
    });

    it('submits a version whose providers must approve it before it may run', async () => {
      appId = expectStatus(
        await api.call('POST', '/api/v1/apps', {
          token: dev.tokens.developer,
          body: { orgId: dev.orgId, name: 'sales-stats', description: 'Totals' },
        }),
        201,
      ).id;
      const code = 'import { serve } from "@insitu/sdk";\n// totals per city\n';
      const submitted = expectStatus(await submit('1.0.0', bundle(manifest('1.0.0'), { 'index.js': code })), 201);
      v1 = submitted.id;
      assert.equal(submitted.state, 'pending');
      assert.match(submitted.digest, /^[0-9a-f]{64}$/);
      assert.deepEqual(
        submitted.files.map((f: { path: string }) => f.path),
        ['index.js', 'insitu.json'],
      );
      assert.deepEqual(
        submitted.approvals.map((a: { providerName: string; state: string }) => [a.providerName, a.state]),
        [['acme-data', 'pending']],
      );

      const refused = await api.call('POST', '/api/v1/deployments', {
        token: dev.tokens.developer,
        body: { versionId: v1, providerId: acme.providerId },
      });
      assert.equal(JSON.parse(refused.body).error.code, 'INSITU_APP_NOT_APPROVED');

      const again = await submit('1.0.0', bundle(manifest('1.0.0')));
      assert.equal(JSON.parse(again.body).error.code, 'INSITU_CONFLICT', 'versions are immutable');
      const wrongName = await submit('1.0.1', bundle({ ...manifest('1.0.1'), name: 'other' }));
      assert.equal(JSON.parse(wrongName.body).error.code, 'INSITU_BUNDLE_INVALID');
      const missing = await submit(
        '1.0.2',
        bundle(manifest('1.0.2', { datasets: [{ provider: 'acme-data', dataset: 'private_payroll' }] })),
      );
      assert.equal(
        JSON.parse(missing.body).error.code,
        'INSITU_BUNDLE_INVALID',
        "another organisation's private dataset does not exist for the developer",
      );
      const noEntry = await submit('1.0.3', bundle({ ...manifest('1.0.3'), entry: 'main.js' }));
      assert.match(JSON.parse(noEntry.body).error.message, /entry main\.js is not a file/);
      const notTar = await api.call('POST', `/api/v1/apps/${appId}/versions`, {
        token: dev.tokens.developer,
        body: 'not a tarball at all',
        headers: { 'content-type': 'application/x-tar' },
      });
      assert.equal(JSON.parse(notTar.body).error.code, 'INSITU_BUNDLE_INVALID');
      const asUser = await api.call('POST', `/api/v1/apps/${appId}/versions`, {
        token: dev.tokens.user,
        body: bundle(manifest('1.0.4')) as unknown as string,
        headers: { 'content-type': 'application/x-tar' },
      });
      assert.equal(asUser.statusCode, 403);
    });

    it('shows the provider the manifest, file list and code, and records its approval', async () => {
      const pending = expectStatus(
        await api.call('GET', '/api/v1/approvals?state=pending', { token: acme.tokens.provider }),
        200,
      );
      assert.equal(pending.items.length, 1);
      const [request] = pending.items;
      assert.equal(request.appName, 'sales-stats');
      assert.deepEqual(
        expectStatus(await api.call('GET', '/api/v1/approvals?state=pending', { token: other.tokens.provider }), 200)
          .items,
        [],
        'other providers see nothing',
      );
      const detail = expectStatus(
        await api.call('GET', `/api/v1/approvals/${request.id}`, { token: acme.tokens.provider }),
        200,
      );
      assert.equal(detail.manifest.name, 'sales-stats');
      assert.match(detail.files.find((f: { path: string }) => f.path === 'index.js').text, /totals per city/);
      assert.equal(
        (await api.call('POST', `/api/v1/approvals/${request.id}/approve`, { token: dev.tokens.admin, body: {} }))
          .statusCode,
        403,
        'the developer sees the request but cannot approve its own app',
      );
      assert.equal(
        (await api.call('POST', `/api/v1/approvals/${request.id}/approve`, { token: acme.tokens.developer, body: {} }))
          .statusCode,
        403,
        'only the provider role decides',
      );
      expectStatus(
        await api.call('POST', `/api/v1/approvals/${request.id}/approve`, {
          token: acme.tokens.provider,
          body: { reason: 'reads only totals' },
        }),
        200,
      );
      const twice = await api.call('POST', `/api/v1/approvals/${request.id}/reject`, {
        token: acme.tokens.provider,
        body: { reason: 'changed my mind' },
      });
      assert.equal(JSON.parse(twice.body).error.code, 'INSITU_CONFLICT');
      const version = expectStatus(
        await api.call('GET', `/api/v1/apps/${appId}/versions/${v1}`, { token: dev.tokens.developer }),
        200,
      );
      assert.equal(version.state, 'approved');
    });

    it('deploys: the agent gets its desired state and the exact approved bundle, and reports status', async () => {
      const created = expectStatus(
        await api.call('POST', '/api/v1/deployments', {
          token: dev.tokens.developer,
          body: { versionId: v1, providerId: acme.providerId, replicas: 2 },
        }),
        201,
      );
      deployment1 = created.id;
      assert.equal(created.state, 'active');
      const desired = expectStatus(
        await api.call('GET', '/api/v1/agents/self/desired', { token: acme.tokens.agent }),
        200,
      );
      assert.equal(desired.deployments.length, 1);
      const [d] = desired.deployments;
      assert.deepEqual([d.app, d.version, d.replicas], ['sales-stats', '1.0.0', 2]);
      const blob = await api.call('GET', d.bundle, { token: acme.tokens.agent });
      assert.equal(blob.statusCode, 200);
      assert.equal(
        createHash('sha256').update(blob.rawPayload).digest('hex'),
        d.digest,
        'the bytes are the approved digest',
      );
      assert.equal(
        (await api.call('GET', d.bundle, { token: other.tokens.agent })).statusCode,
        404,
        'other providers cannot fetch it',
      );
      assert.deepEqual(
        expectStatus(await api.call('GET', '/api/v1/agents/self/desired', { token: other.tokens.agent }), 200)
          .deployments,
        [],
      );
      dispatcher.targets.set(deployment1, appV1.url);
      await report(deployment1, 'starting');
      const seen = expectStatus(
        await api.call('GET', `/api/v1/deployments/${deployment1}`, { token: acme.tokens.provider }),
        200,
      );
      assert.deepEqual(
        seen.agents.map((a: { agentId: string; state: string }) => [a.agentId, a.state]),
        [[acme.agentId, 'starting']],
      );
    });

    it('publishes a service that answers through the gateway with a key, streaming and metered', async () => {
      const service = expectStatus(
        await api.call('POST', '/api/v1/services', {
          token: dev.tokens.developer,
          body: { name: 'sales', appId, ratePerSecond: 1000, burst: 1000 },
        }),
        201,
      );
      serviceId = service.id;
      const created = expectStatus(
        await api.call('POST', '/api/v1/keys', {
          token: other.tokens.user,
          body: { orgId: other.orgId, name: 'reporting', services: ['sales'] },
        }),
        201,
      );
      key = created.key;
      keyId = created.id;
      assert.match(key, /^isu_key_/);
      assert.ok(
        !JSON.stringify(
          expectStatus(await api.call('GET', '/api/v1/keys', { token: other.tokens.user }), 200),
        ).includes(key),
        'keys are shown once',
      );

      const notRunning = await invoke('sales/totals');
      assert.equal(notRunning.statusCode, 503);
      assert.equal(JSON.parse(notRunning.body).error.code, 'INSITU_SERVICE_UNAVAILABLE');
      await report(deployment1, 'running');
      const answer = await invoke('sales/totals?city=Lyon');
      assert.equal(answer.statusCode, 200, answer.body);
      assert.deepEqual(JSON.parse(answer.body), { app: 'v1', method: 'GET', url: '/totals?city=Lyon', echo: '' });
      assert.equal(answer.headers['insitu-service-version'], '1.0.0');
      // The application's content-length frames the answer: not chunked, one write less per call (issue 12).
      assert.equal(answer.headers['content-length'], String(Buffer.byteLength(answer.body)));
      assert.equal(answer.headers['transfer-encoding'], undefined);
      const requestId = answer.headers['insitu-request-id'];
      assert.match(String(requestId), /^req_/);
      const seenByApp = appV1.requests.at(-1);
      assert.equal(seenByApp?.headers['insitu-request-id'], requestId);
      assert.equal(seenByApp?.headers.authorization, undefined, "the caller's key never reaches the application");
      assert.equal(seenByApp?.headers['insitu-caller-org'], other.orgId);
      const posted = await invoke('sales/v1/totals', { method: 'POST', body: '{"secret":"payload"}' });
      assert.equal(JSON.parse(posted.body).echo, '{"secret":"payload"}');
      assert.equal((await invoke('sales/v2/totals')).statusCode, 503, 'no 2.x runs');
      const doc = expectStatus(await invoke('sales/openapi.json'), 200);
      assert.deepEqual(Object.keys(doc.paths), ['/totals']);

      const usage = expectStatus(
        await api.call('GET', `/api/v1/usage?key=${keyId}&granularity=hour`, { token: other.tokens.user }),
        200,
      );
      const calls = usage.items.reduce((n: number, i: { calls: number }) => n + i.calls, 0);
      assert.equal(
        calls,
        4,
        'every call with a key is metered, refused ones included (the public OpenAPI document is not a call)',
      );
      // Latency percentiles per period from the usage rows' histogram: with fewer than 100 calls
      // p99 is the slowest call's bucket bound, so it is above the mean; p50 is at most p99.
      for (const item of usage.items as Array<{
        calls: number;
        avgDurationMs: number;
        p50Ms?: number;
        p99Ms?: number;
      }>) {
        if (item.calls === 0) continue;
        assert.equal(typeof item.p50Ms, 'number', JSON.stringify(item));
        assert.equal(typeof item.p99Ms, 'number', JSON.stringify(item));
        assert.ok((item.p50Ms ?? 0) <= (item.p99Ms ?? 0), JSON.stringify(item));
        assert.ok((item.p99Ms ?? 0) > item.avgDurationMs, JSON.stringify(item));
      }
      const audit = expectStatus(
        await api.call('GET', '/api/v1/audit?service=sales', { token: dev.tokens.developer }),
        200,
      );
      assert.equal(audit.items.length, 4);
      assert.ok(!JSON.stringify(audit).includes('payload'), 'the audit log never holds payloads');
      const ok = audit.items.find((r: { status: number; method: string }) => r.status === 200 && r.method === 'POST');
      assert.equal(ok.bytesIn, 20);
      assert.equal(ok.version, '1.0.0');
      const verified = expectStatus(await api.call('POST', '/api/v1/audit/verify', { token: api.adminToken }), 200);
      assert.deepEqual([verified.ok, verified.records], [true, 4]);

      // The application's own 404 keeps its body and carries the request id like every answer.
      const missing = await invoke('sales/missing');
      assert.equal(missing.statusCode, 404);
      assert.deepEqual(JSON.parse(missing.body), { app: 'v1', method: 'GET', url: '/missing', echo: '' });
      assert.match(String(missing.headers['insitu-request-id']), /^req_/);
      assert.equal(appV1.requests.at(-1)?.headers['insitu-request-id'], missing.headers['insitu-request-id']);
      // Every call counted once under its status class.
      const metrics = (await api.call('GET', '/metrics', { token: api.adminToken })).body;
      const count = (status: string) =>
        Number(new RegExp(`insitu_gateway_calls_total\\{status="${status}"\\} (\\d+)`).exec(metrics)?.[1]);
      assert.deepEqual([count('2xx'), count('4xx'), count('5xx')], [3, 1, 2], metrics);
    });

    it('refuses keys that are missing, unknown, unscoped, ungranted or revoked', async () => {
      assert.equal((await invoke('sales/totals', { key: 'isu_key_nope' })).statusCode, 401);
      assert.equal((await api.app.inject({ method: 'GET', url: '/s/sales/totals' })).statusCode, 401);
      assert.equal((await invoke('nosuch/totals')).statusCode, 404);
      expectStatus(
        await api.call('PATCH', `/api/v1/services/${serviceId}`, {
          token: dev.tokens.developer,
          body: { access: 'restricted' },
        }),
        200,
      );
      const forbidden = await invoke('sales/totals');
      assert.equal(forbidden.statusCode, 403);
      assert.equal(JSON.parse(forbidden.body).error.code, 'INSITU_KEY_FORBIDDEN');
      expectStatus(
        await api.call('POST', `/api/v1/services/${serviceId}/grants`, {
          token: dev.tokens.developer,
          body: { orgId: other.orgId },
        }),
        204,
      );
      assert.equal((await invoke('sales/totals')).statusCode, 200);
      const revoked = expectStatus(
        await api.call('POST', '/api/v1/keys', {
          token: other.tokens.user,
          body: { orgId: other.orgId, name: 'short-lived', services: [serviceId] },
        }),
        201,
      );
      assert.equal((await invoke('sales/totals', { key: revoked.key })).statusCode, 200);
      expectStatus(await api.call('DELETE', `/api/v1/keys/${revoked.id}`, { token: other.tokens.user }), 204);
      const gone = await invoke('sales/totals', { key: revoked.key });
      assert.equal(gone.statusCode, 401);
      assert.equal(JSON.parse(gone.body).error.code, 'INSITU_KEY_INVALID');
    });

    it('holds the rate limit and the daily quota under concurrent calls', async () => {
      expectStatus(
        await api.call('PATCH', `/api/v1/services/${serviceId}`, {
          token: dev.tokens.developer,
          body: { ratePerSecond: 1, burst: 5 },
        }),
        200,
      );
      const limited = expectStatus(
        await api.call('POST', '/api/v1/keys', {
          token: other.tokens.user,
          body: { orgId: other.orgId, name: 'burst', services: ['sales'] },
        }),
        201,
      );
      const results = await Promise.all(Array.from({ length: 30 }, () => invoke('sales/totals', { key: limited.key })));
      assert.equal(results.filter((r) => r.statusCode === 200).length, 5, 'exactly the burst is admitted');
      const refused = results.filter((r) => r.statusCode === 429);
      assert.equal(refused.length, 25);
      assert.ok(
        refused.every(
          (r) => JSON.parse(r.body).error.code === 'INSITU_RATE_LIMITED' && Number(r.headers['retry-after']) >= 1,
        ),
      );

      expectStatus(
        await api.call('PATCH', `/api/v1/services/${serviceId}`, {
          token: dev.tokens.developer,
          body: { ratePerSecond: 1000, burst: 1000, dailyQuota: 3 },
        }),
        200,
      );
      const quota = expectStatus(
        await api.call('POST', '/api/v1/keys', {
          token: other.tokens.user,
          body: { orgId: other.orgId, name: 'quota', services: ['sales'] },
        }),
        201,
      );
      const calls = await Promise.all(Array.from({ length: 12 }, () => invoke('sales/totals', { key: quota.key })));
      assert.equal(calls.filter((r) => r.statusCode === 200).length, 3, 'exactly the quota is admitted');
      const over = calls.find((r) => r.statusCode === 429);
      assert.equal(over && JSON.parse(over.body).error.code, 'INSITU_QUOTA_EXCEEDED');
      expectStatus(
        await api.call('PATCH', `/api/v1/services/${serviceId}`, {
          token: dev.tokens.developer,
          body: { dailyQuota: 1_000_000 },
        }),
        200,
      );
    });

    it('rolls to a new version without a gap: calls shift once it runs, then the old one drains', async () => {
      const v2 = expectStatus(await submit('2.0.0', bundle(manifest('2.0.0'))), 201);
      const [approval] = expectStatus(
        await api.call('GET', `/api/v1/approvals?state=pending`, { token: acme.tokens.provider }),
        200,
      ).items;
      expectStatus(
        await api.call('POST', `/api/v1/approvals/${approval.id}/approve`, { token: acme.tokens.provider, body: {} }),
        200,
      );
      const deployment2 = expectStatus(
        await api.call('POST', '/api/v1/deployments', {
          token: dev.tokens.developer,
          body: { versionId: v2.id, providerId: acme.providerId },
        }),
        201,
      ).id as string;
      dispatcher.targets.set(deployment2, appV2.url);
      assert.equal(
        expectStatus(await api.call('GET', `/api/v1/deployments/${deployment1}`, { token: dev.tokens.developer }), 200)
          .state,
        'draining',
      );
      const desired = expectStatus(
        await api.call('GET', '/api/v1/agents/self/desired', { token: acme.tokens.agent }),
        200,
      );
      assert.deepEqual(
        desired.deployments.map((d: { version: string; state: string }) => [d.version, d.state]).sort(),
        [
          ['1.0.0', 'draining'],
          ['2.0.0', 'active'],
        ],
      );
      assert.equal(JSON.parse((await invoke('sales/totals')).body).app, 'v1', 'still v1 while v2 starts');
      await api.call('PUT', '/api/v1/agents/self/status', {
        token: acme.tokens.agent,
        body: {
          deployments: [
            { id: deployment1, state: 'running', ready: 1, desired: 1 },
            { id: deployment2, state: 'running', ready: 1, desired: 1 },
          ],
        },
      });
      assert.equal(JSON.parse((await invoke('sales/totals')).body).app, 'v2', 'calls shift to v2 once it runs');
      assert.equal(
        JSON.parse((await invoke('sales/v1/totals')).body).app,
        'v1',
        'v1 stays callable by major while it drains',
      );
      await waitFor(
        async () =>
          expectStatus(
            await api.call('GET', `/api/v1/deployments/${deployment1}`, { token: dev.tokens.developer }),
            200,
          ).state === 'removed',
        { what: 'v1 to drain' },
      );
      const after = expectStatus(
        await api.call('GET', '/api/v1/agents/self/desired', { token: acme.tokens.agent }),
        200,
      );
      assert.deepEqual(
        after.deployments.map((d: { version: string }) => d.version),
        ['2.0.0'],
      );
      const events = expectStatus(
        await api.call('GET', '/api/v1/events?limit=100', { token: dev.tokens.developer }),
        200,
      );
      assert.ok(events.items.some((e: { kind: string }) => e.kind === 'deployment.drained'));
    });

    it('caps request bodies and detects an edited or deleted audit record', async () => {
      expectStatus(
        await api.call('PATCH', `/api/v1/services/${serviceId}`, {
          token: dev.tokens.developer,
          body: { maxRequestBytes: 10 },
        }),
        200,
      );
      const big = await invoke('sales/totals', { method: 'POST', body: '{"x":"0123456789"}' });
      assert.equal(big.statusCode, 413);
      assert.equal(JSON.parse(big.body).error.code, 'INSITU_BODY_TOO_LARGE');
      await api.app.insitu.recorder.flush();
      assert.equal(
        expectStatus(await api.call('POST', '/api/v1/audit/verify', { token: api.adminToken }), 200).ok,
        true,
      );
      await sql`UPDATE audit_log SET bytes_out = bytes_out + 1 WHERE seq = 3`.execute(api.store.db);
      const edited = expectStatus(await api.call('POST', '/api/v1/audit/verify', { token: api.adminToken }), 200);
      assert.deepEqual([edited.ok, edited.firstBroken?.seq], [false, 3]);
      assert.match(edited.firstBroken.reason, /edited/);
      await sql`UPDATE audit_log SET bytes_out = bytes_out - 1 WHERE seq = 3`.execute(api.store.db);
      assert.equal(
        expectStatus(await api.call('POST', '/api/v1/audit/verify', { token: api.adminToken }), 200).ok,
        true,
        'restored',
      );
      await sql`DELETE FROM audit_log WHERE seq = 5`.execute(api.store.db);
      const deleted = expectStatus(await api.call('POST', '/api/v1/audit/verify', { token: api.adminToken }), 200);
      assert.deepEqual([deleted.ok, deleted.firstBroken?.seq], [false, 6]);
      assert.match(deleted.firstBroken.reason, /deleted/);
      const last = await sql<{ seq: number }>`SELECT MAX(seq) AS seq FROM audit_log`.execute(api.store.db);
      await sql`DELETE FROM audit_log WHERE seq > 5`.execute(api.store.db);
      const truncated = expectStatus(await api.call('POST', '/api/v1/audit/verify', { token: api.adminToken }), 200);
      assert.equal(truncated.ok, false);
      assert.match(truncated.firstBroken.reason, /ends before its recorded head/);
      assert.equal(truncated.head.seq, Number(last.rows[0]?.seq));
    });
  });
}
