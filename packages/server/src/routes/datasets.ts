import { DatasetInputSchema, DatasetSchema, InsituError, OutputPolicySchema } from '@insitu/core';
import { agentOf, userOf, type App } from '../app.js';
import type { DeploymentReconciler } from '../apps/reconciler.js';
import { requireOrgRole, visibleOrgIds, type Principal } from '../auth/principal.js';
import { DatasetPage, DatasetParams, DatasetSearchQuery, IdParams } from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageRequest } from '../pagination.js';
import { presentDataset } from '../presenters.js';
import { NameResolver } from '../name-resolver.js';
import { NoContent } from '../openapi-responses.js';
import { notFound } from '../errors.js';

function viewer(principal: Principal | null): { all: boolean; orgIds: string[] } {
  if (!principal) return { all: false, orgIds: [] };
  return { all: principal.kind === 'user' && principal.platformAdmin, orgIds: visibleOrgIds(principal) };
}

/**
 * The data catalog: search and read (signed-in users and agents), write (the provider's
 * agents); output policies (the provider organisation's administrators).
 */
export function registerDatasetRoutes(app: App, ctx: ServerContext, reconciler: DeploymentReconciler): void {
  const { store } = ctx;

  app.get(
    '/api/v1/datasets',
    {
      config: { auth: 'user-or-agent', errors: [404] },
      schema: {
        tags: ['catalog'],
        summary: 'Search the catalog: metadata of datasets, never rows. Ranked when q is given, else by name.',
        querystring: DatasetSearchQuery,
        response: { 200: DatasetPage },
      },
    },
    async (request) => {
      const { q, tag, provider, column } = request.query;
      const page = pageRequest(request.query, { q, tag, provider, column });
      let providerId: string | undefined;
      if (provider !== undefined) {
        const row = await new NameResolver(store).provider(provider);
        if (!row) return { items: [] };
        providerId = row.id;
      }
      const { items, hasMore } = await store.datasets.search({
        ...(q !== undefined ? { q } : {}),
        ...(tag !== undefined ? { tags: tag } : {}),
        ...(providerId !== undefined ? { providerId } : {}),
        ...(column !== undefined ? { column } : {}),
        viewer: viewer(request.principal),
        limit: page.limit,
        offset: page.offset,
      });
      const nextCursor = page.next(hasMore);
      return { items: items.map(presentDataset), ...(nextCursor ? { nextCursor } : {}) };
    },
  );

  app.get(
    '/api/v1/datasets/:id',
    {
      config: { auth: 'user-or-agent' },
      schema: {
        tags: ['catalog'],
        summary: 'One dataset: schema, tags, row count, last sync',
        params: IdParams,
        response: { 200: DatasetSchema },
      },
    },
    async (request) => {
      const record = await store.datasets.get(request.params.id);
      const seen = viewer(request.principal);
      if (!record || (record.visibility !== 'public' && !seen.all && !seen.orgIds.includes(record.orgId))) {
        throw notFound('dataset', request.params.id);
      }
      return presentDataset(record);
    },
  );

  app.put(
    '/api/v1/datasets/:id/policy',
    {
      config: { errors: [404] },
      schema: {
        tags: ['catalog'],
        summary:
          "Set the platform's output policy of a dataset (administrators of the provider's organisation). The agent enforces the stricter of it and its own config's, so this can only tighten; {} removes it.",
        params: IdParams,
        body: OutputPolicySchema,
        response: { 200: DatasetSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const record = await store.datasets.get(request.params.id);
      const seen = viewer(principal);
      if (!record || (record.visibility !== 'public' && !seen.all && !seen.orgIds.includes(record.orgId))) {
        throw new InsituError('INSITU_DATASET_NOT_FOUND', `no dataset ${request.params.id}`);
      }
      requireOrgRole(principal, record.orgId, ['admin'], {
        notMember: new InsituError('INSITU_FORBIDDEN', "only the provider organisation's administrators may set it"),
      });
      await store.datasets.setPlatformPolicy(record.id, request.body);
      request.log.info({ dataset: record.id, policy: request.body }, 'dataset output policy set');
      // Pushed to the provider's agents like a change of its deployments (and polled by them).
      reconciler.changed(record.providerId);
      const updated = await store.datasets.get(record.id);
      if (!updated) throw new InsituError('INSITU_DATASET_NOT_FOUND', `no dataset ${request.params.id}`);
      return presentDataset(updated);
    },
  );

  function ownProvider(request: Parameters<typeof agentOf>[0], providerId: string): void {
    const agent = agentOf(request);
    if (agent.providerId !== providerId)
      throw new InsituError('INSITU_FORBIDDEN', "an agent may only write its own provider's catalog");
  }

  app.put(
    '/api/v1/providers/:id/datasets/:name',
    {
      config: { auth: 'agent' },
      schema: {
        tags: ['catalog'],
        summary: "Create or replace a dataset's metadata (the provider's agents)",
        params: DatasetParams,
        body: DatasetInputSchema,
        response: { 200: DatasetSchema, 201: DatasetSchema },
      },
    },
    async (request, reply) => {
      ownProvider(request, request.params.id);
      const { record, created } = await store.datasets.upsert(request.params.id, request.params.name, request.body);
      return reply.status(created ? 201 : 200).send(presentDataset(record));
    },
  );

  app.delete(
    '/api/v1/providers/:id/datasets/:name',
    {
      config: { auth: 'agent' },
      schema: {
        tags: ['catalog'],
        summary: "Remove a dataset from the catalog (the provider's agents)",
        params: DatasetParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      ownProvider(request, request.params.id);
      if (!(await store.datasets.remove(request.params.id, request.params.name))) {
        throw notFound('dataset', `${request.params.name} at this provider`);
      }
      return reply.status(204).send();
    },
  );
}
