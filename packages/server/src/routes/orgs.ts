import { InsituError } from '@insitu/core';
import type { OrgRow } from '@insitu/store';
import { createOrg, createUser, guardLastAdmin } from '../accounts.js';
import { userOf, type App } from '../app.js';
import { canSeeOrg, requireOrgRole, requirePlatformAdmin, type UserPrincipal } from '../auth/principal.js';
import {
  AddMemberBody,
  CreateOrgBody,
  IdParams,
  ListQuery,
  MemberPage,
  MemberParams,
  MemberSchema,
  OrgListQuery,
  OrgPage,
  OrgSchema,
  SetRolesBody,
  UpdateOrgBody,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { presentMember, presentOrg } from '../presenters.js';
import { NoContent } from '../openapi-responses.js';
import { notFound } from '../errors.js';

/** Organisations and their members. */
export function registerOrgRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;

  /** The organisation if the user may see it; 404 otherwise. */
  async function visibleOrg(principal: UserPrincipal, id: string): Promise<OrgRow> {
    const org = canSeeOrg(principal, id) ? await store.orgs.get(id) : undefined;
    if (!org) throw notFound('organisation', id);
    return org;
  }
  const notMember = (id: string) => notFound('organisation', id);

  app.get(
    '/api/v1/orgs',
    {
      schema: {
        tags: ['orgs'],
        summary: 'Organisations: all for platform admins, else your own',
        querystring: OrgListQuery,
        response: { 200: OrgPage },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const { status } = request.query;
      const page = pageRequest(request.query, { status });
      const rows = await store.orgs.list({
        ...(principal.platformAdmin ? {} : { ids: [...principal.orgs.keys()] }),
        ...(status ? { status } : {}),
        limit: page.limit + 1,
        offset: page.offset,
      });
      const result = pageOf(rows, page);
      return { ...result, items: result.items.map(presentOrg) };
    },
  );

  app.post(
    '/api/v1/orgs',
    {
      config: { errors: [409] },
      schema: {
        tags: ['orgs'],
        summary: 'Create an active organisation (platform admins)',
        body: CreateOrgBody,
        response: { 201: OrgSchema },
      },
    },
    async (request, reply) => {
      requirePlatformAdmin(userOf(request));
      const org = await createOrg(store, { ...request.body, status: 'active' });
      return reply.status(201).send(presentOrg(org));
    },
  );

  app.get(
    '/api/v1/orgs/:id',
    {
      schema: {
        tags: ['orgs'],
        summary: 'One organisation (members and platform admins)',
        params: IdParams,
        response: { 200: OrgSchema },
      },
    },
    async (request) => presentOrg(await visibleOrg(userOf(request), request.params.id)),
  );

  app.patch(
    '/api/v1/orgs/:id',
    {
      config: { errors: [409] },
      schema: {
        tags: ['orgs'],
        summary: 'Rename an organisation (its admins)',
        params: IdParams,
        body: UpdateOrgBody,
        response: { 200: OrgSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      await visibleOrg(principal, request.params.id);
      requireOrgRole(principal, request.params.id, ['admin'], { notMember: notMember(request.params.id) });
      await store.orgs.update(request.params.id, { displayName: request.body.displayName });
      return presentOrg(await visibleOrg(principal, request.params.id));
    },
  );

  for (const [action, status] of [
    ['approve', 'active'],
    ['suspend', 'suspended'],
  ] as const) {
    app.post(
      `/api/v1/orgs/:id/${action}`,
      {
        config: { errors: [409] },
        schema: {
          tags: ['orgs'],
          summary: `${action === 'approve' ? 'Approve' : 'Suspend'} an organisation (platform admins)`,
          params: IdParams,
          response: { 200: OrgSchema },
        },
      },
      async (request) => {
        const principal = userOf(request);
        const org = await visibleOrg(principal, request.params.id);
        requirePlatformAdmin(principal);
        if (org.kind === 'platform')
          throw new InsituError('INSITU_CONFLICT', 'the platform organisation cannot change status');
        await store.orgs.setStatus(org.id, status);
        request.log.info({ orgId: org.id, status }, `organisation ${action}d`);
        return presentOrg(await visibleOrg(principal, org.id));
      },
    );
  }

  app.get(
    '/api/v1/orgs/:id/members',
    {
      schema: {
        tags: ['orgs'],
        summary: 'Members of an organisation and their roles (members)',
        params: IdParams,
        querystring: ListQuery,
        response: { 200: MemberPage },
      },
    },
    async (request) => {
      await visibleOrg(userOf(request), request.params.id);
      const page = pageRequest(request.query);
      const members = await store.users.members(request.params.id, { limit: page.limit + 1, offset: page.offset });
      const result = pageOf(members, page);
      return { ...result, items: result.items.map(presentMember) };
    },
  );

  app.post(
    '/api/v1/orgs/:id/members',
    {
      config: { errors: [409] },
      schema: {
        tags: ['orgs'],
        summary:
          'Add a member with roles (org admins). A new user needs a password; an existing one is added by email.',
        params: IdParams,
        body: AddMemberBody,
        response: { 201: MemberSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const org = await visibleOrg(principal, request.params.id);
      requireOrgRole(principal, org.id, ['admin'], { notMember: notMember(org.id) });
      const { email, name, password, roles } = request.body;
      const member = await store.transaction(async (tx) => {
        let user = await tx.users.getByEmail(email);
        if (user && password !== undefined) {
          throw new InsituError('INSITU_VALIDATION', 'a user with this email exists; add them without a password');
        }
        if (!user) {
          if (password === undefined)
            throw new InsituError('INSITU_VALIDATION', 'a new user needs a password (at least 10 characters)');
          user = await createUser(
            tx,
            { email, name: name ?? email.split('@')[0] ?? email, password },
            ctx.passwordCost,
          );
        }
        for (const role of roles) await tx.users.addRole(org.id, user.id, role);
        const memberships = await tx.users.memberships(user.id);
        return { user, roles: memberships.filter((m) => m.orgId === org.id).map((m) => m.role) };
      });
      return reply.status(201).send(presentMember(member));
    },
  );

  app.put(
    '/api/v1/orgs/:id/members/:userId',
    {
      config: { errors: [409] },
      schema: {
        tags: ['orgs'],
        summary: "Replace a member's roles (org admins)",
        params: MemberParams,
        body: SetRolesBody,
        response: { 200: MemberSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const org = await visibleOrg(principal, request.params.id);
      requireOrgRole(principal, org.id, ['admin'], { notMember: notMember(org.id) });
      return store.transaction(async (tx) => {
        const user = await tx.users.get(request.params.userId);
        const current = user ? (await tx.users.memberships(user.id)).filter((m) => m.orgId === org.id) : [];
        if (!user || current.length === 0)
          throw new InsituError('INSITU_USER_NOT_FOUND', `no member ${request.params.userId} in this organisation`);
        await guardLastAdmin(tx, org.id, user.id, request.body.roles);
        await tx.users.setRoles(org.id, user.id, request.body.roles);
        return presentMember({ user, roles: [...request.body.roles].sort() });
      });
    },
  );

  app.delete(
    '/api/v1/orgs/:id/members/:userId',
    {
      config: { errors: [409] },
      schema: {
        tags: ['orgs'],
        summary: 'Remove a member (org admins)',
        params: MemberParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      const org = await visibleOrg(principal, request.params.id);
      requireOrgRole(principal, org.id, ['admin'], { notMember: notMember(org.id) });
      await store.transaction(async (tx) => {
        await guardLastAdmin(tx, org.id, request.params.userId, []);
        if (!(await tx.users.removeMembership(org.id, request.params.userId))) {
          throw new InsituError('INSITU_USER_NOT_FOUND', `no member ${request.params.userId} in this organisation`);
        }
      });
      return reply.status(204).send();
    },
  );
}
