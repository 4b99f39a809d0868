import { newId } from '@insitu/core';
import type { JobResultRow, JobRow, JobStateColumn } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

const FINAL: readonly JobStateColumn[] = ['succeeded', 'failed', 'refused', 'cancelled'];

/** Jobs (an approved version run once at a provider) and their result files. */
export class JobRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: {
    orgId: string;
    appId: string;
    versionId: string;
    providerId: string;
    args: unknown;
    wallTimeMs: number;
    createdBy: string;
  }): Promise<JobRow> {
    const now = this.ctx.now();
    const row: JobRow = {
      id: newId('job'),
      org_id: input.orgId,
      app_id: input.appId,
      version_id: input.versionId,
      provider_id: input.providerId,
      args: JSON.stringify(input.args ?? null),
      state: 'queued',
      reason: 'waiting for an agent of the provider',
      agent_id: null,
      exit_code: null,
      logs: null,
      wall_time_ms: input.wallTimeMs,
      created_by: input.createdBy,
      created_at: now,
      started_at: null,
      finished_at: null,
      expires_at: null,
      updated_at: now,
      cpu_ms: null,
    };
    await this.ctx.db.insertInto('jobs').values(row).execute();
    return row;
  }

  get(id: string): Promise<JobRow | undefined> {
    return this.ctx.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Jobs newest first, of some organisations (submitters) or providers. */
  list(options: {
    orgIds?: readonly string[];
    providerIds?: readonly string[];
    states?: readonly JobStateColumn[];
    limit: number;
    offset: number;
  }): Promise<JobRow[]> {
    let query = this.ctx.db.selectFrom('jobs').selectAll();
    const { orgIds, providerIds } = options;
    if (orgIds || providerIds) {
      if ((orgIds?.length ?? 0) + (providerIds?.length ?? 0) === 0) return Promise.resolve([]);
      query = query.where((eb) =>
        eb.or([
          ...(orgIds && orgIds.length > 0 ? [eb('org_id', 'in', orgIds)] : []),
          ...(providerIds && providerIds.length > 0 ? [eb('provider_id', 'in', providerIds)] : []),
        ]),
      );
    }
    if (options.states) {
      if (options.states.length === 0) return Promise.resolve([]);
      query = query.where('state', 'in', options.states);
    }
    return query.orderBy('id', 'desc').limit(options.limit).offset(options.offset).execute();
  }

  /** Jobs of an organisation not yet ended (the quota counts these). */
  async activeCount(orgId: string): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('org_id', '=', orgId)
      .where('state', 'in', ['queued', 'running'])
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** What an agent of the provider should see: every queued job, and the running ones it claimed. */
  forAgent(providerId: string, agentId: string): Promise<JobRow[]> {
    return this.ctx.db
      .selectFrom('jobs')
      .selectAll()
      .where('provider_id', '=', providerId)
      .where((eb) =>
        eb.or([eb('state', '=', 'queued'), eb.and([eb('state', '=', 'running'), eb('agent_id', '=', agentId)])]),
      )
      .orderBy('id')
      .limit(1000)
      .execute();
  }

  /** Move a queued job to running at `agentId`; false when another agent (or a cancel) came first. */
  async claim(id: string, providerId: string, agentId: string): Promise<boolean> {
    const now = this.ctx.now();
    const result = await this.ctx.db
      .updateTable('jobs')
      .set({
        state: 'running',
        agent_id: agentId,
        started_at: now,
        updated_at: now,
        reason: `running at agent ${agentId}`,
      })
      .where('id', '=', id)
      .where('provider_id', '=', providerId)
      .where('state', '=', 'queued')
      .executeTakeFirst();
    return affected(result) === 1;
  }

  /**
   * End a job that is not ended yet (`from` narrows the states it may be in, `agentId` who
   * must hold it); false when it had ended already. Results expire `retentionMs` later.
   */
  async finish(
    id: string,
    input: {
      state: JobStateColumn;
      reason: string;
      retentionMs: number;
      from?: readonly JobStateColumn[];
      agentId?: string;
      exitCode?: number | null;
      logs?: readonly string[] | null;
      /** CPU time the agent measured (ms). */
      cpuMs?: number | null;
    },
  ): Promise<boolean> {
    const now = this.ctx.now();
    let query = this.ctx.db
      .updateTable('jobs')
      .set({
        state: input.state,
        reason: input.reason,
        finished_at: now,
        updated_at: now,
        expires_at: now + input.retentionMs,
        ...(input.exitCode !== undefined ? { exit_code: input.exitCode } : {}),
        ...(input.logs ? { logs: JSON.stringify(input.logs) } : {}),
        ...(input.cpuMs !== undefined ? { cpu_ms: input.cpuMs } : {}),
      })
      .where('id', '=', id)
      .where('state', 'in', input.from ?? ['queued', 'running']);
    if (input.agentId) query = query.where('agent_id', '=', input.agentId);
    return affected(await query.executeTakeFirst()) === 1;
  }

  async addResult(input: { jobId: string; name: string; size: number; digest: string; data: Buffer | null }) {
    await this.ctx.db
      .deleteFrom('job_results')
      .where('job_id', '=', input.jobId)
      .where('name', '=', input.name)
      .execute();
    await this.ctx.db
      .insertInto('job_results')
      .values({
        job_id: input.jobId,
        name: input.name,
        size: input.size,
        digest: input.digest,
        data: input.data,
        created_at: this.ctx.now(),
      })
      .execute();
  }

  /** The result files of a job, without their bytes. */
  results(jobId: string): Promise<Omit<JobResultRow, 'data'>[]> {
    return this.ctx.db
      .selectFrom('job_results')
      .select(['job_id', 'name', 'size', 'digest', 'created_at'])
      .where('job_id', '=', jobId)
      .orderBy('name')
      .execute();
  }

  result(jobId: string, name: string): Promise<JobResultRow | undefined> {
    return this.ctx.db
      .selectFrom('job_results')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('name', '=', name)
      .executeTakeFirst();
  }

  /** Drop the results of jobs whose retention ended; returns the removed results (to delete their files). */
  async sweepExpired(): Promise<Omit<JobResultRow, 'data'>[]> {
    const expired = await this.ctx.db
      .selectFrom('job_results as r')
      .innerJoin('jobs as j', 'j.id', 'r.job_id')
      .select(['r.job_id', 'r.name', 'r.size', 'r.digest', 'r.created_at'])
      .where('j.expires_at', '<=', this.ctx.now())
      .where('j.state', 'in', FINAL)
      .limit(1000)
      .execute();
    for (const r of expired) {
      await this.ctx.db.deleteFrom('job_results').where('job_id', '=', r.job_id).where('name', '=', r.name).execute();
    }
    return expired;
  }
}
