import { IdSchema, InsituError } from '@insitu/core';
import Type from 'typebox';
import { AppRepository, isUniqueViolation, type ServiceRow } from '@insitu/store';
import { requireAppRole, visibleApp } from '../apps/access.js';
import { userOf, type App } from '../app.js';
import { requireOrgRole, type UserPrincipal } from '../auth/principal.js';
import {
  CreateServiceBody,
  GrantBody,
  GrantParams,
  IdParams,
  ListQuery,
  ServicePage,
  ServiceSchema,
  UpdateServiceBody,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import type { Gateway } from '../gateway/gateway.js';
import { pageOf, pageRequest } from '../pagination.js';
import { iso } from '../presenters.js';
import { visibleService } from '../services/access.js';
import { NoContent } from '../openapi-responses.js';
import { notFound } from '../errors.js';

/**
 * Services: an application published under a stable name at `/s/{name}/…` (its newest
 * running version) and `/s/{name}/v{major}/…`. Public services are callable with any
 * key scoped to them; restricted ones only by organisations the owner granted.
 */
export function registerServiceRoutes(app: App, ctx: ServerContext, gateway: Gateway, baseUrl: () => string): void {
  const { store } = ctx;

  async function present(row: ServiceRow) {
    const routes = await gateway.router.routes(row.app_id);
    const versions = await store.apps.listVersions(row.app_id, { limit: 1000, offset: 0 });
    const running = new Set(routes.running.map((r) => r.versionId));
    const newest = routes.running[0];
    // The datasets as resolved (provider ids) when the version was submitted; never re-resolved from names.
    const newestRow = newest ? versions.find((v) => v.id === newest.versionId) : versions.at(-1);
    const datasets = [];
    for (const ref of newestRow ? AppRepository.datasetsOf(newestRow) : []) {
      const provider = await store.providers.get(ref.providerId);
      const dataset = await store.datasets.getByName(ref.providerId, ref.dataset);
      datasets.push({
        provider: provider?.name ?? ref.providerId,
        providerId: ref.providerId,
        dataset: ref.dataset,
        ...(dataset ? { datasetId: dataset.id } : {}),
      });
    }
    return {
      id: row.id,
      name: row.name,
      orgId: row.org_id,
      appId: row.app_id,
      description: row.description,
      access: row.access,
      url: `${baseUrl()}/s/${row.name}`,
      limits: {
        ratePerSecond: row.rate_per_second,
        burst: row.burst,
        dailyQuota: row.daily_quota,
        maxRequestBytes: row.max_request_bytes,
        maxResponseBytes: Number(row.max_response_bytes),
        timeoutMs: row.timeout_ms,
      },
      versions: versions
        .filter((v) => v.state === 'approved')
        .map((v) => ({
          version: v.version,
          major: v.major,
          path: `/s/${row.name}/v${v.major}`,
          running: running.has(v.id),
        })),
      datasets,
      createdAt: iso(Number(row.created_at)),
    };
  }

  /** The service if the user may see it: public, their own, or granted to one of their organisations. */
  function visible(principal: UserPrincipal, id: string): Promise<ServiceRow> {
    return visibleService(store, principal, id);
  }

  function requireOwner(principal: UserPrincipal, row: ServiceRow): void {
    requireOrgRole(principal, row.org_id, ['developer'], {
      notMember: new InsituError('INSITU_FORBIDDEN', "only the service's organisation may change it"),
    });
  }

  app.post(
    '/api/v1/services',
    {
      config: { errors: [404, 409] },
      schema: {
        tags: ['services'],
        summary: 'Publish an application as a service (developer role)',
        body: CreateServiceBody,
        response: { 201: ServiceSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { name, appId, description, access, ...limits } = request.body;
      const application = await visibleApp(store, principal, appId);
      requireAppRole(principal, application, ['developer'], true);
      const defaults = ctx.config.gateway;
      try {
        const row = await store.services.create({
          name,
          orgId: application.org_id,
          appId: application.id,
          description: description ?? application.description,
          access: access ?? 'public',
          limits: {
            ratePerSecond: limits.ratePerSecond ?? defaults.ratePerSecond,
            burst: limits.burst ?? defaults.burst,
            dailyQuota: limits.dailyQuota ?? defaults.dailyQuota,
            maxRequestBytes: limits.maxRequestBytes ?? defaults.maxRequestBytes,
            maxResponseBytes: limits.maxResponseBytes ?? defaults.maxResponseBytes,
            timeoutMs: limits.timeoutMs ?? defaults.timeoutMs,
          },
        });
        await store.events.add({
          orgId: application.org_id,
          kind: 'service.published',
          subject: row.id,
          message: `${application.name} published as ${name}`,
        });
        gateway.invalidate();
        return reply.status(201).send(await present(row));
      } catch (error) {
        if (isUniqueViolation(error))
          throw new InsituError('INSITU_CONFLICT', `a service named "${name}" exists already`);
        throw error;
      }
    },
  );

  app.get(
    '/api/v1/services',
    {
      config: { auth: 'user-or-agent' },
      schema: {
        tags: ['services'],
        summary: 'Services you may call or own',
        querystring: ListQuery,
        response: { 200: ServicePage },
      },
    },
    async (request) => {
      const principal = request.principal;
      const page = pageRequest(request.query);
      const visibleTo =
        principal?.kind === 'user' && principal.platformAdmin
          ? undefined
          : principal?.kind === 'user'
            ? [...principal.orgs.keys()]
            : principal?.kind === 'agent'
              ? [principal.orgId]
              : [];
      const rows = await store.services.list({
        ...(visibleTo ? { visibleTo } : {}),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: await Promise.all(result.items.map(present)) };
    },
  );

  app.get(
    '/api/v1/services/:id',
    { schema: { tags: ['services'], summary: 'One service', params: IdParams, response: { 200: ServiceSchema } } },
    async (request) => present(await visible(userOf(request), request.params.id)),
  );

  app.patch(
    '/api/v1/services/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['services'],
        summary: 'Change limits, access or description (developer role of the owner)',
        params: IdParams,
        body: UpdateServiceBody,
        response: { 200: ServiceSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const row = await visible(principal, request.params.id);
      requireOwner(principal, row);
      await store.services.update(row.id, request.body);
      await store.events.add({
        orgId: row.org_id,
        kind: 'service.updated',
        subject: row.id,
        message: `${row.name} changed: ${Object.keys(request.body).join(', ')}`,
      });
      gateway.invalidate();
      return present((await store.services.get(row.id)) ?? row);
    },
  );

  app.delete(
    '/api/v1/services/:id',
    {
      schema: {
        tags: ['services'],
        summary: 'Unpublish (developer role of the owner)',
        params: IdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const row = await visible(principal, request.params.id);
      requireOwner(principal, row);
      await store.services.remove(row.id);
      await store.events.add({
        orgId: row.org_id,
        kind: 'service.unpublished',
        subject: row.id,
        message: `${row.name} unpublished`,
      });
      gateway.invalidate();
      return reply.status(204).send();
    },
  );

  app.post(
    '/api/v1/services/:id/grants',
    {
      schema: {
        tags: ['services'],
        summary: 'Let an organisation call a restricted service (developer role of the owner)',
        params: IdParams,
        body: GrantBody,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const row = await visible(principal, request.params.id);
      requireOwner(principal, row);
      if (!(await store.orgs.get(request.body.orgId))) throw notFound('organisation', request.body.orgId);
      await store.services.grant(row.id, request.body.orgId);
      gateway.invalidate();
      return reply.status(204).send();
    },
  );

  app.get(
    '/api/v1/services/:id/grants',
    {
      schema: {
        tags: ['services'],
        summary: 'Organisations granted a service (its owner)',
        params: IdParams,
        response: { 200: Type.Object({ orgIds: Type.Array(IdSchema) }) },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const row = await visible(principal, request.params.id);
      requireOwner(principal, row);
      return { orgIds: await store.services.grants(row.id) };
    },
  );

  app.delete(
    '/api/v1/services/:id/grants/:orgId',
    {
      schema: {
        tags: ['services'],
        summary: 'Withdraw a grant (developer role of the owner)',
        params: GrantParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const row = await visible(principal, request.params.id);
      requireOwner(principal, row);
      if (!(await store.services.revokeGrant(row.id, request.params.orgId)))
        throw new InsituError('INSITU_NOT_FOUND', 'no such grant');
      gateway.invalidate();
      return reply.status(204).send();
    },
  );
}
