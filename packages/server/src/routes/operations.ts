import { InsituError, newId } from '@insitu/core';
import Type from 'typebox';
import { userOf, type App } from '../app.js';
import { requirePlatformAdmin } from '../auth/principal.js';
import type { ServerContext } from '../context.js';
import { NoContent } from '../openapi-responses.js';
import { iso } from '../presenters.js';

/*
 * What the operator publishes in coord, read for platform administrators (the console's
 * Operations page). The server may not import @insitu/operator (layering), so the key names
 * below repeat packages/operator/src/keys.ts, and the record shapes are read loosely (the
 * operator's `records.ts` is their truth): a field the operator adds passes through, one it
 * drops reads as absent.
 */
const OPERATOR_KEYS = {
  election: 'operator',
  members: 'operator/members/',
  nodes: 'operator/nodes/',
  alerts: 'operator/alerts',
  silences: 'operator/silences/',
  events: 'operator/events/',
} as const;

/** Labels an alert can be matched on (the operator's ALERT_LABELS). */
const ALERT_LABELS = ['condition', 'subject', 'node', 'service', 'severity'] as const;

const Closed = { additionalProperties: false } as const;
const Loose = Type.Record(Type.String(), Type.Unknown());

const SilenceSchema = Type.Object({
  id: Type.String(),
  matchers: Type.Array(Type.Object({ label: Type.String(), value: Type.String() })),
  createdAt: Type.String(),
  endsAt: Type.String(),
  createdBy: Type.String(),
  comment: Type.Optional(Type.String()),
});
type Silence = Type.Static<typeof SilenceSchema>;

const SilenceIdParams = Type.Object({ id: Type.String({ pattern: '^sil_[0-9A-Za-z]{10,40}$' }) }, Closed);

const CreateSilenceBody = Type.Object(
  {
    matchers: Type.Array(
      Type.Object(
        {
          label: Type.Union(ALERT_LABELS.map((label) => Type.Literal(label))),
          value: Type.String({
            pattern: '^[A-Za-z0-9@._*:-]{1,200}$',
            description: 'Exact value, or with * as a wildcard',
          }),
        },
        Closed,
      ),
      { minItems: 1, maxItems: 10 },
    ),
    durationMinutes: Type.Integer({ minimum: 1, maximum: 60 * 24 * 30, description: 'How long it lasts' }),
    comment: Type.Optional(Type.String({ maxLength: 500 })),
  },
  Closed,
);

function parse<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/**
 * `GET /api/v1/cluster/operator` (the operator's nodes, their services with health and
 * restarts, the leader), `GET /api/v1/alerts` (open alerts and recent resolutions), and
 * silences (`GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}` expires one): platform
 * administrators only. Creating or expiring a silence is recorded in the event log under the
 * administrator's id, and as an operator event in coord with the same id (so the operator's
 * copy into the event log adds nothing twice).
 */
