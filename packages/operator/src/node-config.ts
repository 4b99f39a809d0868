import { InsituError, LOG_LEVELS, loadConfig, readConfigFile, type ConfigSources } from '@insitu/core';
import Value from 'typebox/value';
import { NotifyConfigSchema } from '@insitu/notify';
import Type, { type Static } from 'typebox';

const Closed = { additionalProperties: false } as const;
export const NAME_PATTERN = '^[a-z][a-z0-9-]{0,30}$';

/** How this node runs one platform service: the command line and where it answers probes. */
export const ServiceCommandSchema = Type.Object(
  {
    command: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'argv, run without a shell' }),
    env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), {
      default: {},
      description: 'Extra environment variables',
    }),
    cwd: Type.Optional(Type.String({ minLength: 1 })),
    health: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description: "Base URL of the service's HTTP probes (liveness and readiness paths come from the cluster spec)",
      }),
    ),
    tcp: Type.Optional(
      Type.String({
        pattern: '^[^:]+:\\d{1,5}$',
        description: 'host:port whose TCP accept is the liveness probe (e.g. mariadbd), when there is no HTTP one',
      }),
    ),
  },
  Closed,
);

/**
 * `node.yaml`: one per management machine. Says who this node is, where etcd is, how this
 * node runs each platform service (the cluster spec in coord says which run where), where
 * alerts go (any node may lead) and the timings (the defaults are the numbers).
 */
export const NodeConfigSchema = Type.Object(
  {
    node: Type.String({ pattern: NAME_PATTERN, description: "This node's stable name (node1, mgmt-a, …)" }),
    dataDir: Type.String({
      minLength: 1,
      default: '/var/lib/insitu/node',
      description: 'Logs of the services this node runs',
    }),
    coord: Type.Object(
      {
        endpoints: Type.Array(Type.String({ pattern: '^https?://' }), { minItems: 1, description: 'etcd client URLs' }),
        namespace: Type.String({
          default: 'insitu/',
          description: "Key prefix inside etcd (as the servers' cluster.etcdNamespace)",
        }),
      },
      Closed,
    ),
    services: Type.Record(Type.String({ pattern: NAME_PATTERN }), ServiceCommandSchema, {
      default: {},
      description: 'How this node runs each service; a service this node has no command for is never placed here',
    }),
    cluster: Type.Object(
      {
        secretFile: Type.Optional(
          Type.String({
            description:
              "The platform's cluster secret (the servers' cluster.secretFile): deep probes through the servers are signed with it",
          }),
        ),
        secret: Type.Optional(Type.String({ minLength: 16 })),
      },
      { ...Closed, default: {} },
    ),
    notify: NotifyConfigSchema,
    alerts: Type.Object(
      {
        groupWaitMs: Type.Integer({ minimum: 0, default: 30_000 }),
        groupIntervalMs: Type.Integer({ minimum: 0, default: 5 * 60_000 }),
        repeatIntervalMs: Type.Integer({ minimum: 1000, default: 4 * 3600_000 }),
        agentOfflineMs: Type.Integer({
          minimum: 1000,
          default: 5 * 60_000,
          description: 'An enrolled agent without a tunnel session this long raises agent-offline',
        }),
        heartbeat: Type.Optional(
          Type.Object(
            {
              url: Type.String({ pattern: '^https?://' }),
              intervalMs: Type.Integer({ minimum: 100, default: 60_000 }),
              headers: Type.Optional(Type.Record(Type.String(), Type.String())),
            },
            Closed,
          ),
        ),
      },
      { ...Closed, default: {} },
    ),
    timing: Type.Object(
      {
        nodeLeaseTtlMs: Type.Integer({
          minimum: 1000,
          default: 10_000,
          description: 'A node whose lease lapses is lost',
        }),
        nodeRenewMs: Type.Integer({
          minimum: 100,
          default: 2000,
          description: 'How often the node republishes its record',
        }),
        leaderLeaseTtlMs: Type.Integer({
          minimum: 1500,
          default: 15_000,
          description: 'Leader lease; the leader stops acting 2/3 of it after its last renewal (10 s)',
        }),
        leaderRetryMs: Type.Integer({ minimum: 100, default: 2000, description: 'Pause before campaigning again' }),
        tickMs: Type.Integer({ minimum: 50, default: 1000, description: "The leader's decision loop" }),
        deepProbeIntervalMs: Type.Integer({ minimum: 500, default: 10_000 }),
        deepProbeFailuresBeforeAlert: Type.Integer({
          minimum: 1,
          maximum: 100,
          default: 2,
          description:
            'A failed deep probe (etcd member, server, database write, agent through the tunnel) raises its alert only after failing in this many runs in a row',
        }),
        lostGraceMs: Type.Optional(
          Type.Integer({
            minimum: 0,
            description: 'A newly elected leader waits this long before calling a node lost (default: nodeLeaseTtlMs)',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
    log: Type.Object({ level: Type.Enum(LOG_LEVELS, { default: 'info' }) }, { ...Closed, default: {} }),
  },
  Closed,
);

export type NodeConfig = Static<typeof NodeConfigSchema>;
export type ServiceCommand = Static<typeof ServiceCommandSchema>;

/** Load, default, validate and freeze `node.yaml` (file and flags). */
export function loadNodeConfig(sources: Omit<ConfigSources, 'envScope'>): Readonly<NodeConfig> {
  // TypeBox fills defaults through objects, not through a record's values: fill each service's here.
  const withServiceDefaults = (services: unknown) =>
    services !== null && typeof services === 'object'
      ? Object.fromEntries(
          Object.entries(services).map(([name, value]) => [
            name,
            Value.Default(ServiceCommandSchema, structuredClone(value)),
          ]),
        )
      : services;
  const file = sources.file ? readConfigFile(sources.file, sources.fileRequired) : undefined;
  const base = { ...(sources.base ?? {}), ...(file ?? {}) } as Record<string, unknown>;
  if (base.services !== undefined) base.services = withServiceDefaults(base.services);
  const config = loadConfig(NodeConfigSchema, { ...sources, file: undefined, base });
  for (const [name, service] of Object.entries(config.services)) {
    if (service.health && service.tcp)
      throw new InsituError('INSITU_CONFIG_INVALID', `services.${name}: give health (HTTP) or tcp, not both`);
  }
  if (config.cluster.secret && config.cluster.secretFile)
    throw new InsituError('INSITU_CONFIG_INVALID', 'cluster: give secret or secretFile, not both');
  return config;
}
