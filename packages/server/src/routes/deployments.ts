import { InsituError } from '@insitu/core';
import type { DeploymentRow } from '@insitu/store';
import { providersOf, requireAppRole, visibleApp } from '../apps/access.js';
import type { DeploymentReconciler } from '../apps/reconciler.js';
import { userOf, type App } from '../app.js';
import { canSeeOrg, hasOrgRole, requireOrgRole, type UserPrincipal } from '../auth/principal.js';
import { CreateDeploymentBody, DeploymentListQuery, DeploymentPage, DeploymentSchema, IdParams, UpdateDeploymentBody } from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentDeployment } from '../presenters.js';
import { NoContent } from '../openapi-responses.js';

/**
 * Deployments: the desired state "this approved version runs at this provider with N
 * instances per agent", and what each agent reports. A new version for the same app and
 * provider rolls: the new deployment starts, calls shift to it once it runs, and the old
 * one drains and stops.
 */
export function registerDeploymentRoutes(app: App, ctx: ServerContext, reconciler: DeploymentReconciler): void {
  const { store } = ctx;

  async function present(row: DeploymentRow) {
    const version = await store.apps.getVersion(row.version_id);
    return presentDeployment(row, version?.version ?? '?', await store.deployments.statuses([row.id]));
  }

  /** The deployment if the user belongs to its app's or its provider's organisation. */
  async function visible(principal: UserPrincipal, id: string) {
    const row = await store.deployments.get(id);
    const application = row ? await store.apps.get(row.app_id) : undefined;
    const provider = row ? await store.providers.get(row.provider_id) : undefined;
    if (!row || !application || !provider || !(canSeeOrg(principal, application.org_id) || canSeeOrg(principal, provider.org_id))) {
      throw new InsituError('INSITU_DEPLOYMENT_NOT_FOUND', `no deployment ${id}`);
    }
    return { row, application, provider };
  }

  app.post(
    '/api/v1/deployments',
    {
      config: { errors: [404, 409] },
      schema: {
        tags: ['deployments'],
        summary: 'Run an approved version at a provider (developer role). Replaces (rolls) the running version of the same app there.',
        body: CreateDeploymentBody,
        response: { 201: DeploymentSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const version = await store.apps.getVersion(request.body.versionId);
      if (!version) throw new InsituError('INSITU_VERSION_NOT_FOUND', `no version ${request.body.versionId}`);
      const application = await visibleApp(store, principal, version.app_id);
      requireAppRole(principal, application, ['developer'], true);
      const approvals = await store.apps.approvalsOf(version.id);
      if (version.state !== 'approved' || approvals.some((a) => a.state !== 'approved' || a.digest !== version.digest)) {
        const waiting = approvals.filter((a) => a.state !== 'approved').length;
        throw new InsituError('INSITU_APP_NOT_APPROVED', `${application.name} ${version.version} is ${version.state}${waiting ? ` (${waiting} approval(s) not given)` : ''}; it cannot run`);
      }
      const providerId = request.body.providerId;
      if (!approvals.some((a) => a.provider_id === providerId)) {
        throw new InsituError('INSITU_VALIDATION', `${application.name} ${version.version} reads no data of provider ${providerId}, so it cannot run there`);
      }
      const manifest = JSON.parse(version.manifest) as { replicas?: number };
      const replicas = request.body.replicas ?? manifest.replicas ?? 1;
      const created = await store.transaction(async (tx) => {
        const current = await tx.deployments.list({ appId: application.id, providerId, states: ['active'], limit: 10, offset: 0 });
        if (current.some((d) => d.version_id === version.id)) {
          throw new InsituError('INSITU_CONFLICT', `${application.name} ${version.version} is deployed at this provider already; change its replicas with PATCH`);
        }
        for (const old of current) await tx.deployments.update(old.id, { state: 'draining' });
        const row = await tx.deployments.create({ appId: application.id, versionId: version.id, providerId, replicas, createdBy: principal.userId });
        const provider = await tx.providers.get(providerId);
        const message = current.length > 0
          ? `rolling ${application.name} to ${version.version} at ${provider?.name ?? providerId}`
          : `deploying ${application.name} ${version.version} at ${provider?.name ?? providerId} (${replicas} per agent)`;
        await tx.events.add({ orgId: application.org_id, kind: 'deployment.created', subject: row.id, message });
        if (provider) await tx.events.add({ orgId: provider.org_id, kind: 'deployment.created', subject: row.id, message });
        return row;
      });
      reconciler.changed(providerId);
      return reply.status(201).send(await present(created));
    },
  );

  app.get(
    '/api/v1/deployments',
    {
      config: { errors: [404] },
      schema: {
        tags: ['deployments'],
        summary: 'Deployments of your applications and at your providers: desired and actual state per agent',
        querystring: DeploymentListQuery,
        response: { 200: DeploymentPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { app: appId, provider, state } = request.query;
      const page = pageRequest(request.query, { app: appId, provider, state });
      const scope = principal.platformAdmin
        ? {}
        : { appOrgIds: [...principal.orgs.keys()], providerIds: (await providersOf(store, principal)).map((p) => p.id) };
      const rows = await store.deployments.list({
        ...scope,
        ...(appId ? { appId } : {}),
        ...(provider ? { providerId: provider } : {}),
        ...(state ? { states: [state] } : { states: ['active', 'draining'] }),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: await Promise.all(result.items.map(present)) };
    },
  );

  app.get('/api/v1/deployments/:id', { schema: { tags: ['deployments'], summary: 'One deployment with per-agent status', params: IdParams, response: { 200: DeploymentSchema } } }, async (request) =>
    present((await visible(userOf(request), request.params.id)).row),
  );

  app.patch(
    '/api/v1/deployments/:id',
    { config: { errors: [409] }, schema: { tags: ['deployments'], summary: 'Scale: instances per agent (developer role)', params: IdParams, body: UpdateDeploymentBody, response: { 200: DeploymentSchema } } },
    async (request) => {
      const principal = userOf(request);
      const { row, application } = await visible(principal, request.params.id);
      requireAppRole(principal, application, ['developer']);
      if (row.state !== 'active') throw new InsituError('INSITU_CONFLICT', `the deployment is ${row.state}`);
      await store.deployments.update(row.id, { replicas: request.body.replicas });
      await store.events.add({ orgId: application.org_id, kind: 'deployment.scaled', subject: row.id, message: `${application.name} scaled to ${request.body.replicas} per agent` });
      reconciler.changed(row.provider_id);
      return present((await store.deployments.get(row.id)) ?? row);
    },
  );

  app.delete(
    '/api/v1/deployments/:id',
    { config: { errors: [409] }, schema: { tags: ['deployments'], summary: "Undeploy (the app's developers, or the provider, who may always stop code on its premises)", params: IdParams, response: { 204: NoContent } } },
    async (request, reply) => {
      const principal = userOf(request);
      const { row, application, provider } = await visible(principal, request.params.id);
      if (!hasOrgRole(principal, application.org_id, ['developer'])) requireOrgRole(principal, provider.org_id, ['provider']);
      if (row.state === 'removed') throw new InsituError('INSITU_CONFLICT', 'the deployment is removed already');
      await store.deployments.update(row.id, { state: 'removed' });
      for (const orgId of new Set([application.org_id, provider.org_id])) {
        await store.events.add({ orgId, kind: 'deployment.removed', subject: row.id, message: `${application.name} undeployed from ${provider.name}` });
      }
      reconciler.changed(row.provider_id);
      return reply.status(204).send();
    },
  );
}
