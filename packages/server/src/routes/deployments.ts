import type { Readable } from 'node:stream';
import { InsituError } from '@insitu/core';
import type { DeploymentRow } from '@insitu/store';
import { providersOf, requireAppRole, visibleApp } from '../apps/access.js';
import type { DeploymentReconciler } from '../apps/reconciler.js';
import { userOf, type App } from '../app.js';
import { canSeeOrg, hasOrgRole, requireOrgRole, type UserPrincipal } from '../auth/principal.js';
import {
  CreateDeploymentBody,
  DeploymentAppLogsBody,
  DeploymentListQuery,
  DeploymentLogsQuery,
  DeploymentPage,
  DeploymentSchema,
  IdParams,
  UpdateDeploymentBody,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentDeployment } from '../presenters.js';
import { Binary, NoContent } from '../openapi-responses.js';
import { readAppLogs } from '../apps/app-logs.js';
import { notFound } from '../errors.js';

/**
 * Deployments: the desired state "this approved version runs at this provider with N
 * instances per agent", and what each agent reports. A new version for the same app and
 * provider rolls: the new deployment starts, calls shift to it once it runs, and the old
 * one drains and stops.
 */
export function registerDeploymentRoutes(app: App, ctx: ServerContext, reconciler: DeploymentReconciler): void {
  const { store } = ctx;

  async function present(row: DeploymentRow, principal: UserPrincipal) {
    const version = await store.apps.getVersion(row.version_id);
    const statuses = await store.deployments.statuses([row.id]);
    // A crash reason quotes the application's last lines: only for those who may read its output.
    const provider = Number(row.app_logs) === 1 ? undefined : await store.providers.get(row.provider_id);
    const mayRead = Number(row.app_logs) === 1 || (provider !== undefined && canSeeOrg(principal, provider.org_id));
    const shown = mayRead
      ? statuses
      : statuses.map((s) => ({
          ...s,
          reason: s.reason.replace(
            /; last output: [\s\S]*$/,
            '; its output is not shown (the provider has not allowed it)',
          ),
        }));
    return presentDeployment(row, version?.version ?? '?', shown);
  }

  /** The deployment if the user belongs to its app's or its provider's organisation. */
  async function visible(principal: UserPrincipal, id: string) {
    const row = await store.deployments.get(id);
    const application = row ? await store.apps.get(row.app_id) : undefined;
    const provider = row ? await store.providers.get(row.provider_id) : undefined;
    if (
      !row ||
      !application ||
      !provider ||
      !(canSeeOrg(principal, application.org_id) || canSeeOrg(principal, provider.org_id))
    ) {
      throw notFound('deployment', id);
    }
    return { row, application, provider };
  }

  app.post(
    '/api/v1/deployments',
    {
      config: { errors: [404, 409] },
      schema: {
        tags: ['deployments'],
        summary:
          'Run an approved version at a provider (developer role). Replaces (rolls) the running version of the same app there.',
        body: CreateDeploymentBody,
        response: { 201: DeploymentSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const version = await store.apps.getVersion(request.body.versionId);
      if (!version) throw notFound('version', request.body.versionId);
      const application = await visibleApp(store, principal, version.app_id);
      requireAppRole(principal, application, ['developer'], true);
      const approvals = await store.apps.approvalsOf(version.id);
      if (
        version.state !== 'approved' ||
        approvals.some((a) => a.state !== 'approved' || a.digest !== version.digest)
      ) {
        const waiting = approvals.filter((a) => a.state !== 'approved').length;
        throw new InsituError(
          'INSITU_APP_NOT_APPROVED',
          `${application.name} ${version.version} is ${version.state}${waiting ? ` (${waiting} approval(s) not given)` : ''}; it cannot run`,
        );
      }
      const providerId = request.body.providerId;
      if (!approvals.some((a) => a.provider_id === providerId)) {
        throw new InsituError(
          'INSITU_VALIDATION',
          `${application.name} ${version.version} reads no data of provider ${providerId}, so it cannot run there`,
        );
      }
      const manifest = JSON.parse(version.manifest) as { replicas?: number };
      const replicas = request.body.replicas ?? manifest.replicas ?? 1;
      const created = await store.transaction(async (tx) => {
        const current = await tx.deployments.list({
          appId: application.id,
          providerId,
          states: ['active'],
          limit: 10,
          offset: 0,
        });
        if (current.some((d) => d.version_id === version.id)) {
          throw new InsituError(
            'INSITU_CONFLICT',
            `${application.name} ${version.version} is deployed at this provider already; change its replicas with PATCH`,
          );
        }
        for (const old of current) await tx.deployments.update(old.id, { state: 'draining' });
        const provider = await tx.providers.get(providerId);
        // The application's output is the provider's to show: on by default only for its own organisation's applications.
        const appLogs = provider?.org_id === application.org_id;
        const row = await tx.deployments.create({
          appId: application.id,
          versionId: version.id,
          providerId,
          replicas,
          createdBy: principal.userId,
          appLogs,
        });
        const message =
          current.length > 0
            ? `rolling ${application.name} to ${version.version} at ${provider?.name ?? providerId}`
            : `deploying ${application.name} ${version.version} at ${provider?.name ?? providerId} (${replicas} per agent)`;
        await tx.events.add({ orgId: application.org_id, kind: 'deployment.created', subject: row.id, message });
        if (provider)
          await tx.events.add({ orgId: provider.org_id, kind: 'deployment.created', subject: row.id, message });
        return row;
      });
      reconciler.changed(providerId);
      return reply.status(201).send(await present(created, principal));
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
        : {
            appOrgIds: [...principal.orgs.keys()],
            providerIds: (await providersOf(store, principal)).map((p) => p.id),
          };
      const rows = await store.deployments.list({
        ...scope,
        ...(appId ? { appId } : {}),
        ...(provider ? { providerId: provider } : {}),
        ...(state ? { states: [state] } : { states: ['active', 'draining'] }),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: await Promise.all(result.items.map((row) => present(row, principal))) };
    },
  );

  app.get(
    '/api/v1/deployments/:id',
    {
      schema: {
        tags: ['deployments'],
        summary: 'One deployment with per-agent status',
        params: IdParams,
        response: { 200: DeploymentSchema },
      },
    },
    async (request) => present((await visible(userOf(request), request.params.id)).row, userOf(request)),
  );

  app.patch(
    '/api/v1/deployments/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['deployments'],
        summary: 'Scale: instances per agent (developer role)',
        params: IdParams,
        body: UpdateDeploymentBody,
        response: { 200: DeploymentSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { row, application } = await visible(principal, request.params.id);
      requireAppRole(principal, application, ['developer']);
      if (row.state !== 'active') throw new InsituError('INSITU_CONFLICT', `the deployment is ${row.state}`);
      await store.deployments.update(row.id, { replicas: request.body.replicas });
      await store.events.add({
        orgId: application.org_id,
        kind: 'deployment.scaled',
        subject: row.id,
        message: `${application.name} scaled to ${request.body.replicas} per agent`,
      });
      reconciler.changed(row.provider_id);
      return present((await store.deployments.get(row.id)) ?? row, principal);
    },
  );

  app.put(
    '/api/v1/deployments/:id/app-logs',
    {
      schema: {
        tags: ['deployments'],
        summary:
          "Let the application's developers read its output, or not (the provider's provider role): it is the application's output, on the provider's premises",
        params: IdParams,
        body: DeploymentAppLogsBody,
        response: { 200: DeploymentSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { row, application, provider } = await visible(principal, request.params.id);
      if (!hasOrgRole(principal, provider.org_id, ['provider'])) {
        throw new InsituError(
          'INSITU_FORBIDDEN',
          `only the provider ${provider.name} (provider role) decides who reads the output of applications on its premises`,
        );
      }
      await store.deployments.update(row.id, { appLogs: request.body.enabled });
      const message = `${provider.name} ${request.body.enabled ? 'lets' : 'no longer lets'} the developers of ${application.name} read its output`;
      for (const orgId of new Set([application.org_id, provider.org_id]))
        await store.events.add({ orgId, kind: 'deployment.app-logs', subject: row.id, message });
      return present((await store.deployments.get(row.id)) ?? row, principal);
    },
  );

  app.get(
    '/api/v1/deployments/:id/logs',
    {
      config: { errors: [403] },
      schema: {
        tags: ['deployments'],
        summary:
          "The application's own output (stdout and stderr), one JSON line each ({ at, instance, stream, line }), streamed from the agent: the last lines, and with follow=true what it writes next. The provider's members always; the application's when the provider allows it (appLogs)",
        params: IdParams,
        querystring: DeploymentLogsQuery,
        produces: ['application/x-ndjson'],
        response: { 200: Binary<Readable>('application/x-ndjson', 'One JSON object per output line') },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { row, provider } = await visible(principal, request.params.id);
      if (!canSeeOrg(principal, provider.org_id) && Number(row.app_logs) !== 1) {
        throw new InsituError(
          'INSITU_FORBIDDEN',
          `the provider ${provider.name} does not let developers read the output of this deployment (it can allow it: PUT /api/v1/deployments/${row.id}/app-logs)`,
        );
      }
      const abort = new AbortController();
      request.raw.on('close', () => abort.abort());
      const body = await readAppLogs(app.tunnel, {
        providerId: row.provider_id,
        deploymentId: row.id,
        lines: request.query.lines ?? 100,
        follow: request.query.follow === true,
        signal: abort.signal,
      });
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(body);
    },
  );

  app.delete(
    '/api/v1/deployments/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['deployments'],
        summary: "Undeploy (the app's developers, or the provider, who may always stop code on its premises)",
        params: IdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { row, application, provider } = await visible(principal, request.params.id);
      if (!hasOrgRole(principal, application.org_id, ['developer']))
        requireOrgRole(principal, provider.org_id, ['provider']);
      if (row.state === 'removed') throw new InsituError('INSITU_CONFLICT', 'the deployment is removed already');
      await store.deployments.update(row.id, { state: 'removed' });
      for (const orgId of new Set([application.org_id, provider.org_id])) {
        await store.events.add({
          orgId,
          kind: 'deployment.removed',
          subject: row.id,
          message: `${application.name} undeployed from ${provider.name}`,
        });
      }
      reconciler.changed(row.provider_id);
      return reply.status(204).send();
    },
  );
}
