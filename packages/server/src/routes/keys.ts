import { InsituError, generateSecret, hashSecret } from '@insitu/core';
import type { ApiKeyRow } from '@insitu/store';
import Type from 'typebox';
import { userOf, type App } from '../app.js';
import { canSeeOrg, hasOrgRole, requireOrgRole } from '../auth/principal.js';
import { CreateKeyBody, IdParams, KeyListQuery, KeyPage, KeySchema } from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import type { Gateway } from '../gateway/gateway.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentKey } from '../presenters.js';
import { NameResolver } from '../name-resolver.js';
import { NoContent } from '../openapi-responses.js';
import { notFound } from '../errors.js';

/** API keys: shown once, stored as SHA-256, scoped to services, expiring, revocable. */
export function registerKeyRoutes(app: App, ctx: ServerContext, gateway: Gateway): void {
  const { store } = ctx;

  app.post(
    '/api/v1/keys',
    {
      config: { errors: [404] },
      schema: {
        tags: ['keys'],
        summary: 'Create an API key for services (user role); the key is shown once',
        body: CreateKeyBody,
        response: { 201: Type.Object({ ...KeySchema.properties, key: Type.String() }) },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { orgId, name, services, ttlSeconds } = request.body;
      requireOrgRole(principal, orgId, ['user'], {
        active: true,
        notMember: notFound('organisation', orgId),
      });
      const serviceIds: string[] = [];
      for (const ref of services) {
        const row = await new NameResolver(store).service(ref);
        const visible =
          row && (row.access === 'public' || row.org_id === orgId || (await store.services.isGranted(row.id, orgId)));
        if (!row || !visible) throw notFound('service', `${ref} that ${orgId} may call`);
        serviceIds.push(row.id);
      }
      const key = generateSecret('key');
      const row = await store.services.createKey({
        orgId,
        userId: principal.userId,
        name,
        keyHash: hashSecret(key),
        prefix: key.slice(0, 16),
        serviceIds,
        expiresAt: ttlSeconds ? ctx.now() + ttlSeconds * 1000 : null,
      });
      await store.events.add({
        orgId,
        kind: 'key.created',
        subject: row.id,
        message: `API key ${name} (${row.prefix}…) created`,
      });
      return reply.status(201).send({ ...presentKey(row, ctx.now()), key });
    },
  );

  app.get(
    '/api/v1/keys',
    {
      config: { errors: [404] },
      schema: {
        tags: ['keys'],
        summary: "Your organisations' API keys (user role), without secrets",
        querystring: KeyListQuery,
        response: { 200: KeyPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { org } = request.query;
      const page = pageRequest(request.query, { org });
      let orgIds: string[] | undefined;
      if (org) {
        requireOrgRole(principal, org, ['user'], {
          notMember: notFound('organisation', org),
        });
        orgIds = [org];
      } else if (!principal.platformAdmin) {
        orgIds = [...principal.orgs.keys()].filter((id) => hasOrgRole(principal, id, ['user']));
      }
      const rows = await store.services.listKeys({
        ...(orgIds ? { orgIds } : {}),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: result.items.map((r) => presentKey(r, ctx.now())) };
    },
  );

  async function visibleKey(principalOrgs: (orgId: string) => boolean, id: string): Promise<ApiKeyRow> {
    const row = await store.services.getKey(id);
    if (!row || !principalOrgs(row.org_id)) throw notFound('API key', id);
    return row;
  }

  app.delete(
    '/api/v1/keys/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['keys'],
        summary: 'Revoke an API key (user role); calls with it get 401 at once',
        params: IdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const row = await visibleKey((orgId) => canSeeOrg(principal, orgId), request.params.id);
      requireOrgRole(principal, row.org_id, ['user']);
      if (!(await store.services.revokeKey(row.id)))
        throw new InsituError('INSITU_CONFLICT', 'the key is revoked already');
      await store.events.add({
        orgId: row.org_id,
        kind: 'key.revoked',
        subject: row.id,
        message: `API key ${row.name} (${row.prefix}…) revoked`,
      });
      gateway.invalidate();
      return reply.status(204).send();
    },
  );
}
