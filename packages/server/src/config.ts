import { LOG_LEVELS, loadConfig, type ConfigSources } from '@insitu/core';
import Type, { type Static } from 'typebox';

const Closed = { additionalProperties: false } as const;

/** The platform server's options. Every option has a default; see this package's README. */
export const ServerConfigSchema = Type.Object(
  {
    listen: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', description: 'Address to listen on' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 7070, description: 'Port; 0 picks a free one' }),
      },
      { ...Closed, default: {} },
    ),
    publicUrl: Type.Optional(
      Type.String({ pattern: '^https?://', description: 'URL under which users and agents reach this node' }),
    ),
    database: Type.Object(
      {
        url: Type.String({
          default: 'sqlite:platform.db',
          description: 'sqlite:PATH (relative to the data dir) or mysql://USER@HOST:PORT/DB',
        }),
        password: Type.Optional(
          Type.String({ description: 'MySQL password; prefer INSITU_DATABASE_PASSWORD or passwordFile' }),
        ),
        passwordFile: Type.Optional(Type.String({ description: 'File holding the MySQL password' })),
        managerToken: Type.Optional(
          Type.String({
            minLength: 16,
            description:
              "The dbmanager's admin token, for the admin-only switchover and acknowledge routes; prefer INSITU_DATABASE_MANAGER_TOKEN or managerTokenFile",
          }),
        ),
        managerTokenFile: Type.Optional(Type.String({ description: "File holding the dbmanager's admin token" })),
        followPrimary: Type.Optional(
          Type.String({
            pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
            description:
              'MySQL cluster whose primary the dbmanager publishes in coord (dbmanager/<name>/primary): the store follows it across failovers; host/port of the url are only the first guess',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
    log: Type.Object({ level: Type.Enum(LOG_LEVELS, { default: 'info' }) }, { ...Closed, default: {} }),
    auth: Type.Object(
      {
        signup: Type.Enum(['open', 'approval', 'closed'] as const, {
          default: 'approval',
          description:
            'open: new organisations are active at once; approval: a platform admin approves them; closed: no self-service sign-up',
        }),
        sessionTtlSeconds: Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 12 * 3600 }),
        enrolmentTokenTtlSeconds: Type.Integer({
          minimum: 60,
          maximum: 30 * 86400,
          default: 86400,
          description: 'Default lifetime of an enrolment token',
        }),
        passwordCost: Type.Integer({ minimum: 10, maximum: 20, default: 15, description: 'log2 of the scrypt cost N' }),
      },
      { ...Closed, default: {} },
    ),
    limits: Type.Object(
      {
        bodyBytes: Type.Integer({
          minimum: 1024,
          maximum: 64 * 1024 * 1024,
          default: 1024 * 1024,
          description: 'Largest accepted JSON request body',
        }),
        bundleBytes: Type.Integer({
          minimum: 1024,
          maximum: 1024 * 1024 * 1024,
          default: 64 * 1024 * 1024,
          description: 'Largest accepted application bundle (upload size and unpacked contents)',
        }),
        bundleEntries: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 10_000,
          description: 'Most files and directories in a bundle',
        }),
      },
      { ...Closed, default: {} },
    ),
    gateway: Type.Object(
      {
        ratePerSecond: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 50,
          description: 'Default per-key rate limit of a new service (requests per second)',
        }),
        burst: Type.Integer({
          minimum: 1,
          maximum: 1_000_000,
          default: 100,
          description: 'Default per-key burst of a new service',
        }),
        dailyQuota: Type.Integer({
          minimum: 1,
          maximum: 1_000_000_000,
          default: 100_000,
          description: 'Default per-key daily quota of a new service',
        }),
        maxRequestBytes: Type.Integer({
          minimum: 0,
          maximum: 1024 * 1024 * 1024,
          default: 1024 * 1024,
          description: 'Default largest request body to a service',
        }),
        maxResponseBytes: Type.Integer({
          minimum: 0,
          maximum: 16 * 1024 * 1024 * 1024,
          default: 64 * 1024 * 1024,
          description: 'Default largest answer of a service',
        }),
        timeoutMs: Type.Integer({
          minimum: 100,
          maximum: 3_600_000,
          default: 30_000,
          description: 'Default deadline of a call',
        }),
        drainGraceMs: Type.Integer({
          minimum: 0,
          maximum: 600_000,
          default: 5_000,
          description:
            'After a rolling upgrade, how long the old version keeps running once the new one runs everywhere',
        }),
      },
      { ...Closed, default: {} },
    ),
    audit: Type.Object(
      {
        flushIntervalMs: Type.Integer({
          minimum: 10,
          maximum: 60_000,
          default: 250,
          description: 'How often metering and audit records are written in batches',
        }),
        batchSize: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 1000,
          description: 'Write a batch early when this many records wait',
        }),
        anchorKeyFile: Type.String({
          minLength: 1,
          default: 'audit-anchor.key',
          description:
            'Ed25519 private key (PKCS#8 PEM, mode 0600; relative to the data dir) that signs audit chain heads; created by insitu init, its public key beside it (.pub). Nodes of a cluster share it like the cluster secret',
        }),
        anchorFile: Type.String({
          minLength: 1,
          default: 'audit-anchor.json',
          description: 'File (relative to the data dir) holding the latest signed audit anchor',
        }),
        anchorIntervalMs: Type.Integer({
          minimum: 100,
          maximum: 86_400_000,
          default: 60_000,
          description:
            'How often the audit head is signed and published (coord, anchor file, log) when it moved; also on shutdown',
        }),
        trustedAnchorKeys: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description: 'Further public keys (SPKI PEM) whose anchors verify, e.g. a former key after a rotation',
        }),
      },
      { ...Closed, default: {} },
    ),
    metrics: Type.Object(
      {
        token: Type.Optional(
          Type.String({
            minLength: 16,
            description: 'Bearer token allowed to scrape /metrics (besides platform admins)',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
    tls: Type.Optional(
      Type.Object(
        {
          certFile: Type.String({
            description: 'PEM server certificate (insitu init issues one from the platform CA: tls/server.pem)',
          }),
          keyFile: Type.String({ description: 'PEM private key of the certificate (tls/server-key.pem)' }),
        },
        { ...Closed, description: 'Serve the API, the tunnel endpoint and node-to-node forwarding over TLS' },
      ),
    ),
    tunnel: Type.Object(
      {
        balancer: Type.Enum(['p2c', 'round-robin', 'weighted'] as const, {
          default: 'p2c',
          description: 'How requests are spread over the sessions of a service',
        }),
        deadlineMs: Type.Integer({
          minimum: 100,
          maximum: 600_000,
          default: 30_000,
          description: 'Default time allowed until an agent answers with response headers',
        }),
        idleTimeoutMs: Type.Integer({
          minimum: 1000,
          maximum: 3_600_000,
          default: 60_000,
          description: 'A response body idle this long is cut',
        }),
        pingIntervalMs: Type.Integer({
          minimum: 100,
          maximum: 600_000,
          default: 10_000,
          description: 'HTTP/2 PING interval on agent sessions',
        }),
        pingTimeoutMs: Type.Integer({
          minimum: 100,
          maximum: 600_000,
          default: 5000,
          description: 'A PING unanswered this long ejects the session; two close it',
        }),
        plainText: Type.Enum(['loopback', 'allow', 'refuse'] as const, {
          default: 'loopback',
          description: 'Agent sessions without TLS: only from loopback (default), from anywhere, or never',
        }),
        maxSessionsPerAgent: Type.Integer({
          minimum: 1,
          maximum: 64,
          default: 4,
          description: 'Sessions one agent may hold on this node; a new one replaces the oldest',
        }),
      },
      { ...Closed, default: {} },
    ),
    jobs: Type.Object(
      {
        maxActivePerOrg: Type.Integer({
          minimum: 1,
          maximum: 100_000,
          default: 10,
          description:
            'Queued and running jobs one organisation may have at once (more: 429 INSITU_JOB_QUOTA_EXCEEDED)',
        }),
        wallTimeMs: Type.Integer({
          minimum: 1000,
          maximum: 7 * 24 * 3600 * 1000,
          default: 3_600_000,
          description: "A job's wall-time budget when the submitter gives none (and the most it may ask for)",
        }),
        maxResultBytes: Type.Integer({
          minimum: 1,
          maximum: 1024 * 1024 * 1024,
          default: 16 * 1024 * 1024,
          description: 'Largest result file the platform accepts from an agent, whatever the provider allows',
        }),
        maxResultFiles: Type.Integer({
          minimum: 0,
          maximum: 1000,
          default: 64,
          description: 'Most result files of one job the platform accepts',
        }),
        retentionHours: Type.Integer({
          minimum: 1,
          maximum: 24 * 365,
          default: 168,
          description: 'How long results are kept after a job ends; then the sweep deletes them',
        }),
        resultsDir: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              'Directory for result files (a cluster: shared by every node); without it they are stored in the database (one node)',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
    shutdown: Type.Object(
      {
        drainDelayMs: Type.Integer({
          minimum: 0,
          maximum: 600_000,
          default: 0,
          description:
            'On SIGTERM, answer /readyz with 503 for this long while still serving, so load balancers stop sending before the node closes (the operator sets it for a rolling restart)',
        }),
      },
      { ...Closed, default: {} },
    ),
    readiness: Type.Object(
      {
        probeTimeoutMs: Type.Integer({
          minimum: 10,
          maximum: 60_000,
          default: 100,
          description:
            '/readyz waits at most this long for the database and the coordination store; a probe still running is judged by its grace window, so a hanging dependency never makes /readyz slower than a load balancer check timeout',
        }),
        databaseGraceMs: Type.Integer({
          minimum: 0,
          maximum: 3_600_000,
          default: 30_000,
          description:
            'The platform database may not answer for this long (a failover, a restart) before this node reports itself unready; meanwhile /readyz says "degraded" and calls answer coded errors',
        }),
        coordinationGraceMs: Type.Integer({
          minimum: 0,
          maximum: 3_600_000,
          default: 15_000,
          description:
            'The coordination store (etcd) may not answer for this long (a member lost, an election) before this node reports itself unready',
        }),
      },
      { ...Closed, default: {} },
    ),
    cluster: Type.Object(
      {
        coordination: Type.Enum(['memory', 'etcd'] as const, {
          default: 'memory',
          description: 'memory: one node alone; etcd: a cluster (set etcdEndpoints)',
        }),
        etcdEndpoints: Type.Array(Type.String({ pattern: '^https?://' }), {
          default: [],
          description: 'Client URLs of the etcd members',
        }),
        etcdNamespace: Type.String({
          default: 'insitu/',
          description: 'Prefix of every key this platform keeps in etcd',
        }),
        nodeUrl: Type.Optional(
          Type.String({
            pattern: '^https?://',
            description: 'URL under which the other nodes reach this one (default: publicUrl, else the listen address)',
          }),
        ),
        secret: Type.Optional(
          Type.String({
            minLength: 32,
            description: 'Shared secret of the nodes (node-to-node HMAC); prefer INSITU_CLUSTER_SECRET or secretFile',
          }),
        ),
        secretFile: Type.Optional(Type.String({ description: 'File holding the cluster secret' })),
        caFile: Type.Optional(
          Type.String({
            description: 'Platform CA (PEM) to trust when forwarding to other nodes over https (tls/ca.pem)',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
  },
  Closed,
);

export type ServerConfig = Static<typeof ServerConfigSchema>;

/** Load, default, validate and freeze the server's options. */
export function loadServerConfig(sources: Omit<ConfigSources, 'envScope'>): Readonly<ServerConfig> {
  return loadConfig(ServerConfigSchema, { ...sources, envScope: 'platform' });
}

/** The defaults alone, e.g. for tests and `insitu init`. */
export function defaultServerConfig(overrides: Record<string, unknown> = {}): Readonly<ServerConfig> {
  return loadConfig(ServerConfigSchema, { base: overrides });
}
