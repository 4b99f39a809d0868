import { LOG_LEVELS, loadConfig, type ConfigSources } from '@insitu/core';
import { configInvalid } from './errors.js';
import { NotifyConfigSchema, readSecret } from '@insitu/notify';
import Type, { type Static } from 'typebox';

const Closed = { additionalProperties: false } as const;
const EnvName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' });

/** A login: the user, and where its password comes from (never the password itself in a file that is shared). */
const CredentialsSchema = Type.Object(
  {
    user: Type.String({ minLength: 1, maxLength: 80 }),
    password: Type.Optional(
      Type.String({ description: 'Prefer passwordFile or passwordEnv; set by INSITU_DBMANAGER_PASSWORD' }),
    ),
    passwordFile: Type.Optional(Type.String({ description: 'File holding the password' })),
    passwordEnv: Type.Optional({ ...EnvName, description: 'Environment variable holding the password' }),
  },
  Closed,
);

const MemberSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$',
      description: 'Stable member name used in status, alerts and `db switchover --to`',
    }),
    host: Type.String({ minLength: 1, description: 'Address the manager connects to' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 3306 }),
    replicationHost: Type.Optional(
      Type.String({ minLength: 1, description: 'Address the other members replicate from (default: host)' }),
    ),
    replicationPort: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65535,
        description: 'Port the other members replicate from (default: port)',
      }),
    ),
    credentials: Type.Optional(CredentialsSchema),
    neverPromote: Type.Boolean({ default: false, description: 'Never choose this member as a new primary' }),
    priority: Type.Integer({
      minimum: -1000,
      maximum: 1000,
      default: 0,
      description: 'Among equally advanced candidates, the higher priority is promoted',
    }),
    restartCommand: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'argv of a command that starts this member again (run without a shell), if this node may',
      }),
    ),
  },
  Closed,
);

