import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { databaseTargets, makeTempDir, removeDir } from '@insitu/test-helpers';
import { type Api, type OrgWorld, enrolAgent, expectStatus, makeOrg, startApi } from './fixtures.js';
import { bundle } from './gateway-fixtures.js';

const manifest = (version: string, extra: Record<string, unknown> = {}) => ({
  name: 'sales-report',
  version,
  runtime: 'node',
  entry: 'index.js',
  kind: 'job',
  datasets: [{ provider: 'acme-data', dataset: 'public_sales' }],
  ...extra,
});

/** The provider lets this version's output lines out and takes only JSON and CSV results. */
const JOB_POLICY = { jobPolicy: { shareLogs: true, results: { extensions: ['json', 'csv'] } } };

for (const target of databaseTargets())
  for (const storage of ['database', 'directory'] as const) {
    describe(`jobs on ${target.dialect}, results in the ${storage}`, () => {
      let resultsDir: string | undefined;
      let api: Api;
      let acme: OrgWorld;
      let dev: OrgWorld;
      let other: OrgWorld;
      let appId = '';
      let jobVersion = '';
      let serviceVersion = '';
      let secondAgent = '';

      const approveAll = async (body: Record<string, unknown> = JOB_POLICY) => {
        const pending = expectStatus(
          await api.call('GET', '/api/v1/approvals?state=pending', { token: acme.tokens.provider }),
          200,
        );
        for (const item of pending.items)
          expectStatus(
            await api.call('POST', `/api/v1/approvals/${item.id}/approve`, { token: acme.tokens.provider, body }),
            200,
          );
      };
      const submitVersion = async (m: Record<string, unknown>) =>
        expectStatus(
          await api.call('POST', `/api/v1/apps/${appId}/versions`, {
            token: dev.tokens.developer,
            body: bundle(m) as unknown as string,
            headers: { 'content-type': 'application/x-tar' },
          }),
          201,
        ).id as string;
      const submitJob = (token: string, body: Record<string, unknown>) =>
        api.call('POST', '/api/v1/jobs', { token, body });
      const upload = (token: string, jobId: string, name: string, data: Buffer) =>
        api.app.inject({
          method: 'PUT',
          url: `/api/v1/agents/self/jobs/${jobId}/results/${name}`,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
          payload: data,
        });

      before(async () => {
        resultsDir = storage === 'directory' ? await makeTempDir('insitu-job-results-') : undefined;
        api = await startApi(target, {
          jobs: { maxActivePerOrg: 3, maxResultBytes: 1024, retentionHours: 1, ...(resultsDir ? { resultsDir } : {}) },
        });
        acme = await makeOrg(api, 'acme');
        dev = await makeOrg(api, 'devco');
        other = await makeOrg(api, 'otherco');
        secondAgent = (await enrolAgent(api, acme.tokens.provider, acme.providerId, 'acme-agent-2')).credential;
        appId = expectStatus(
          await api.call('POST', '/api/v1/apps', {
            token: dev.tokens.developer,
            body: { orgId: dev.orgId, name: 'sales-report', description: 'a report' },
          }),
          201,
        ).id;
        jobVersion = await submitVersion(manifest('1.0.0'));
        serviceVersion = await submitVersion(
          manifest('1.1.0', { kind: 'service', endpoints: [{ method: 'GET', path: '/x' }] }),
        );
      });
      after(async () => {
        await api.close();
        if (resultsDir) await removeDir(resultsDir);
      });

      it('refuses a version not yet approved, and one that is not a job', async () => {
        const pending = await submitJob(dev.tokens.developer, { versionId: jobVersion, providerId: acme.providerId });
        assert.equal(JSON.parse(pending.body).error.code, 'INSITU_APP_NOT_APPROVED');
        await approveAll();
        const service = await submitJob(dev.tokens.developer, {
          versionId: serviceVersion,
          providerId: acme.providerId,
        });
        assert.equal(service.statusCode, 409);
        assert.equal(JSON.parse(service.body).error.code, 'INSITU_JOB_NOT_A_JOB');
      });

      it('validates the body and hides the application from other organisations', async () => {
        const extra = await submitJob(dev.tokens.developer, {
          versionId: jobVersion,
          providerId: acme.providerId,
          bogus: 1,
        });
        assert.equal(extra.statusCode, 400);
        const hidden = await submitJob(other.tokens.developer, { versionId: jobVersion, providerId: acme.providerId });
        assert.equal(hidden.statusCode, 404, 'another organisation cannot run (or see) the application');
        const wrongProvider = await submitJob(dev.tokens.developer, {
          versionId: jobVersion,
          providerId: other.providerId,
        });
        assert.equal(JSON.parse(wrongProvider.body).error.code, 'INSITU_VALIDATION');
        const big = await submitJob(dev.tokens.developer, {
          versionId: jobVersion,
          providerId: acme.providerId,
          args: { blob: 'x'.repeat(70_000) },
        });
        assert.equal(big.statusCode, 400);
      });

      it('queues, runs at one agent, takes results only from that agent, and ends with a reason', async () => {
        const job = expectStatus(
          await submitJob(dev.tokens.user, {
            versionId: jobVersion,
            providerId: acme.providerId,
            args: { year: 2025 },
          }),
          201,
        );
        assert.equal(job.state, 'queued');
        assert.deepEqual(job.args, { year: 2025 });
        const seen = expectStatus(await api.call('GET', '/api/v1/agents/self/jobs', { token: acme.tokens.agent }), 200);
        assert.deepEqual(
          seen.jobs.map((j: { id: string; state: string }) => [j.id, j.state]),
          [[job.id, 'queued']],
        );
        assert.deepEqual(
          expectStatus(await api.call('GET', '/api/v1/agents/self/jobs', { token: other.tokens.agent }), 200).jobs,
          [],
          "another provider's agent sees nothing",
        );
        assert.equal(
          (await api.call('POST', `/api/v1/agents/self/jobs/${job.id}/claim`, { token: other.tokens.agent }))
            .statusCode,
          404,
        );
        expectStatus(
          await api.call('POST', `/api/v1/agents/self/jobs/${job.id}/claim`, { token: acme.tokens.agent }),
          204,
        );
        assert.equal(
          (await api.call('POST', `/api/v1/agents/self/jobs/${job.id}/claim`, { token: secondAgent })).statusCode,
          409,
          'one agent runs a job',
        );
        assert.equal(
          expectStatus(await api.call('GET', `/api/v1/jobs/${job.id}`, { token: dev.tokens.developer }), 200).state,
          'running',
        );
        assert.deepEqual(
          seen.jobs[0].policy,
          JOB_POLICY.jobPolicy,
          "the agent hears what the version's approval lets out",
        );
        const bin = await upload(acme.tokens.agent, job.id, 'dump.bin', Buffer.from('raw'));
        assert.equal(bin.statusCode, 413, "the platform checks the approval's result types again");
        assert.equal(JSON.parse(bin.body).error.code, 'INSITU_JOB_RESULT_REFUSED');
        assert.equal((await upload(secondAgent, job.id, 'totals.json', Buffer.from('{}'))).statusCode, 409);
        assert.equal((await upload(acme.tokens.agent, job.id, '..%2Fescape', Buffer.from('x'))).statusCode, 400);
        assert.equal((await upload(acme.tokens.agent, job.id, 'big.json', Buffer.alloc(2048))).statusCode, 413);
        assert.equal(
          (await upload(acme.tokens.agent, job.id, 'totals.json', Buffer.from('{"sum":42}'))).statusCode,
          204,
        );
        expectStatus(
          await api.call('PUT', `/api/v1/agents/self/jobs/${job.id}/report`, {
            token: acme.tokens.agent,
            body: { state: 'succeeded', reason: 'exited with code 0', exitCode: 0, logs: ['summed 3 rows'] },
          }),
          204,
        );
        const done = expectStatus(await api.call('GET', `/api/v1/jobs/${job.id}`, { token: dev.tokens.user }), 200);
        assert.equal(done.state, 'succeeded');
        assert.equal(done.reason, 'exited with code 0');
        assert.ok(done.startedAt && done.finishedAt && done.expiresAt);
        assert.deepEqual(
          done.results.map((r: { name: string; size: number }) => [r.name, r.size]),
          [['totals.json', 10]],
        );
        const file = await api.call('GET', `/api/v1/jobs/${job.id}/results/totals.json`, { token: dev.tokens.user });
        assert.equal(file.statusCode, 200);
        assert.equal(file.body, '{"sum":42}');
        assert.deepEqual(
          expectStatus(await api.call('GET', `/api/v1/jobs/${job.id}/logs`, { token: dev.tokens.user }), 200).lines,
          ['summed 3 rows'],
        );

        // The provider sees the state, never the results.
        const asProvider = expectStatus(
          await api.call('GET', `/api/v1/jobs/${job.id}`, { token: acme.tokens.provider }),
          200,
        );
        assert.equal(asProvider.state, 'succeeded');
        assert.equal(asProvider.results, undefined);
        assert.equal(asProvider.args, null);
        assert.equal(
          (await api.call('GET', `/api/v1/jobs/${job.id}/results/totals.json`, { token: acme.tokens.provider }))
            .statusCode,
          403,
        );
        // Other organisations: the job does not exist.
        assert.equal((await api.call('GET', `/api/v1/jobs/${job.id}`, { token: other.tokens.admin })).statusCode, 404);
        assert.equal(
          (await api.call('GET', `/api/v1/jobs/${job.id}/results/totals.json`, { token: other.tokens.admin }))
            .statusCode,
          404,
        );
        // An ended job cannot be reported again or cancelled.
        assert.equal(
          (
            await api.call('PUT', `/api/v1/agents/self/jobs/${job.id}/report`, {
              token: acme.tokens.agent,
              body: { state: 'failed', reason: 'again' },
            })
          ).statusCode,
          409,
        );
        assert.equal(
          (await api.call('POST', `/api/v1/jobs/${job.id}/cancel`, { token: dev.tokens.user })).statusCode,
          409,
        );
        // The audit log holds the job like a call.
        const audit = expectStatus(await api.call('GET', '/api/v1/audit', { token: dev.tokens.admin }), 200);
        assert.ok(JSON.stringify(audit).includes(job.id), 'the ended job is in the audit log');
      });

      it('cancels a queued job, counts the quota per organisation, and a cancelled job leaves the agent list', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++)
          ids.push(
            expectStatus(
              await submitJob(dev.tokens.developer, { versionId: jobVersion, providerId: acme.providerId }),
              201,
            ).id,
          );
        const over = await submitJob(dev.tokens.developer, { versionId: jobVersion, providerId: acme.providerId });
        assert.equal(over.statusCode, 429);
        assert.equal(JSON.parse(over.body).error.code, 'INSITU_JOB_QUOTA_EXCEEDED');
        assert.equal(
          (await api.call('POST', `/api/v1/jobs/${ids[0]}/cancel`, { token: other.tokens.admin })).statusCode,
          404,
        );
        assert.equal(
          (await api.call('POST', `/api/v1/jobs/${ids[0]}/cancel`, { token: acme.tokens.user })).statusCode,
          403,
          'a member of the provider without the provider role sees the job but may not cancel it',
        );
        const cancelled = expectStatus(
          await api.call('POST', `/api/v1/jobs/${ids[0]}/cancel`, { token: dev.tokens.developer }),
          200,
        );
        assert.equal(cancelled.state, 'cancelled');
        assert.match(cancelled.reason, /cancelled by the submitter/);
        // The provider may stop code on its premises.
        const byProvider = expectStatus(
          await api.call('POST', `/api/v1/jobs/${ids[1]}/cancel`, { token: acme.tokens.provider }),
          200,
        );
        assert.match(byProvider.reason, /cancelled by the provider acme-data/);
        const agentView = expectStatus(
          await api.call('GET', '/api/v1/agents/self/jobs', { token: acme.tokens.agent }),
          200,
        );
        assert.deepEqual(
          agentView.jobs.map((j: { id: string }) => j.id),
          [ids[2]],
        );
        expectStatus(
          await submitJob(dev.tokens.developer, { versionId: jobVersion, providerId: acme.providerId }),
          201,
        );
        const list = expectStatus(
          await api.call('GET', '/api/v1/jobs?state=cancelled', { token: dev.tokens.user }),
          200,
        );
        assert.deepEqual(new Set(list.items.map((j: { id: string }) => j.id)), new Set([ids[0], ids[1]]));
        assert.deepEqual(
          expectStatus(await api.call('GET', '/api/v1/jobs', { token: other.tokens.admin }), 200).items,
          [],
        );
      });

      it("refuses the logs when the version's approval did not let them out, whatever the agent sends", async () => {
        const quiet = await submitVersion(manifest('1.2.0'));
        await approveAll({});
        const approval = expectStatus(
          await api.call('GET', '/api/v1/approvals?state=approved', { token: acme.tokens.provider }),
          200,
        ).items.find((a: { versionId: string }) => a.versionId === quiet);
        assert.equal(approval.jobPolicy, undefined, 'approved without a job policy');
        const job = expectStatus(
          await submitJob(dev.tokens.admin, { versionId: quiet, providerId: acme.providerId }),
          201,
        ).id as string;
        const listed = expectStatus(
          await api.call('GET', '/api/v1/agents/self/jobs', { token: acme.tokens.agent }),
          200,
        ).jobs.find((j: { id: string }) => j.id === job);
        assert.equal(listed.policy, undefined, 'the agent hears of no sharing');
        expectStatus(
          await api.call('POST', `/api/v1/agents/self/jobs/${job}/claim`, { token: acme.tokens.agent }),
          204,
        );
        expectStatus(
          await api.call('PUT', `/api/v1/agents/self/jobs/${job}/report`, {
            token: acme.tokens.agent,
            body: { state: 'refused', reason: 'result out.bin: extension bin is not allowed', logs: ['secret row 1'] },
          }),
          204,
        );
        const row = expectStatus(await api.call('GET', `/api/v1/jobs/${job}`, { token: dev.tokens.user }), 200);
        assert.equal(row.state, 'refused');
        assert.equal(row.logsShared, false);
        const logs = await api.call('GET', `/api/v1/jobs/${job}/logs`, { token: dev.tokens.user });
        assert.equal(logs.statusCode, 403);
      });

      it('meters ended jobs per organisation, provider and version, once each, like the audit log', async () => {
        type Usage = { items: Array<Record<string, number | string>> };
        const usage = async (token: string, query = `version=${jobVersion}&groupBy=version`) =>
          expectStatus(await api.call('GET', `/api/v1/usage/jobs?${query}`, { token }), 200) as Usage;
        const total = (u: Usage, field: string) => u.items.reduce((n, i) => n + Number(i[field] ?? 0), 0);
        const before = await usage(dev.tokens.user);

        const ran = expectStatus(
          await submitJob(dev.tokens.user, { versionId: jobVersion, providerId: acme.providerId, args: { n: 7 } }),
          201,
        ).id as string;
        expectStatus(
          await api.call('POST', `/api/v1/agents/self/jobs/${ran}/claim`, { token: acme.tokens.agent }),
          204,
        );
        assert.equal((await upload(acme.tokens.agent, ran, 'a.json', Buffer.from('[1,2,3]'))).statusCode, 204);
        assert.equal((await upload(acme.tokens.agent, ran, 'b.csv', Buffer.from('x\n1\n'))).statusCode, 204);
        expectStatus(
          await api.call('PUT', `/api/v1/agents/self/jobs/${ran}/report`, {
            token: acme.tokens.agent,
            body: { state: 'succeeded', reason: 'exited with code 0', exitCode: 0, cpuTimeMs: 1234 },
          }),
          204,
        );
        // A repeated report changes nothing: the job is counted once.
        await api.call('PUT', `/api/v1/agents/self/jobs/${ran}/report`, {
          token: acme.tokens.agent,
          body: { state: 'succeeded', reason: 'again', exitCode: 0, cpuTimeMs: 99 },
        });
        const queuedThenCancelled = expectStatus(
          await submitJob(dev.tokens.user, { versionId: jobVersion, providerId: acme.providerId }),
          201,
        ).id as string;
        expectStatus(
          await api.call('POST', `/api/v1/jobs/${queuedThenCancelled}/cancel`, { token: dev.tokens.user }),
          200,
        );
        assert.equal(
          expectStatus(await api.call('GET', `/api/v1/jobs/${ran}`, { token: dev.tokens.user }), 200).cpuTimeMs,
          1234,
        );

        const after = await usage(dev.tokens.user);
        assert.ok(after.items.every((i) => i.versionId === jobVersion));
        const delta = (field: string) => total(after, field) - total(before, field);
        assert.deepEqual(
          Object.fromEntries(
            [
              'runs',
              'succeeded',
              'cancelled',
              'failed',
              'cpuTimeMs',
              'cpuMeasuredRuns',
              'resultFiles',
              'resultBytes',
            ].map((f) => [f, delta(f)]),
          ),
          {
            runs: 2,
            succeeded: 1,
            cancelled: 1,
            failed: 0,
            cpuTimeMs: 1234,
            cpuMeasuredRuns: 1,
            resultFiles: 2,
            resultBytes: 7 + 4,
          },
        );
        assert.equal(delta('argsBytes'), Buffer.byteLength('{"n":7}') + Buffer.byteLength('null'));
        assert.ok(delta('wallTimeMs') >= 0);

        // The provider sees the jobs run at its agents; another organisation sees nothing.
        const asProvider = await usage(acme.tokens.provider, 'groupBy=provider');
        assert.deepEqual(
          [...new Set(asProvider.items.map((i) => i.providerId))],
          [acme.providerId],
          "the provider's own jobs only",
        );
        assert.equal(total(asProvider, 'runs'), total(await usage(dev.tokens.user, 'groupBy=org'), 'runs'));
        assert.deepEqual((await usage(other.tokens.admin, '')).items, []);
        const byOrg = await usage(dev.tokens.user, 'groupBy=org');
        assert.deepEqual([...new Set(byOrg.items.map((i) => i.orgId))], [dev.orgId]);

        // Metering equals the audit log: one JOB record per counted run.
        const audit = expectStatus(await api.call('GET', '/api/v1/audit?limit=1000', { token: dev.tokens.admin }), 200);
        const jobRecords = audit.items.filter((r: { method: string }) => r.method === 'JOB').length;
        assert.equal(total(byOrg, 'runs'), jobRecords);
        assert.equal(
          (await api.call('GET', '/api/v1/usage/jobs?groupBy=key', { token: dev.tokens.user })).statusCode,
          400,
        );
      });

      it('keeps results for the retention period, then the sweep deletes them and the API answers 410', async () => {
        const job = expectStatus(
          await submitJob(dev.tokens.user, { versionId: jobVersion, providerId: acme.providerId }),
          201,
        ).id as string;
        expectStatus(
          await api.call('POST', `/api/v1/agents/self/jobs/${job}/claim`, { token: acme.tokens.agent }),
          204,
        );
        assert.equal((await upload(acme.tokens.agent, job, 'kept.json', Buffer.from('{"n":1}'))).statusCode, 204);
        expectStatus(
          await api.call('PUT', `/api/v1/agents/self/jobs/${job}/report`, {
            token: acme.tokens.agent,
            body: { state: 'succeeded', reason: 'exited with code 0', exitCode: 0 },
          }),
          204,
        );
        const stored = await api.store.db
          .selectFrom('job_results')
          .select(['data', 'digest'])
          .where('job_id', '=', job)
          .executeTakeFirstOrThrow();
        if (resultsDir) {
          assert.equal(stored.data, null, 'with a results directory the database holds no bytes');
          assert.equal(readFileSync(join(resultsDir, job, stored.digest), 'utf8'), '{"n":1}');
          assert.deepEqual(readdirSync(join(resultsDir, job)), [stored.digest], 'no staging file is left');
        } else {
          assert.equal(Buffer.from(stored.data ?? []).toString('utf8'), '{"n":1}');
        }
        // Within the retention period the sweep keeps everything.
        await api.app.insitu.sweepJobResults();
        const file = await api.call('GET', `/api/v1/jobs/${job}/results/kept.json`, { token: dev.tokens.user });
        assert.equal(file.statusCode, 200);
        assert.equal(file.body, '{"n":1}');
        const unknown = await api.call('GET', `/api/v1/jobs/${job}/results/never.json`, { token: dev.tokens.user });
        assert.equal(JSON.parse(unknown.body).error.code, 'INSITU_JOB_RESULT_NOT_FOUND', 'a name it never had: 404');

        // The retention period ends (the job ended longer ago than jobs.retentionHours).
        await api.store.db
          .updateTable('jobs')
          .set({ expires_at: Date.now() - 1000 })
          .where('id', '=', job)
          .execute();
        const early = await api.call('GET', `/api/v1/jobs/${job}/results/kept.json`, { token: dev.tokens.user });
        assert.equal(early.statusCode, 410, 'expired results are not served even before the sweep ran');
        assert.equal(JSON.parse(early.body).error.code, 'INSITU_JOB_RESULT_EXPIRED');
        assert.ok((await api.app.insitu.sweepJobResults()) >= 1);
        assert.deepEqual(
          await api.store.db.selectFrom('job_results').select('name').where('job_id', '=', job).execute(),
          [],
          'the rows are gone',
        );
        if (resultsDir) assert.equal(existsSync(join(resultsDir, job)), false, "the job's directory is gone");
        for (const url of [`/api/v1/jobs/${job}/results/kept.json`, `/api/v1/jobs/${job}/results`]) {
          const gone = await api.call('GET', url, { token: dev.tokens.user });
          assert.equal(gone.statusCode, 410, url);
          assert.equal(JSON.parse(gone.body).error.code, 'INSITU_JOB_RESULT_EXPIRED');
        }
        const after = expectStatus(await api.call('GET', `/api/v1/jobs/${job}`, { token: dev.tokens.user }), 200);
        assert.equal(after.state, 'succeeded', 'the job itself stays listed');
        assert.deepEqual(after.results, []);
      });
    });
  }
