import { InsituError } from '@insitu/core';
import Type from 'typebox';
import type { App } from '../app.js';
import { requirePlatformAdmin } from '../auth/principal.js';
import { userOf } from '../app.js';
import type { ServerContext } from '../context.js';
import { iso } from '../presenters.js';
import { ApiErrorRef } from '../openapi-responses.js';
import { Readiness } from '../readiness.js';

/** `/healthz` (alive), `/readyz` (this node can serve: see readiness.ts), `/metrics`, and `/api/v1/cluster`. */
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

  const readiness = new Readiness(
    {
      database: { probe: () => ctx.store.ping(), graceMs: ctx.config.readiness.databaseGraceMs },
      coordination: { probe: () => app.coordinator.get('readyz'), graceMs: ctx.config.readiness.coordinationGraceMs },
    },
    { probeTimeoutMs: ctx.config.readiness.probeTimeoutMs, now: ctx.now, registry: ctx.registry },
  );
  const DependencyState = Type.Object({
    state: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('down')]),
    downForMs: Type.Optional(Type.Integer()),
    graceMs: Type.Integer(),
    error: Type.Optional(Type.String()),
  });
  app.get(
    '/readyz',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['health'],
        summary:
          'Readiness of this node: it serves, and its database and coordination handles answered within their grace windows',
        security: [],
        response: {
          200: Type.Object({
            status: Type.Literal('ready'),
            checks: Type.Record(Type.String(), Type.String(), {
              description: 'ok, or degraded: not answering now but within its grace window (calls answer coded errors)',
            }),
            dependencies: Type.Record(Type.String(), DependencyState),
          }),
          503: {
            description:
              'Not ready: the database or the coordination store has not answered this node for longer than its grace window, or the node is draining (INSITU_NOT_READY)',
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
      const { ready, dependencies } = await readiness.check();
      const checks = Object.fromEntries(Object.entries(dependencies).map(([name, d]) => [name, d.state]));
      if (!ready) {
        const down = Object.entries(dependencies)
          .filter(([, d]) => d.state === 'down')
          .map(
            ([name, d]) =>
              `${name} (${d.downForMs === undefined ? 'never answered' : `${Math.round(d.downForMs / 1000)} s`})`,
          );
        throw new InsituError(
          'INSITU_NOT_READY',
          `not ready: ${down.join(' and ')} ${down.length > 1 ? 'do' : 'does'} not answer this node past the grace window`,
          { details: { checks, dependencies } },
        );
      }
      return { status: 'ready' as const, checks, dependencies };
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