/** The dbmanager's options. Every option but `members` has a default; see this package's README. */
export const DbManagerConfigSchema = Type.Object(
  {
    cluster: Type.String({
      pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
      default: 'platform',
      description: 'Cluster name: coord keys, alerts and events carry it',
    }),
    managerId: Type.Optional(
      Type.String({
        pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$',
        description: 'This manager in the election (default: hostname and pid)',
      }),
    ),
    members: Type.Array(MemberSchema, { minItems: 1, maxItems: 15 }),
    credentials: Type.Object(
      {
        user: Type.String({ minLength: 1, default: 'root' }),
        password: Type.Optional(Type.String()),
        passwordFile: Type.Optional(Type.String()),
        passwordEnv: Type.Optional(EnvName),
      },
      { ...Closed, default: {}, description: 'Login of the manager on every member (a member may override it)' },
    ),
    replication: Type.Object(
      {
        user: Type.String({ minLength: 1, default: 'repl' }),
        password: Type.Optional(Type.String()),
        passwordFile: Type.Optional(Type.String()),
        passwordEnv: Type.Optional(EnvName),
        heartbeatPeriodSeconds: Type.Number({
          minimum: 0.1,
          maximum: 60,
          default: 0.5,
          description: 'MASTER_HEARTBEAT_PERIOD: below slaveNetTimeoutSeconds',
        }),
        connectRetrySeconds: Type.Integer({ minimum: 1, maximum: 60, default: 1 }),
        slaveNetTimeoutSeconds: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 1,
          description:
            'Set on every member: a replica notices a silent primary this fast, and one connect attempt of its IO thread to a silent primary lasts at most this long (a failover waits for it)',
        }),
      },
      { ...Closed, default: {}, description: 'The account replicas use (CHANGE MASTER TO) and replica timing' },
    ),
    probe: Type.Object(
      {
        intervalMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }),
        connectTimeoutMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }),
        queryTimeoutMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 2000 }),
        historySize: Type.Integer({
          minimum: 1,
          maximum: 10_000,
          default: 120,
          description: 'Probe results kept per member',
        }),
      },
      { ...Closed, default: {} },
    ),
    detection: Type.Object(
      {
        failuresBeforeDown: Type.Integer({
          minimum: 1,
          maximum: 100,
          default: 2,
          description: 'Consecutive failed probes before the primary counts as unreachable',
        }),
        suspectIntervalMs: Type.Integer({
          minimum: 20,
          maximum: 60_000,
          default: 250,
          description: 'Probe interval while the primary is suspect',
        }),
        replicaSilenceMs: Type.Integer({
          minimum: 100,
          maximum: 600_000,
          default: 4000,
          description:
            'A replica whose IO thread received nothing (not even a heartbeat) for this long has lost its primary',
        }),
        minConfirmations: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 14,
            description:
              'Replicas that must confirm a dead primary (default: a majority of the members, at most the number of replicas)',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
    failover: Type.Object(
      {
        auto: Type.Boolean({ default: true, description: 'Fail over automatically; false only alerts' }),
        cooldownMs: Type.Integer({
          minimum: 0,
          default: 30 * 60_000,
          description: 'After a failover, no automatic one for this long unless acknowledged',
        }),
        applyTimeoutMs: Type.Integer({
          minimum: 100,
          maximum: 3_600_000,
          default: 30_000,
          description: 'How long a candidate may take to apply its relay log',
        }),
        retryBackoffMs: Type.Integer({
          minimum: 10,
          maximum: 3_600_000,
          default: 5000,
          description:
            'After a failover that failed part-way (and was undone), the next attempt waits this long, doubling up to retryBackoffMaxMs',
        }),
        retryBackoffMaxMs: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 300_000 }),
      },
      { ...Closed, default: {} },
    ),
    switchover: Type.Object(
      {
        catchUpTimeoutMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000 }),
        maxLagSeconds: Type.Integer({ minimum: 0, default: 10, description: 'A target further behind is refused' }),
        lockWaitTimeoutSeconds: Type.Integer({
          minimum: 1,
          maximum: 3600,
          default: 5,
          description: 'Longest wait for running writes when setting the primary read-only',
        }),
      },
      { ...Closed, default: {} },
    ),
    semiSync: Type.Object(
      {
        enabled: Type.Boolean({
          default: true,
          description: 'Configure AFTER_SYNC semi-synchronous replication on every member',
        }),
        timeoutMs: Type.Integer({
          minimum: 1,
          maximum: 4_294_967_295,
          default: 4_294_967_295,
          description:
            'rpl_semi_sync_master_timeout: how long a commit waits for a replica before the primary falls back to asynchronous on its own. The default (about 49 days) means never: the manager decides (asyncWhenAloneMs)',
        }),
        asyncWhenAloneMs: Type.Optional(
          Type.Integer({
            minimum: 0,
            maximum: 3_600_000,
            description:
              'When the manager sees the primary alive but no replica of it receiving for this long, it switches the primary to asynchronous (writes go on, unprotected) and back once a replica receives again. Unset: never (writes wait for a replica)',
          }),
        ),
      },
      { ...Closed, default: {} },
    ),
    repair: Type.Object(
      {
        lagWarningSeconds: Type.Integer({ minimum: 1, default: 30 }),
        errorMemoryMs: Type.Integer({
          minimum: 0,
          default: 10 * 60_000,
          description: 'A replica that replicated cleanly this long gets its one automatic restart back',
        }),
        restartAfterMs: Type.Integer({
          minimum: 0,
          default: 3000,
          description: 'A member refusing connections this long is restarted (when it has a restartCommand)',
        }),
        restartBackoffMs: Type.Integer({ minimum: 10, default: 2000 }),
        restartBackoffMaxMs: Type.Integer({ minimum: 10, default: 60_000 }),
        restartAttemptsBeforeAlert: Type.Integer({ minimum: 1, default: 3 }),
        restartTimeoutMs: Type.Integer({
          minimum: 100,
          default: 60_000,
          description: 'Longest run of a restart command',
        }),
      },
      { ...Closed, default: {} },
    ),
    coord: Type.Object(
      {
        kind: Type.Enum(['memory', 'etcd'] as const, {
          default: 'memory',
          description: 'memory: one manager in this process; etcd: managers on several nodes',
        }),
        endpoints: Type.Array(Type.String({ pattern: '^https?://' }), { default: [] }),
        leaseTtlMs: Type.Integer({
          minimum: 500,
          maximum: 600_000,
          default: 3000,
          description: 'Leadership lease: a dead leader is replaced within about this long',
        }),
        namespace: Type.String({
          pattern: '^[A-Za-z0-9._/-]{0,64}$',
          default: 'insitu/',
          description: 'Prefix of every key inside etcd (clients follow <namespace>dbmanager/<cluster>/primary)',
        }),
      },
      { ...Closed, default: {} },
    ),
    admin: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 7079, description: '0 picks a free port' }),
        advertiseUrl: Type.Optional(
          Type.String({
            pattern: '^https?://',
            description: 'URL other nodes reach this manager at (default from host and port)',
          }),
        ),
        token: Type.Optional(
          Type.String({
            minLength: 16,
            description: 'Shared bearer token of the admin API; prefer tokenFile or INSITU_DBMANAGER_TOKEN',
          }),
        ),
        tokenFile: Type.Optional(Type.String()),
      },
      { ...Closed, default: {} },
    ),
    guard: Type.Object(
      {
        member: Type.Optional(
          Type.String({
            description:
              "Run the self-fencing guard beside this member (its name in members); set on the member's own machine",
          }),
        ),
        socket: Type.Optional(
          Type.String({
            minLength: 1,
            description:
              "The member's Unix socket: the guard reaches it even when the network is cut (default: its host and port)",
          }),
        ),
        leaseTtlMs: Type.Integer({
          minimum: 1000,
          maximum: 600_000,
          default: 2000,
          description: 'The guard fences its member after 2/3 of this without renewing its lease in coord',
        }),
        intervalMs: Type.Integer({ minimum: 20, maximum: 60_000, default: 200 }),
      },
      { ...Closed, default: {} },
    ),
    notify: NotifyConfigSchema,
    events: Type.Object(
      { keep: Type.Integer({ minimum: 10, maximum: 100_000, default: 500 }) },
      { ...Closed, default: {} },
    ),
    log: Type.Object({ level: Type.Enum(LOG_LEVELS, { default: 'info' }) }, { ...Closed, default: {} }),
  },
  Closed,
);

