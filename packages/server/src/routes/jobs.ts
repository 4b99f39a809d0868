import { InsituError, manifestKinds, type AgentJob, type AppManifest, type JobOutputPolicy } from '@insitu/core';
import { AppRepository, type JobRow } from '@insitu/store';
import { providersOf, requireAppRole, visibleApp } from '../apps/access.js';
import type { DeploymentReconciler } from '../apps/reconciler.js';
import { agentOf, userOf, type App } from '../app.js';
import { canSeeOrg, hasOrgRole, type UserPrincipal } from '../auth/principal.js';
import {
  AgentJobReportBody,
  AgentJobsSchema,
  CreateJobBody,
  IdParams,
  JobListQuery,
  JobLogsSchema,
  JobPage,
  JobResultParams,
  JobSchema,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { ResultStore } from '../jobs/result-store.js';
import { Binary, NoContent } from '../openapi-responses.js';
import { pageOf, pageRequest } from '../pagination.js';
import { iso } from '../presenters.js';

const MAX_ARGS_BYTES = 64 * 1024;
const HOUR_MS = 3_600_000;

/** The jobs a provider's agent should see: every queued job, and the running ones it holds. */
export async function jobsFor(ctx: ServerContext, providerId: string, agentId: string): Promise<AgentJob[]> {
  const rows = await ctx.store.jobs.forAgent(providerId, agentId);
  const out: AgentJob[] = [];
  for (const row of rows) {
    const version = await ctx.store.apps.getVersion(row.version_id);
    const application = await ctx.store.apps.get(row.app_id);
    if (!version || !application) continue;
    const policy = await jobPolicyOf(ctx, row);
    out.push({
      id: row.id,
      state: row.state === 'running' ? 'running' : 'queued',
      app: application.name,
      version: version.version,
      digest: version.digest,
      bundle: `/api/v1/bundles/${version.digest}`,
      args: JSON.parse(row.args) as unknown,
      datasets: AppRepository.datasetsOf(version).filter((d) => d.providerId === providerId),
      wallTimeMs: Number(row.wall_time_ms),
      ...(policy ? { policy } : {}),
    });
  }
  return out;
}

/** What the provider let leave of this job's version when it approved it (undefined: nothing beyond the agent's config, no output lines). */
async function jobPolicyOf(ctx: ServerContext, row: JobRow): Promise<JobOutputPolicy | undefined> {
  const approval = (await ctx.store.apps.approvalsOf(row.version_id)).find((a) => a.provider_id === row.provider_id);
  return approval?.job_policy ? (JSON.parse(approval.job_policy) as JobOutputPolicy) : undefined;
}

/**
 * Compute jobs: an approved version (declaring `"kind": "job"`) runs once at a provider
 * and writes result files. The submitting organisation sees everything of its jobs; the
 * provider's members see their state and may cancel them, but never their results (those
 * are the submitter's). Agents claim queued jobs, upload the results their provider's
 * policy let out, then report how the job ended.
 */
export function registerJobRoutes(app: App, ctx: ServerContext, reconciler: DeploymentReconciler): void {
  const { store, config } = ctx;
  const results = new ResultStore(config.jobs.resultsDir);
  const retentionMs = config.jobs.retentionHours * HOUR_MS;

  async function present(row: JobRow, principal: UserPrincipal | undefined) {
    const version = await store.apps.getVersion(row.version_id);
    const mayReadResults = principal !== undefined && canSeeOrg(principal, row.org_id);
    return {
      id: row.id,
      orgId: row.org_id,
      appId: row.app_id,
      versionId: row.version_id,
      version: version?.version ?? '?',
      providerId: row.provider_id,
      args: mayReadResults ? (JSON.parse(row.args) as unknown) : null,
      state: row.state,
      reason: row.reason,
      exitCode: row.exit_code === null ? null : Number(row.exit_code),
      logsShared: row.logs !== null,
      wallTimeMs: Number(row.wall_time_ms),
      cpuTimeMs: row.cpu_ms === null ? null : Number(row.cpu_ms),
      createdAt: iso(Number(row.created_at)),
      startedAt: row.started_at === null ? null : iso(Number(row.started_at)),
      finishedAt: row.finished_at === null ? null : iso(Number(row.finished_at)),
      expiresAt: row.expires_at === null ? null : iso(Number(row.expires_at)),
      ...(mayReadResults
        ? {
            results: (await store.jobs.results(row.id)).map((r) => ({
              name: r.name,
              size: Number(r.size),
              sha256: r.digest,
              createdAt: iso(Number(r.created_at)),
            })),
          }
        : {}),
    };
  }

  /** The job if the user belongs to the submitting organisation or the provider's; 404 otherwise. */
  async function visible(principal: UserPrincipal, id: string) {
    const row = await store.jobs.get(id);
    const provider = row ? await store.providers.get(row.provider_id) : undefined;
    if (!row || !provider || !(canSeeOrg(principal, row.org_id) || canSeeOrg(principal, provider.org_id)))
      throw new InsituError('INSITU_JOB_NOT_FOUND', `no job ${id}`);
    return { row, provider, submitter: canSeeOrg(principal, row.org_id) };
  }

  /** 410 once the job's retention ended: its results are gone (or about to be swept), whatever is left. */
  function expiredCheck(row: JobRow): void {
    if (row.expires_at !== null && Number(row.expires_at) <= ctx.now())
      throw new InsituError(
        'INSITU_JOB_RESULT_EXPIRED',
        `the results of job ${row.id} expired at ${iso(Number(row.expires_at))} (kept ${config.jobs.retentionHours} h after it ended)`,
      );
  }

  async function ended(row: JobRow, message: string): Promise<void> {
    const application = await store.apps.get(row.app_id);
    const provider = await store.providers.get(row.provider_id);
    const text = `job ${row.id} of ${application?.name ?? row.app_id}: ${message}`;
    for (const orgId of new Set([row.org_id, provider?.org_id])) {
      if (orgId) await store.events.add({ orgId, kind: 'job.ended', subject: row.id, message: text });
    }
  }

  /**
   * End a job that has not ended, and in the same transaction write its audit record (the
   * hash chain of calls: method JOB, the job id as request) and its metering
   * (`job_usage_hourly`): an ended job is counted exactly once. Undefined when it had ended.
   */
  async function finish(id: string, input: Parameters<typeof store.jobs.finish>[1]): Promise<JobRow | undefined> {
    return store.transaction(async (tx) => {
      if (!(await tx.jobs.finish(id, input))) return undefined;
      const row = await tx.jobs.get(id);
      if (!row) return undefined;
      const version = await tx.apps.getVersion(row.version_id);
      const application = await tx.apps.get(row.app_id);
      const sizes = await tx.jobs.results(row.id);
      const status = { succeeded: 200, failed: 500, refused: 413, cancelled: 499, queued: 202, running: 202 }[
        row.state
      ];
      const bytesOut = sizes.reduce((n, r) => n + Number(r.size), 0);
      await tx.jobUsage.add(row, { files: sizes.length, bytes: bytesOut });
      await tx.audit.append([
        {
          ts: Number(row.finished_at ?? row.updated_at),
          requestId: row.id,
          keyId: '',
          callerOrgId: row.org_id,
          serviceId: row.id,
          serviceOrgId: application?.org_id ?? '',
          serviceName: application?.name ?? '',
          version: version?.version ?? '',
          providerId: row.provider_id,
          agentId: row.agent_id ?? '',
          method: 'JOB',
          status,
          errorCode: row.state === 'succeeded' ? '' : `JOB_${row.state.toUpperCase()}`,
          bytesIn: Buffer.byteLength(row.args),
          bytesOut,
          durationMs: Math.max(0, Number(row.finished_at ?? row.updated_at) - Number(row.started_at ?? row.created_at)),
        },
      ]);
      return row;
    });
  }

  app.post(
    '/api/v1/jobs',
    {
      config: { errors: [404, 409, 429] },
      schema: {
        tags: ['jobs'],
        summary:
          "Run an approved version once at a provider (developer or user role in the application's organisation); it writes result files",
        body: CreateJobBody,
        response: { 201: JobSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const body = request.body;
      const version = await store.apps.getVersion(body.versionId);
      if (!version) throw new InsituError('INSITU_VERSION_NOT_FOUND', `no version ${body.versionId}`);
      const application = await visibleApp(store, principal, version.app_id);
      requireAppRole(principal, application, ['developer', 'user'], true);
      const manifest = JSON.parse(version.manifest) as AppManifest;
      if (!manifestKinds(manifest).includes('job'))
        throw new InsituError(
          'INSITU_JOB_NOT_A_JOB',
          `${application.name} ${version.version} does not declare "kind": "job" in insitu.json`,
        );
      const approvals = await store.apps.approvalsOf(version.id);
      if (
        version.state !== 'approved' ||
        approvals.some((a) => a.state !== 'approved' || a.digest !== version.digest)
      ) {
        throw new InsituError(
          'INSITU_APP_NOT_APPROVED',
          `${application.name} ${version.version} is ${version.state}; it cannot run`,
        );
      }
      if (!approvals.some((a) => a.provider_id === body.providerId))
        throw new InsituError(
          'INSITU_VALIDATION',
          `${application.name} ${version.version} reads no data of provider ${body.providerId}, so it cannot run there`,
        );
      const args = body.args ?? null;
      if (Buffer.byteLength(JSON.stringify(args)) > MAX_ARGS_BYTES)
        throw new InsituError('INSITU_VALIDATION', `invalid body: body.args is over ${MAX_ARGS_BYTES} bytes of JSON`);
      const wallTimeMs = Math.min(body.wallTimeMs ?? config.jobs.wallTimeMs, config.jobs.wallTimeMs);
      const row = await store.transaction(async (tx) => {
        if ((await tx.jobs.activeCount(application.org_id)) >= config.jobs.maxActivePerOrg)
          throw new InsituError(
            'INSITU_JOB_QUOTA_EXCEEDED',
            `the organisation has ${config.jobs.maxActivePerOrg} queued or running jobs, the most allowed; wait for one to end`,
          );
        const created = await tx.jobs.create({
          orgId: application.org_id,
          appId: application.id,
          versionId: version.id,
          providerId: body.providerId,
          args,
          wallTimeMs,
          createdBy: principal.userId,
        });
        await tx.events.add({
          orgId: application.org_id,
          kind: 'job.submitted',
          subject: created.id,
          message: `job ${created.id} of ${application.name} ${version.version} submitted`,
        });
        return created;
      });
      reconciler.changed(body.providerId);
      return reply.status(201).send(await present(row, principal));
    },
  );

  app.get(
    '/api/v1/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Jobs your organisations submitted, and jobs at your providers (state only)',
        querystring: JobListQuery,
        response: { 200: JobPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const page = pageRequest(request.query, { state: request.query.state });
      const scope = principal.platformAdmin
        ? {}
        : { orgIds: [...principal.orgs.keys()], providerIds: (await providersOf(store, principal)).map((p) => p.id) };
      const rows = await store.jobs.list({
        ...scope,
        ...(request.query.state ? { states: [request.query.state] } : {}),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: await Promise.all(result.items.map((row) => present(row, principal))) };
    },
  );

  app.get(
    '/api/v1/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'One job: state with its reason, timestamps, and (for the submitter) its result files',
        params: IdParams,
        response: { 200: JobSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      return present((await visible(principal, request.params.id)).row, principal);
    },
  );

  app.post(
    '/api/v1/jobs/:id/cancel',
    {
      config: { errors: [409] },
      schema: {
        tags: ['jobs'],
        summary:
          "Cancel a queued or running job (the submitter's developer or user role, or the provider's provider role)",
        params: IdParams,
        response: { 200: JobSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { row, provider } = await visible(principal, request.params.id);
      if (
        !hasOrgRole(principal, row.org_id, ['developer', 'user']) &&
        !hasOrgRole(principal, provider.org_id, ['provider'])
      )
        throw new InsituError(
          'INSITU_FORBIDDEN',
          'cancelling a job needs the developer or user role of its organisation',
        );
      const who = canSeeOrg(principal, row.org_id) ? 'the submitter' : `the provider ${provider.name}`;
      const after = await finish(row.id, { state: 'cancelled', reason: `cancelled by ${who}`, retentionMs });
      if (!after)
        throw new InsituError('INSITU_CONFLICT', `the job is ${(await store.jobs.get(row.id))?.state ?? 'gone'}`);
      await ended(after, `cancelled by ${who}`);
      reconciler.changed(row.provider_id);
      return present(after, principal);
    },
  );

  app.get(
    '/api/v1/jobs/:id/logs',
    {
      schema: {
        tags: ['jobs'],
        summary:
          "The job's own output lines, when the provider let them out (the approval's jobPolicy.shareLogs and its agent's jobs.shareLogs); the submitter and the provider's members",
        params: IdParams,
        response: { 200: JobLogsSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { row, provider } = await visible(principal, request.params.id);
      if (row.logs === null)
        throw new InsituError(
          'INSITU_FORBIDDEN',
          row.state === 'queued' || row.state === 'running'
            ? 'the job has not ended; its output is sent when it ends, if the provider allows it'
            : `the provider ${provider.name} does not let the output of jobs leave its premises`,
        );
      return { lines: JSON.parse(row.logs) as string[] };
    },
  );

  app.get(
    '/api/v1/jobs/:id/results',
    {
      config: { errors: [403, 410] },
      schema: {
        tags: ['jobs'],
        summary: "The job's result files (the submitting organisation only)",
        params: IdParams,
        response: { 200: JobSchema.properties.results },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { row, submitter } = await visible(principal, request.params.id);
      if (!submitter) throw new InsituError('INSITU_FORBIDDEN', "results are the submitting organisation's only");
      expiredCheck(row);
      return (await present(row, principal)).results ?? [];
    },
  );

  app.get(
    '/api/v1/jobs/:id/results/:name',
    {
      config: { errors: [403, 404, 410] },
      schema: {
        tags: ['jobs'],
        summary: 'One result file (the submitting organisation only)',
        params: JobResultParams,
        produces: ['application/octet-stream'],
        response: { 200: Binary('application/octet-stream', 'The file as the job wrote it') },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { row, submitter } = await visible(principal, request.params.id);
      if (!submitter) throw new InsituError('INSITU_FORBIDDEN', "results are the submitting organisation's only");
      expiredCheck(row);
      const data = await results.get(store, row.id, request.params.name);
      if (!data)
        throw new InsituError('INSITU_JOB_RESULT_NOT_FOUND', `job ${row.id} has no result ${request.params.name}`);
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${request.params.name}"`)
        .header('x-content-type-options', 'nosniff')
        .send(data);
    },
  );

  // The agent's side.

  app.get(
    '/api/v1/agents/self/jobs',
    {
      config: { auth: 'agent' },
      schema: {
        tags: ['agents'],
        summary: "Queued jobs at this agent's provider, and the running ones this agent holds",
        response: { 200: AgentJobsSchema },
      },
    },
    async (request) => {
      const agent = agentOf(request);
      return { jobs: await jobsFor(ctx, agent.providerId, agent.agentId) };
    },
  );

  /** The job if it runs at this agent; 404 for another provider's, 409 when it is not running here. */
  async function heldBy(agentId: string, providerId: string, id: string): Promise<JobRow> {
    const row = await store.jobs.get(id);
    if (!row || row.provider_id !== providerId) throw new InsituError('INSITU_JOB_NOT_FOUND', `no job ${id}`);
    if (row.state !== 'running' || row.agent_id !== agentId)
      throw new InsituError('INSITU_CONFLICT', `job ${id} is ${row.state}${row.agent_id ? ` at ${row.agent_id}` : ''}`);
    return row;
  }

  app.post(
    '/api/v1/agents/self/jobs/:id/claim',
    {
      config: { auth: 'agent', errors: [409] },
      schema: {
        tags: ['agents'],
        summary: 'Take a queued job of this provider to run it (409 when another agent or a cancel came first)',
        params: IdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const agent = agentOf(request);
      const row = await store.jobs.get(request.params.id);
      if (!row || row.provider_id !== agent.providerId)
        throw new InsituError('INSITU_JOB_NOT_FOUND', `no job ${request.params.id}`);
      if (!(await store.jobs.claim(row.id, agent.providerId, agent.agentId)))
        throw new InsituError('INSITU_CONFLICT', `job ${row.id} is not queued`);
      await store.events.add({
        orgId: row.org_id,
        kind: 'job.running',
        subject: row.id,
        message: `job ${row.id} running at agent ${agent.agentId}`,
      });
      reconciler.changed(row.provider_id);
      return reply.status(204).send();
    },
  );

  app.register(async (plugin) => {
    const scoped = plugin as unknown as App;
    scoped.addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer', bodyLimit: config.jobs.maxResultBytes },
      (_request, body, done) => done(null, body),
    );
    scoped.put(
      '/api/v1/agents/self/jobs/:id/results/:name',
      {
        bodyLimit: config.jobs.maxResultBytes,
        config: { auth: 'agent', errors: [409] },
        schema: {
          tags: ['agents'],
          summary:
            "Upload one result file of a job this agent runs (application/octet-stream), after the provider's policy let it out; the platform checks its own limits again",
          params: JobResultParams,
          response: { 204: NoContent },
        },
      },
      async (request, reply) => {
        const agent = agentOf(request);
        const row = await heldBy(agent.agentId, agent.providerId, request.params.id);
        const data = request.body;
        if (!Buffer.isBuffer(data))
          throw new InsituError('INSITU_UNSUPPORTED_MEDIA_TYPE', 'send the result as application/octet-stream');
        const existing = await store.jobs.results(row.id);
        if (existing.length >= config.jobs.maxResultFiles && !existing.some((r) => r.name === request.params.name))
          throw new InsituError(
            'INSITU_JOB_RESULT_REFUSED',
            `a job may leave at most ${config.jobs.maxResultFiles} result files`,
          );
        // The approval's limits, checked again here: the platform trusts no agent to have applied them.
        const tight = (await jobPolicyOf(ctx, row))?.results;
        if (tight) {
          const name = request.params.name;
          const dot = name.lastIndexOf('.');
          const extension = dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
          const others = existing.filter((r) => r.name !== name);
          const breach =
            tight.extensions && !tight.extensions.includes(extension)
              ? `extension "${extension}" is not allowed for this version (allowed: ${tight.extensions.join(', ') || 'none'})`
              : tight.maxFileBytes !== undefined && data.length > tight.maxFileBytes
                ? `${data.length} bytes; the approval allows ${tight.maxFileBytes} per file`
                : tight.maxFiles !== undefined && others.length + 1 > tight.maxFiles
                  ? `more than the ${tight.maxFiles} result files the approval allows`
                  : tight.maxTotalBytes !== undefined &&
                      others.reduce((n, r) => n + Number(r.size), 0) + data.length > tight.maxTotalBytes
                    ? `results over the ${tight.maxTotalBytes} bytes the approval allows in all`
                    : undefined;
          if (breach) throw new InsituError('INSITU_JOB_RESULT_REFUSED', `result ${name}: ${breach}`);
        }
        await results.put(store, row.id, request.params.name, data);
        return reply.status(204).send();
      },
    );
  });

  app.put(
    '/api/v1/agents/self/jobs/:id/report',
    {
      config: { auth: 'agent', errors: [409] },
      schema: {
        tags: ['agents'],
        summary: 'How a job this agent ran ended (after its results were uploaded)',
        params: IdParams,
        body: AgentJobReportBody,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const agent = agentOf(request);
      const row = await heldBy(agent.agentId, agent.providerId, request.params.id);
      const report = request.body;
      // Output lines leave only where the approval shares them, whatever an agent sends.
      const shareLogs = (await jobPolicyOf(ctx, row))?.shareLogs === true;
      const after = await finish(row.id, {
        state: report.state,
        reason: report.reason,
        retentionMs,
        from: ['running'],
        agentId: agent.agentId,
        exitCode: report.exitCode ?? null,
        logs: shareLogs ? (report.logs ?? null) : null,
        ...(report.cpuTimeMs !== undefined ? { cpuMs: report.cpuTimeMs } : {}),
      });
      if (after) await ended(after, `${report.state}: ${report.reason}`);
      reconciler.changed(row.provider_id);
      return reply.status(204).send();
    },
  );
}
