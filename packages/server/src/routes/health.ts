import { InsituError } from '@insitu/core';
import Type from 'typebox';
import type { App } from '../app.js';
import { requirePlatformAdmin } from '../auth/principal.js';
import { userOf } from '../app.js';
import type { ServerContext } from '../context.js';
import { iso } from '../presenters.js';
import { ApiErrorRef } from '../openapi-responses.js';

/** `/healthz` (alive), `/readyz` (database reachable), `/metrics`, and `/api/v1/cluster`. */
export function registerHealthRoutes(app: App, ctx: ServerContext): void {
  app.get(
    '/healthz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process answers',
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary: 'Readiness: the platform database and the coordination store answer',
        security: [],
        response: {
          200: Type.Object({ status: Type.Literal('ready'), checks: Type.Record(Type.String(), Type.String()) }),
          503: {
            description:
              'Not ready: the database or the coordination store does not answer, or the node is draining (INSITU_NOT_READY)',
            content: { 'application/json': { schema: ApiErrorRef } },
          },
        },
      },
    },
    async () => {
      if (ctx.lifecycle.draining)
        throw new InsituError('INSITU_NOT_READY', 'not ready: this node is shutting down (draining)', {
          details: { checks: { lifecycle: 'draining' } },
        });
      const checks: Record<string, string> = {};
      const [database, coordination] = await Promise.allSettled([ctx.store.ping(), app.coordinator.get('readyz')]);
      checks.database = database.status === 'fulfilled' ? 'ok' : 'down';
      checks.coordination = coordination.status === 'fulfilled' ? 'ok' : 'down';
      if (checks.database !== 'ok' || checks.coordination !== 'ok') {
        const down = Object.entries(checks)
          .filter(([, state]) => state !== 'ok')
          .map(([name]) => name);
        throw new InsituError(
          'INSITU_NOT_READY',
          `not ready: ${down.join(' and ')} ${down.length > 1 ? 'do' : 'does'} not answer`,
          { details: { checks } },
        );
      }
      return { status: 'ready' as const, checks };
    },
  );

  app.get(
    '/metrics',
    {
      config: { auth: 'metrics' },
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (platform admins or the metrics token)',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text exposition format' }) },
      },
    },
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
            nodes: Type.Array(
              Type.Object({
                id: Type.String(),
                version: Type.String(),
                startedAt: Type.String(),
                role: Type.String(),
                services: Type.Array(Type.String()),
              }),
            ),
            database: Type.Object({
              dialect: Type.String(),
              status: Type.String(),
              cluster: Type.Optional(Type.String({ description: 'The MySQL cluster whose primary the store follows' })),
              topology: Type.Optional(
                Type.Unknown({
                  description:
                    "The dbmanager's published topology: primary, epoch, replicas waiting to rejoin, quarantined members, cooldown",
                }),
              ),
              events: Type.Optional(
                Type.Array(Type.Unknown(), {
                  description: "The dbmanager's latest events (failovers, rejoins, repairs, alerts), newest first",
                }),
              ),
            }),
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
                  services: Type.Array(
                    Type.Object({
                      key: Type.String(),
                      weight: Type.Optional(Type.Number()),
                      capacity: Type.Optional(Type.Integer()),
                    }),
                  ),
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
      const cluster = ctx.config.database.followPrimary;
      const parse = (text: string | undefined): unknown => {
        try {
          return text ? (JSON.parse(text) as unknown) : undefined;
        } catch {
          return { error: 'not JSON' };
        }
      };
      let topology: unknown;
      let events: unknown[] | undefined;
      if (cluster) {
        topology = parse(await app.coordinator.get(`dbmanager/${cluster}/topology`).catch(() => undefined));
        const published = await app.coordinator
          .list(`dbmanager/${cluster}/events/`)
          .catch(() => new Map<string, string>());
        events = [...published.entries()]
          .sort(([a], [b]) => (a < b ? 1 : -1))
          .slice(0, 20)
          .map(([, value]) => parse(value));
      }
      return {
        nodes: [
          {
            id: ctx.node.id,
            version: ctx.node.version,
            startedAt: iso(ctx.node.startedAt),
            role: app.coordinator.kind === 'etcd' ? 'cluster-node' : 'all-in-one',
            services: ['api', 'gateway', 'tunnel'],
          },
        ],
        database: {
          dialect: ctx.store.dialect,
          status,
          ...(cluster ? { cluster } : {}),
          ...(topology !== undefined ? { topology } : {}),
          ...(events ? { events } : {}),
        },
        coordination: { kind: app.coordinator.kind },
        tunnel: { sessions: app.tunnel.sessions() },
      };
    },
  );
}