export type DbManagerConfig = Static<typeof DbManagerConfigSchema>;
export type MemberConfig = DbManagerConfig['members'][number];

/** Load, default, validate and freeze the dbmanager's options (file, `INSITU_DBMANAGER_*` variables, flags). */
export function loadDbManagerConfig(sources: Omit<ConfigSources, 'envScope'>): Readonly<DbManagerConfig> {
  const config = loadConfig(DbManagerConfigSchema, { ...sources, envScope: 'dbmanager' });
  const names = new Set<string>();
  for (const member of config.members) {
    if (names.has(member.name)) throw configInvalid(`member name ${member.name} appears twice`);
    names.add(member.name);
  }
  const addresses = new Set<string>();
  for (const member of config.members) {
    const address = `${member.host}:${member.port}`;
    if (addresses.has(address)) throw configInvalid(`members share the address ${address}`);
    addresses.add(address);
  }
  if (config.coord.kind === 'etcd' && config.coord.endpoints.length === 0) {
    throw configInvalid('coord.kind etcd needs coord.endpoints');
  }
  if (config.guard.member !== undefined && !names.has(config.guard.member)) {
    throw configInvalid(`guard.member ${config.guard.member} is not one of the members`);
  }
  if (config.members.every((member) => member.neverPromote)) {
    throw configInvalid('every member is neverPromote: no failover would ever be possible');
  }
  return config;
}

/** A member's login, with the password read from wherever the config says. */
export interface Login {
  user: string;
  password: string;
}

function loginOf(
  credentials: {
    user: string;
    password?: string | undefined;
    passwordFile?: string | undefined;
    passwordEnv?: string | undefined;
  },
  env: NodeJS.ProcessEnv,
  what: string,
): Login {
  const fromSecret = readSecret(
    {
      ...(credentials.passwordFile === undefined ? {} : { file: credentials.passwordFile }),
      ...(credentials.passwordEnv === undefined ? {} : { env: credentials.passwordEnv }),
    },
    env,
    what,
  );
  return { user: credentials.user, password: fromSecret ?? credentials.password ?? '' };
}

/** The logins the manager uses, resolved once at start (a missing secret fails the start, not a failover). */
export interface ResolvedSecrets {
  members: ReadonlyMap<string, Login>;
  replication: Login;
  adminToken: string | undefined;
}

/** Read every password and the admin token that the config points to. */
export function resolveSecrets(config: Readonly<DbManagerConfig>, env: NodeJS.ProcessEnv): ResolvedSecrets {
  const fallback = loginOf(config.credentials, env, 'manager password');
  const members = new Map<string, Login>();
  for (const member of config.members) {
    members.set(
      member.name,
      member.credentials ? loginOf(member.credentials, env, `password of member ${member.name}`) : fallback,
    );
  }
  const replication = loginOf(config.replication, env, 'replication password');
  const adminToken =
    readSecret(config.admin.tokenFile === undefined ? {} : { file: config.admin.tokenFile }, env, 'admin token') ??
    config.admin.token;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw configInvalid('the admin token must be at least 16 characters');
  }
  return { members, replication, adminToken };
}
