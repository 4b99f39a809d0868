import { ErrorBodySchema, InsituError } from '@insitu/core';
import Type from 'typebox';
import type { App } from '../app.js';
import { requirePlatformAdmin } from '../auth/principal.js';
import { userOf } from '../app.js';
import type { ServerContext } from '../context.js';
import { iso } from '../presenters.js';

/** `/healthz` (alive), `/readyz` (database reachable), `/metrics`, and `/api/v1/cluster`. */
export function registerHealthRoutes(app: App, ctx: ServerContext): void {
  app.get(
    '/healthz',
    {
      config: { auth: 'public' },
      schema: { tags: ['health'], summary: 'Liveness: the process answers', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Readiness: the platform database answers',
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ready'), checks: Type.Record(Type.String(), Type.String()) }), 503: ErrorBodySchema },
      },
    },
    async () => {
      try {
        await ctx.store.ping();
      } catch (error) {
        throw new InsituError('INSITU_NOT_READY', 'not ready: the platform database does not answer', { details: { checks: { database: 'down' } }, cause: error });
      }
      return { status: 'ready' as const, checks: { database: 'ok' } };
    },
  );

  app.get(
    '/metrics',
    { config: { auth: 'metrics' }, schema: { tags: ['health'], summary: 'Prometheus metrics (platform admins or the metrics token)', produces: ['text/plain'] } },
    async (_request, reply) => {
      void reply.type(ctx.registry.contentType);
      return ctx.registry.metrics();
    },
  );

  app.get(
    '/api/v1/cluster',
    {
      schema: {
        tags: ['cluster'],
        summary: 'Nodes, platform services and the database (platform admins)',
        response: {
          200: Type.Object({
            nodes: Type.Array(Type.Object({ id: Type.String(), version: Type.String(), startedAt: Type.String(), role: Type.String(), services: Type.Array(Type.String()) })),
            database: Type.Object({ dialect: Type.String(), status: Type.String() }),
            coordination: Type.Object({ kind: Type.String() }),
            tunnel: Type.Object({
              sessions: Type.Array(
                Type.Object({
                  sessionId: Type.String(),
                  agentId: Type.String(),
                  providerId: Type.String(),
                  nodeId: Type.String(),
                  remoteAddress: Type.String(),
                  connectedAt: Type.String(),
                  services: Type.Array(Type.Object({ key: Type.String(), weight: Type.Optional(Type.Number()), capacity: Type.Optional(Type.Integer()) })),
                  inFlight: Type.Integer(),
                  rttMs: Type.Number(),
                  ewmaMs: Type.Number(),
                  ejected: Type.Boolean(),
                  requests: Type.Integer(),
                }),
              ),
            }),
          }),
        },
      },
    },
    async (request) => {
      requirePlatformAdmin(userOf(request));
      const status = await ctx.store.ping().then(
        () => 'ok',
        () => 'down',
      );
      return {
        nodes: [{ id: ctx.node.id, version: ctx.node.version, startedAt: iso(ctx.node.startedAt), role: 'all-in-one', services: ['api'] }],
        database: { dialect: ctx.store.dialect, status },
        coordination: { kind: app.coordinator.kind },
        tunnel: { sessions: app.tunnel.sessions() },
      };
    },
  );
}
