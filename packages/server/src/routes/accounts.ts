import { InsituError, hashPassword, verifyPassword } from '@insitu/core';
import Type from 'typebox';
import { signIn, signUp } from '../accounts.js';
import { userOf, type App } from '../app.js';
import { requirePlatformAdmin } from '../auth/principal.js';
import {
  ListQuery,
  MeSchema,
  OrgSchema,
  SessionSchema,
  SignInBody,
  SignupBody,
  UpdateMeBody,
  UserPage,
  UserSchema,
} from '../api-schemas.js';
import type { ServerContext } from '../context.js';
import { pageOf, pageRequest } from '../pagination.js';
import { iso, presentOrg, presentUser } from '../presenters.js';
import { NoContent } from '../openapi-responses.js';

/** Sign-up, sign-in/out, and the signed-in user's own account. */
export function registerAccountRoutes(app: App, ctx: ServerContext): void {
  const ttlMs = ctx.config.auth.sessionTtlSeconds * 1000;

  app.post(
    '/api/v1/signup',
    {
      config: { auth: 'public', errors: [403, 409] },
      schema: {
        tags: ['accounts'],
        summary: 'Create an organisation and its first administrator (pending until approved, unless sign-up is open)',
        security: [],
        body: SignupBody,
        response: { 201: Type.Object({ org: OrgSchema, session: SessionSchema }) },
      },
    },
    async (request, reply) => {
      const { org, session } = await signUp(ctx.store, request.body, {
        mode: ctx.config.auth.signup,
        cost: ctx.passwordCost,
        sessionTtlMs: ttlMs,
      });
      request.log.info({ orgId: org.id, userId: session.user.id, status: org.status }, 'organisation signed up');
      return reply.status(201).send({
        org: presentOrg(org),
        session: { token: session.token, expiresAt: iso(session.expiresAt), user: presentUser(session.user) },
      });
    },
  );

  app.post(
    '/api/v1/sessions',
    {
      config: { auth: 'public', errors: [401] },
      schema: {
        tags: ['accounts'],
        summary: 'Sign in: trade email and password for a bearer token',
        security: [],
        body: SignInBody,
        response: { 201: SessionSchema },
      },
    },
    async (request, reply) => {
      const session = await signIn(ctx.store, request.body.email, request.body.password, ttlMs, ctx.passwordCost);
      return reply
        .status(201)
        .send({ token: session.token, expiresAt: iso(session.expiresAt), user: presentUser(session.user) });
    },
  );

  app.delete(
    '/api/v1/sessions/current',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Sign out: revoke the bearer token of this request',
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      await ctx.store.sessions.revoke(userOf(request).sessionId);
      return reply.status(204).send();
    },
  );

  app.get(
    '/api/v1/users/me',
    {
      schema: {
        tags: ['accounts'],
        summary: 'The signed-in user, their organisations and roles',
        response: { 200: MeSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const user = await ctx.store.users.get(principal.userId);
      if (!user) throw new InsituError('INSITU_UNAUTHENTICATED', 'the account no longer exists');
      const memberships = await ctx.store.users.memberships(user.id);
      const byOrg = new Map<
        string,
        { orgId: string; orgName: string; orgStatus: string; roles: Array<(typeof memberships)[number]['role']> }
      >();
      for (const m of memberships) {
        const entry = byOrg.get(m.orgId) ?? { orgId: m.orgId, orgName: m.orgName, orgStatus: m.orgStatus, roles: [] };
        entry.roles.push(m.role);
        byOrg.set(m.orgId, entry);
      }
      return { user: presentUser(user), platformAdmin: principal.platformAdmin, memberships: [...byOrg.values()] };
    },
  );

  app.patch(
    '/api/v1/users/me',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Change your name or password (the current password is required for a new one)',
        body: UpdateMeBody,
        response: { 200: UserSchema },
      },
    },
    async (request) => {
      const principal = userOf(request);
      const user = await ctx.store.users.get(principal.userId);
      if (!user) throw new InsituError('INSITU_UNAUTHENTICATED', 'the account no longer exists');
      const { name, password, currentPassword } = request.body;
      let passwordHash: string | undefined;
      if (password !== undefined) {
        if (currentPassword === undefined || !(await verifyPassword(currentPassword, user.password_hash))) {
          throw new InsituError('INSITU_BAD_CREDENTIALS', 'currentPassword is missing or wrong');
        }
        passwordHash = await hashPassword(password, ctx.passwordCost);
      }
      await ctx.store.transaction(async (tx) => {
        await tx.users.update(user.id, {
          ...(name !== undefined ? { name } : {}),
          ...(passwordHash ? { passwordHash } : {}),
        });
        // A new password ends every other session of the user.
        if (passwordHash) await tx.sessions.revokeAllOfUser(user.id, principal.sessionId);
      });
      const updated = await ctx.store.users.get(user.id);
      return presentUser(updated ?? user);
    },
  );

  app.get(
    '/api/v1/users',
    {
      schema: {
        tags: ['accounts'],
        summary: 'All users (platform admins)',
        querystring: ListQuery,
        response: { 200: UserPage },
      },
    },
    async (request) => {
      requirePlatformAdmin(userOf(request));
      const page = pageRequest(request.query);
      const rows = await ctx.store.users.list({ limit: page.limit + 1, offset: page.offset });
      const result = pageOf(rows, page);
      return { ...result, items: result.items.map(presentUser) };
    },
  );
}
