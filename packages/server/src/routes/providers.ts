import { InsituError, generateSecret, hashSecret } from '@insitu/core';
import { isUniqueViolation, type ProviderRow } from '@insitu/store';
import Type from 'typebox';
import { userOf, type App } from '../app.js';
import { requireOrgRole, type UserPrincipal } from '../auth/principal.js';
import {
  ByProviderQuery,
  CreateProviderBody,
  CreateTokenBody,
  EnrolmentTokenSchema,
  IdParams,
  ProviderListQuery,
  ProviderPage,
  ProviderSchema,
  TokenPage,
  UpdateProviderBody,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentProvider, presentToken } from '../presenters.js';
import { NameResolver } from '../name-resolver.js';
import { NoContent } from '../openapi-responses.js';
import { notFound } from '../errors.js';

/** Providers (public metadata) and their enrolment tokens (private to the provider's organisation). */
export function registerProviderRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;

  async function provider(id: string): Promise<ProviderRow> {
    const row = await store.providers.get(id);
    if (!row) throw notFound('provider', id);
    return row;
  }

  /** Provider-role check on a provider the caller can see (providers are public, so outsiders get 403). */
  function requireProviderRole(principal: UserPrincipal, row: ProviderRow, active = false): void {
    requireOrgRole(principal, row.org_id, ['provider'], {
      active,
      notMember: new InsituError('INSITU_FORBIDDEN', "only the provider's organisation may do this"),
    });
  }

  app.post(
    '/api/v1/providers',
    {
      config: { errors: [404, 409] },
      schema: {
        tags: ['providers'],
        summary: 'Offer data as a provider of your organisation (provider role, active organisation)',
        body: CreateProviderBody,
        response: { 201: ProviderSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const { orgId, name, displayName, description } = request.body;
      requireOrgRole(principal, orgId, ['provider'], {
        active: true,
        notMember: notFound('organisation', orgId),
      });
      const org = await store.orgs.get(orgId);
      if (!org) throw notFound('organisation', orgId);
      if (org.status !== 'active') throw new InsituError('INSITU_ORG_NOT_ACTIVE', `the organisation is ${org.status}`);
      try {
        const row = await store.providers.create({
          orgId,
          name,
          displayName: displayName ?? name,
          description: description ?? '',
        });
        return reply.status(201).send(presentProvider(row));
      } catch (error) {
        if (isUniqueViolation(error))
          throw new InsituError('INSITU_CONFLICT', `a provider named "${name}" exists already`);
        throw error;
      }
    },
  );

  app.get(
    '/api/v1/providers',
    {
      config: { auth: 'user-or-agent', errors: [404] },
      schema: {
        tags: ['providers'],
        summary: 'Providers (public metadata)',
        querystring: ProviderListQuery,
        response: { 200: ProviderPage },
      },
    },
    async (request) => {
      const { org, name } = request.query;
      const page = pageRequest(request.query, { org, name });
      if (name !== undefined) {
        // By name only (an id-shaped string is read as an id, and no name equals an id).
        const row = await new NameResolver(store).provider(name);
        return { items: row && row.name === name && (!org || row.org_id === org) ? [presentProvider(row)] : [] };
      }
      const rows = await store.providers.list({
        ...(org ? { orgId: org } : {}),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: result.items.map(presentProvider) };
    },
  );

  app.get(
    '/api/v1/providers/:id',
    {
      config: { auth: 'user-or-agent' },
      schema: { tags: ['providers'], summary: 'One provider', params: IdParams, response: { 200: ProviderSchema } },
    },
    async (request) => presentProvider(await provider(request.params.id)),
  );

  app.patch(
    '/api/v1/providers/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['providers'],
        summary: 'Edit a provider (provider role)',
        params: IdParams,
        body: UpdateProviderBody,
        response: { 200: ProviderSchema },
      },
    },
    async (request) => {
      const row = await provider(request.params.id);
      requireProviderRole(userOf(request), row);
      await store.providers.update(row.id, request.body);
      return presentProvider(await provider(row.id));
    },
  );

  // Enrolment tokens

  app.post(
    '/api/v1/tokens',
    {
      config: { errors: [404] },
      schema: {
        tags: ['agents'],
        summary:
          'Create a single-use enrolment token for an agent of a provider (provider role); the token is shown once',
        body: CreateTokenBody,
        response: { 201: Type.Object({ ...EnrolmentTokenSchema.properties, token: Type.String() }) },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const row = await provider(request.body.providerId);
      requireProviderRole(principal, row, true);
      const token = generateSecret('enr');
      const ttlSeconds = request.body.ttlSeconds ?? ctx.config.auth.enrolmentTokenTtlSeconds;
      const created = await store.providers.createToken({
        providerId: row.id,
        tokenHash: hashSecret(token),
        note: request.body.note ?? '',
        createdBy: principal.userId,
        ttlMs: ttlSeconds * 1000,
      });
      request.log.info({ tokenId: created.id, providerId: row.id }, 'enrolment token created');
      return reply.status(201).send({ ...presentToken(created, ctx.now()), token });
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      config: { errors: [404] },
      schema: {
        tags: ['agents'],
        summary: "A provider's enrolment tokens, without secrets (provider role)",
        querystring: ByProviderQuery,
        response: { 200: TokenPage },
      },
    },
    async (request) => {
      const row = await provider(request.query.provider);
      requireProviderRole(userOf(request), row);
      const page = pageRequest(request.query, { provider: row.id });
      const rows = await store.providers.listTokens(row.id, { limit: page.limit + 1, offset: page.offset });
      const result = pageOf(rows, page);
      const now = ctx.now();
      return { ...result, items: result.items.map((t) => presentToken(t, now)) };
    },
  );

  app.delete(
    '/api/v1/tokens/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['agents'],
        summary: 'Revoke an unused enrolment token (provider role)',
        params: IdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const token = await store.providers.getToken(request.params.id);
      const row = token ? await store.providers.get(token.provider_id) : undefined;
      if (!token || !row || !(principal.platformAdmin || principal.orgs.has(row.org_id))) {
        throw new InsituError('INSITU_NOT_FOUND', `no enrolment token ${request.params.id}`);
      }
      requireProviderRole(principal, row);
      if (!(await store.providers.revokeToken(token.id)))
        throw new InsituError('INSITU_CONFLICT', 'the token was used or revoked already');
      return reply.status(204).send();
    },
  );
}
