import {
  AGENT_PROBE_PATH,
  CLUSTER_AUTH_HEADER,
  InsituError,
  reportsCrashLoop,
  verifyClusterRequest,
} from '@insitu/core';
import Type from 'typebox';
import type { App } from '../app.js';
import type { ServerContext } from '../context.js';
import { clusterSecret } from '../tunnel-endpoint.js';

const Closed = { additionalProperties: false } as const;
const OperatorEventSchema = Type.Object(
  {
    id: Type.String({ pattern: '^evt_[0-9A-Za-z]{10,40}$' }),
    at: Type.String({ format: 'date-time' }),
    node: Type.String({ maxLength: 64 }),
    type: Type.String({ pattern: '^[a-z][a-z0-9-]{0,40}$' }),
    service: Type.Optional(Type.String({ maxLength: 64 })),
    subject: Type.Optional(Type.String({ maxLength: 200 })),
    reason: Type.String({ maxLength: 4000 }),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  Closed,
);

const ProbeResultSchema = Type.Object({
  node: Type.String(),
  database: Type.Object({ ok: Type.Boolean(), ms: Type.Number(), error: Type.Optional(Type.String()) }),
  sessions: Type.Array(
    Type.Object({
      sessionId: Type.String(),
      agentId: Type.String(),
      providerId: Type.String(),
      ok: Type.Boolean(),
      ms: Type.Number(),
      error: Type.Optional(Type.String()),
    }),
  ),
  agents: Type.Array(
    Type.Object({
      id: Type.String(),
      name: Type.String(),
      providerId: Type.String(),
      lastSeenAt: Type.Union([Type.String(), Type.Null()]),
      enrolledAt: Type.String(),
    }),
  ),
  crashLooping: Type.Array(
    Type.Object({
      deploymentId: Type.String(),
      app: Type.String(),
      providerId: Type.String(),
      agentId: Type.String(),
      reason: Type.String(),
      since: Type.String(),
    }),
  ),
});

/**
 * Endpoints for the operator of a cluster, signed with the cluster secret (header
 * `insitu-cluster-auth`, see `@insitu/core`'s `signClusterRequest`), not for people:
 * `POST /api/v1/cluster/probe` (the deep probe: a write and read of the platform database
 * and a request through the tunnel to every agent session this node holds, answered by the
 * agent itself) and `POST /api/v1/cluster/events` (the operator's events copied into the
 * event log as platform-wide events of kind `operator.<type>`). Without a cluster secret
 * they answer 403.
 */
export function registerOperatorClusterRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;
  const secret = clusterSecret(ctx.config);
  const verify = (method: string, path: string, header: string | string[] | undefined): string => {
    if (!secret)
      throw new InsituError('INSITU_FORBIDDEN', 'this node has no cluster secret: the operator endpoints are off');
    const node = verifyClusterRequest(secret, typeof header === 'string' ? header : undefined, method, path);
    if (!node)
      throw new InsituError(
        'INSITU_UNAUTHENTICATED',
        `${path} needs a valid ${CLUSTER_AUTH_HEADER} signed with the cluster secret`,
      );
    return node;
  };

  app.post(
    '/api/v1/cluster/probe',
    {
      config: { auth: 'public', errors: [401, 403] },
      schema: {
        tags: ['cluster'],
        summary:
          "The operator's deep probe (signed with the cluster secret): database write and read, every local agent session's built-in probe path",
        security: [],
        body: Type.Object({}, Closed),
        response: { 200: ProbeResultSchema },
      },
    },
    async (request) => {
      verify('POST', '/api/v1/cluster/probe', request.headers[CLUSTER_AUTH_HEADER]);
      const started = Date.now();
      let database: { ok: boolean; ms: number; error?: string };
      try {
        await store.transaction((tx) => tx.events.probe(ctx.node.id));
        database = { ok: true, ms: Date.now() - started };
      } catch (error) {
        database = { ok: false, ms: Date.now() - started, error: (error as Error).message.slice(0, 500) };
      }
      const sessions = await Promise.all(
        app.tunnel.sessions().map(async (session) => {
          const at = Date.now();
          try {
            const response = await app.tunnel.request({
              providerId: session.providerId,
              sessionId: session.sessionId,
              method: 'GET',
              path: AGENT_PROBE_PATH,
              deadlineMs: 3000,
            });
            const chunks: Buffer[] = [];
            for await (const chunk of response.body) chunks.push(chunk as Buffer);
            const ok = response.status === 200;
            return {
              sessionId: session.sessionId,
              agentId: session.agentId,
              providerId: session.providerId,
              ok,
              ms: Date.now() - at,
              ...(ok ? {} : { error: `answered ${response.status}` }),
            };
          } catch (error) {
            return {
              sessionId: session.sessionId,
              agentId: session.agentId,
              providerId: session.providerId,
              ok: false,
              ms: Date.now() - at,
              error: (error as Error).message.slice(0, 300),
            };
          }
        }),
      );
      let agents: { id: string; name: string; providerId: string; lastSeenAt: string | null; enrolledAt: string }[] =
        [];
      let crashLooping: {
        deploymentId: string;
        app: string;
        providerId: string;
        agentId: string;
        reason: string;
        since: string;
      }[] = [];
      if (database.ok) {
        agents = (await store.providers.listAgents({ limit: 1000, offset: 0 }))
          .filter((agent) => agent.revoked_at === null)
          .map((agent) => ({
            id: agent.id,
            name: agent.name,
            providerId: agent.provider_id,
            lastSeenAt: agent.last_seen_at === null ? null : new Date(agent.last_seen_at).toISOString(),
            enrolledAt: new Date(agent.created_at).toISOString(),
          }));
        const deployments = await store.deployments.list({ states: ['active'], limit: 1000, offset: 0 });
        const byId = new Map(deployments.map((d) => [d.id, d]));
        crashLooping = (await store.deployments.statuses([...byId.keys()]))
          // A crash-looping instance of a degraded deployment counts too: its others serve, it does not.
          .filter((status) => reportsCrashLoop(status))
          .map((status) => ({
            deploymentId: status.deployment_id,
            app: byId.get(status.deployment_id)?.app_id ?? '',
            providerId: byId.get(status.deployment_id)?.provider_id ?? '',
            agentId: status.agent_id,
            reason: status.reason,
            since: new Date(status.updated_at).toISOString(),
          }));
      }
      return { node: ctx.node.id, database, sessions, agents, crashLooping };
    },
  );

  app.post(
    '/api/v1/cluster/events',
    {
      config: { auth: 'public', errors: [401, 403] },
      schema: {
        tags: ['cluster'],
        summary:
          "Copy the operator's events into the event log (signed with the cluster secret); ids already present are skipped",
        security: [],
        body: Type.Object({ events: Type.Array(OperatorEventSchema, { maxItems: 1000 }) }, Closed),
        response: { 200: Type.Object({ added: Type.Integer() }) },
      },
    },
    async (request) => {
      verify('POST', '/api/v1/cluster/events', request.headers[CLUSTER_AUTH_HEADER]);
      const added = await store.events.addMissing(
        request.body.events.map((event) => ({
          id: event.id,
          ts: Date.parse(event.at),
          orgId: null,
          kind: `operator.${event.type}`,
          subject: (event.service ? `${event.service}@${event.node}` : (event.subject ?? event.node)).slice(0, 64),
          message: event.reason,
          data: {
            node: event.node,
            ...(event.service ? { service: event.service } : {}),
            ...(event.subject ? { subject: event.subject } : {}),
            ...(event.details ?? {}),
          },
        })),
      );
      return { added };
    },
  );
}
