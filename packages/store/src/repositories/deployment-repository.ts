import { newId } from '@insitu/core';
import type { DeploymentAgentRow, DeploymentRow, DeploymentState, InstanceState } from '../schema.js';
import { affected, type RepositoryContext } from './context.js';

/** Desired deployments (app version × provider × replicas) and what each agent reports. */
export class DeploymentRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  async create(input: {
    appId: string;
    versionId: string;
    providerId: string;
    replicas: number;
    createdBy: string;
    appLogs?: boolean;
  }): Promise<DeploymentRow> {
    const now = this.ctx.now();
    const row: DeploymentRow = {
      id: newId('dep'),
      app_id: input.appId,
      version_id: input.versionId,
      provider_id: input.providerId,
      replicas: input.replicas,
      state: 'active',
      app_logs: input.appLogs ? 1 : 0,
      created_by: input.createdBy,
      created_at: now,
      updated_at: now,
    };
    await this.ctx.db.insertInto('deployments').values(row).execute();
    return row;
  }

  get(id: string): Promise<DeploymentRow | undefined> {
    return this.ctx.db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Deployments ordered by id, filtered by provider, app, organisation of the app and states. */
  list(options: {
    providerId?: string;
    providerIds?: readonly string[];
    appId?: string;
    appOrgIds?: readonly string[];
    states?: readonly DeploymentState[];
    limit: number;
    offset: number;
  }): Promise<DeploymentRow[]> {
    let query = this.ctx.db.selectFrom('deployments as d').selectAll('d');
    if (options.providerId) query = query.where('d.provider_id', '=', options.providerId);
    if (options.appId) query = query.where('d.app_id', '=', options.appId);
    if (options.states) {
      if (options.states.length === 0) return Promise.resolve([]);
      query = query.where('d.state', 'in', options.states);
    }
    const { providerIds, appOrgIds } = options;
    if (providerIds || appOrgIds) {
      if ((providerIds?.length ?? 0) + (appOrgIds?.length ?? 0) === 0) return Promise.resolve([]);
      query = query.where((eb) =>
        eb.or([
          ...(providerIds && providerIds.length > 0 ? [eb('d.provider_id', 'in', providerIds)] : []),
          ...(appOrgIds && appOrgIds.length > 0
            ? [eb('d.app_id', 'in', eb.selectFrom('apps').select('id').where('org_id', 'in', appOrgIds))]
            : []),
        ]),
      );
    }
    return query.orderBy('d.id').limit(options.limit).offset(options.offset).execute();
  }

  async update(
    id: string,
    changes: { state?: DeploymentState; replicas?: number; appLogs?: boolean },
  ): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('deployments')
      .set({
        ...(changes.state ? { state: changes.state } : {}),
        ...(changes.replicas !== undefined ? { replicas: changes.replicas } : {}),
        ...(changes.appLogs !== undefined ? { app_logs: changes.appLogs ? 1 : 0 } : {}),
        updated_at: this.ctx.now(),
      })
      .where('id', '=', id)
      .executeTakeFirst();
    return affected(result) === 1;
  }

  /** Record what an agent reports for a deployment (insert or replace). */
  async report(input: {
    deploymentId: string;
    agentId: string;
    state: InstanceState;
    reason: string;
    ready: number;
    desired: number;
  }): Promise<void> {
    const values = {
      state: input.state,
      reason: input.reason,
      ready: input.ready,
      desired: input.desired,
      updated_at: this.ctx.now(),
    };
    const result = await this.ctx.db
      .updateTable('deployment_agents')
      .set(values)
      .where('deployment_id', '=', input.deploymentId)
      .where('agent_id', '=', input.agentId)
      .executeTakeFirst();
    if (affected(result) === 0) {
      await this.ctx.db
        .insertInto('deployment_agents')
        .values({ deployment_id: input.deploymentId, agent_id: input.agentId, ...values })
        .execute();
    }
  }

  /** Per-agent status of some deployments. */
  statuses(deploymentIds: readonly string[]): Promise<DeploymentAgentRow[]> {
    if (deploymentIds.length === 0) return Promise.resolve([]);
    return this.ctx.db
      .selectFrom('deployment_agents')
      .selectAll()
      .where('deployment_id', 'in', deploymentIds)
      .orderBy('deployment_id')
      .orderBy('agent_id')
      .execute();
  }

  /** Forget what an agent reported for deployments it no longer runs. */
  async clearReports(agentId: string, keepDeploymentIds: readonly string[]): Promise<void> {
    let query = this.ctx.db.deleteFrom('deployment_agents').where('agent_id', '=', agentId);
    if (keepDeploymentIds.length > 0) query = query.where('deployment_id', 'not in', keepDeploymentIds);
    await query.execute();
  }
}