export function registerOperationsRoutes(app: App, ctx: ServerContext): void {
  const { store } = ctx;
  const coord = () => app.coordinator;

  /** Record one administrator action twice under one id: the event log now, coord for `insitu operator events`. */
  async function record(type: string, subject: string, message: string, by: string): Promise<void> {
    const id = newId('evt');
    const at = ctx.now();
    await store.events.add({
      id,
      ts: at,
      orgId: null,
      kind: `operator.${type}`,
      subject,
      message,
      data: { by, via: 'api' },
    });
    const event = { id, at: iso(at), node: 'api', type, subject, reason: message, details: { by } };
    await coord()
      .put(`${OPERATOR_KEYS.events}${id}`, JSON.stringify(event))
      .catch((error: unknown) => ctx.logger.warn({ err: error }, 'could not copy an operator event to coord'));
  }

  async function silences(): Promise<Silence[]> {
    const now = ctx.now();
    return [...(await coord().list(OPERATOR_KEYS.silences)).values()]
      .map((value) => parse<Silence>(value))
      .filter((s): s is Silence => s !== undefined && typeof s.id === 'string' && Date.parse(s.endsAt) > now)
      .sort((a, b) => a.endsAt.localeCompare(b.endsAt));
  }

  app.get(
    '/api/v1/cluster/operator',
    {
      schema: {
        tags: ['cluster'],
        summary:
          "The operator's view (platform admins): leader, management nodes (up or lost, lease age) and each node's services with state, health probes, restarts and last exit",
        response: {
          200: Type.Object({
            leader: Type.Union([Type.String(), Type.Null()]),
            nodes: Type.Array(
              Type.Object({
                node: Type.String(),
                state: Type.Union([Type.Literal('up'), Type.Literal('lost')]),
                leader: Type.Boolean(),
                leaseAgeMs: Type.Optional(Type.Integer()),
                version: Type.Optional(Type.String()),
                startedAt: Type.Optional(Type.String()),
                services: Type.Array(
                  Type.Object({
                    name: Type.String(),
                    state: Type.String(),
                    since: Type.Optional(Type.String()),
                    pid: Type.Optional(Type.Integer()),
                    restarts: Type.Integer(),
                    restartsInWindow: Type.Integer(),
                    liveness: Type.Optional(Loose),
                    readiness: Type.Optional(Loose),
                    lastExit: Type.Optional(Loose),
                    failed: Type.Optional(Loose),
                  }),
                ),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      requirePlatformAdmin(userOf(request));
      const observer = await coord().observe(OPERATOR_KEYS.election);
      let leader: string | undefined;
      try {
        leader = observer.leader();
      } finally {
        await observer.close();
      }
      const [members, records] = await Promise.all([
        coord().list(OPERATOR_KEYS.members),
        coord().list(OPERATOR_KEYS.nodes),
      ]);
      interface NodeRecord {
        node: string;
        version?: string;
        startedAt?: string;
        heartbeatAt?: string;
        services?: Record<string, Record<string, unknown>>;
      }
      const byNode = new Map<string, NodeRecord>();
      for (const value of records.values()) {
        const record = parse<NodeRecord>(value);
        if (record && typeof record.node === 'string') byNode.set(record.node, record);
      }
      const names = new Set([
        ...[...members.keys()].map((k) => k.slice(OPERATOR_KEYS.members.length)),
        ...byNode.keys(),
      ]);
      const now = ctx.now();
      const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0);
      const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
      const obj = (v: unknown): Record<string, unknown> | undefined =>
        v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
      return {
        leader: leader ?? null,
        nodes: [...names].sort().map((node) => {
          const record = byNode.get(node);
          const heartbeat = record?.heartbeatAt ? Date.parse(record.heartbeatAt) : NaN;
          return {
            node,
            state: record ? ('up' as const) : ('lost' as const),
            leader: leader === node,
            ...(Number.isFinite(heartbeat) ? { leaseAgeMs: Math.max(0, now - heartbeat) } : {}),
            ...(record?.version ? { version: record.version } : {}),
            ...(record?.startedAt ? { startedAt: record.startedAt } : {}),
            services: Object.entries(record?.services ?? {})
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([name, s]) => {
                const since = str(s.since);
                const liveness = obj(s.liveness);
                const readiness = obj(s.readiness);
                const lastExit = obj(s.lastExit);
                const failed = obj(s.failed);
                return {
                  name,
                  state: str(s.state) ?? 'unknown',
                  ...(since ? { since } : {}),
                  ...(typeof s.pid === 'number' ? { pid: num(s.pid) } : {}),
                  restarts: num(s.restarts),
                  restartsInWindow: num(s.restartsInWindow),
                  ...(liveness ? { liveness } : {}),
                  ...(readiness ? { readiness } : {}),
                  ...(lastExit ? { lastExit } : {}),
                  ...(failed ? { failed } : {}),
                };
              }),
          };
        }),
      };
    },
  );

  const AlertSchema = Type.Object({
    condition: Type.String(),
    subject: Type.String(),
    severity: Type.String(),
    summary: Type.String(),
    firstSeenAt: Type.Optional(Type.String()),
    lastSeenAt: Type.Optional(Type.String()),
    count: Type.Optional(Type.Integer()),
    muted: Type.Optional(Type.String({ description: 'silenced or inhibited: not being sent' })),
    details: Type.Optional(Loose),
  });

  app.get(
    '/api/v1/alerts',
    {
      schema: {
        tags: ['cluster'],
        summary:
          "Open alerts as the operator's leader last published them, and the latest resolutions from the event log (platform admins)",
        response: {
          200: Type.Object({
            leader: Type.Union([Type.String(), Type.Null()]),
            publishedAt: Type.Union([Type.String(), Type.Null()]),
            open: Type.Array(AlertSchema),
            resolved: Type.Array(Type.Object({ at: Type.String(), condition: Type.String(), message: Type.String() })),
          }),
        },
      },
    },
    async (request) => {
      requirePlatformAdmin(userOf(request));
      interface Published {
        leader?: string;
        at?: string;
        active?: { item?: Record<string, unknown>; muted?: string }[];
      }
      const published = parse<Published>(await coord().get(OPERATOR_KEYS.alerts));
      const open = (published?.active ?? []).flatMap((entry) => {
        const item = entry.item;
        if (!item) return [];
        const s = (v: unknown) => (typeof v === 'string' ? v : '');
        return [
          {
            condition: s(item.condition),
            subject: s(item.subject),
            severity: s(item.severity),
            summary: s(item.summary),
            ...(typeof item.firstSeenAt === 'string' ? { firstSeenAt: item.firstSeenAt } : {}),
            ...(typeof item.lastSeenAt === 'string' ? { lastSeenAt: item.lastSeenAt } : {}),
            ...(typeof item.count === 'number' ? { count: Math.trunc(item.count) } : {}),
            ...(entry.muted ? { muted: entry.muted } : {}),
            ...(item.details && typeof item.details === 'object'
              ? { details: item.details as Record<string, unknown> }
              : {}),
          },
        ];
      });
      const resolved = await store.events.list({ kind: 'operator.alert-resolved-sent', limit: 20 });
      return {
        leader: published?.leader ?? null,
        publishedAt: published?.at ?? null,
        open,
        resolved: resolved.map((e) => ({ at: iso(e.ts), condition: e.subject, message: e.message })),
      };
    },
  );

  app.get(
    '/api/v1/silences',
    {
      schema: {
        tags: ['cluster'],
        summary: 'Silences in force: alerts matching every matcher are not sent until it ends (platform admins)',
        response: { 200: Type.Object({ items: Type.Array(SilenceSchema) }) },
      },
    },
    async (request) => {
      requirePlatformAdmin(userOf(request));
      return { items: await silences() };
    },
  );

  app.post(
    '/api/v1/silences',
    {
      schema: {
        tags: ['cluster'],
        summary:
          'Silence alerts that match every matcher (labels condition, subject, node, service, severity; * as wildcard) for a while (platform admins; recorded in the event log)',
        body: CreateSilenceBody,
        response: { 201: SilenceSchema },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      requirePlatformAdmin(principal);
      const { matchers, durationMinutes, comment } = request.body;
      const now = ctx.now();
      const silence: Silence = {
        id: newId('sil'),
        matchers: matchers.map((m) => ({ label: m.label, value: m.value })),
        createdAt: iso(now),
        endsAt: iso(now + durationMinutes * 60_000),
        createdBy: principal.userId,
        ...(comment ? { comment } : {}),
      };
      await coord().put(`${OPERATOR_KEYS.silences}${silence.id}`, JSON.stringify(silence));
      await record(
        'silence-added',
        silence.id,
        `silence ${silence.id} (${silence.matchers.map((m) => `${m.label}=${m.value}`).join(',')}) until ${silence.endsAt} by ${principal.userId}${comment ? `: ${comment}` : ''}`,
        principal.userId,
      );
      return reply.status(201).send(silence);
    },
  );

  app.delete(
    '/api/v1/silences/:id',
    {
      config: { errors: [404] },
      schema: {
        tags: ['cluster'],
        summary:
          "Expire a silence now: its alerts are sent again at the leader's next evaluation (platform admins; recorded in the event log)",
        params: SilenceIdParams,
        response: { 204: NoContent },
      },
    },
    async (request, reply) => {
      const principal = userOf(request);
      requirePlatformAdmin(principal);
      const key = `${OPERATOR_KEYS.silences}${request.params.id}`;
      const silence = parse<Silence>(await coord().get(key));
      if (!silence || Date.parse(silence.endsAt) <= ctx.now())
        throw new InsituError('INSITU_NOT_FOUND', `no silence ${request.params.id} in force`);
      // Ending it (rather than deleting the key) leaves the removal and its event to the leader, as for any silence that ends.
      await coord().put(key, JSON.stringify({ ...silence, endsAt: iso(ctx.now()) }));
      await record(
        'silence-expired',
        silence.id,
        `silence ${silence.id} expired by ${principal.userId}`,
        principal.userId,
      );
      return reply.status(204).send();
    },
  );
}
