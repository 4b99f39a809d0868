import {
  AgentDesiredSchema as CoreAgentDesiredSchema,
  AgentJobReportSchema as CoreAgentJobReportSchema,
  AgentJobsSchema as CoreAgentJobsSchema,
  DEPLOYMENT_STATES,
  JobOutputPolicySchema as CoreJobOutputPolicySchema,
  AppNameSchema,
  DatasetSchema,
  IdSchema,
  ServiceNameSchema,
  PageQuerySchema,
  PageSchema,
  SlugSchema,
  TagSchema,
  TimestampSchema,
} from '@insitu/core';
import Type, { type Static } from 'typebox';

const Closed = { additionalProperties: false } as const;

export const RoleSchema = Type.Enum(['admin', 'provider', 'developer', 'user'] as const, {
  description:
    'admin: manages the organisation and holds every role in it; provider: offers data; developer: writes applications; user: calls services',
});
const Email = Type.String({ format: 'email', maxLength: 254 });
const Password = Type.String({ minLength: 10, maxLength: 200, description: 'At least 10 characters' });
const DisplayName = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
const Description = Type.String({ maxLength: 4000 });

// Resources

export const OrgSchema = Type.Object({
  id: IdSchema,
  name: Type.String(),
  displayName: Type.String(),
  kind: Type.Enum(['platform', 'member'] as const),
  status: Type.Enum(['active', 'pending', 'suspended'] as const),
  createdAt: TimestampSchema,
});

export const UserSchema = Type.Object({
  id: IdSchema,
  email: Type.String(),
  name: Type.String(),
  status: Type.String(),
  createdAt: TimestampSchema,
});

export const MembershipSchema = Type.Object({
  orgId: IdSchema,
  orgName: Type.String(),
  orgStatus: Type.String(),
  roles: Type.Array(RoleSchema),
});

export const MeSchema = Type.Object({
  user: UserSchema,
  platformAdmin: Type.Boolean(),
  memberships: Type.Array(MembershipSchema),
});

export const MemberSchema = Type.Object({ user: UserSchema, roles: Type.Array(RoleSchema) });

export const ProviderSchema = Type.Object({
  id: IdSchema,
  orgId: IdSchema,
  name: Type.String(),
  displayName: Type.String(),
  description: Type.String(),
  createdAt: TimestampSchema,
});

export const EnrolmentTokenSchema = Type.Object({
  id: IdSchema,
  providerId: IdSchema,
  note: Type.String(),
  state: Type.Enum(['unused', 'used', 'expired', 'revoked'] as const),
  createdAt: TimestampSchema,
  expiresAt: TimestampSchema,
  usedAt: Type.Optional(TimestampSchema),
  agentId: Type.Optional(IdSchema),
});

export const AgentSchema = Type.Object({
  id: IdSchema,
  providerId: IdSchema,
  name: Type.String(),
  hostname: Type.String(),
  version: Type.String(),
  state: Type.Enum(['active', 'revoked'] as const),
  createdAt: TimestampSchema,
  lastSeenAt: Type.Optional(TimestampSchema),
});

export const SessionSchema = Type.Object({
  token: Type.String({ description: 'Bearer token; shown once' }),
  expiresAt: TimestampSchema,
  user: UserSchema,
});

// Inputs

export const SignupBody = Type.Object(
  {
    org: Type.Object({ name: SlugSchema, displayName: Type.Optional(DisplayName) }, Closed),
    user: Type.Object({ email: Email, name: DisplayName, password: Password }, Closed),
  },
  Closed,
);
export const SignInBody = Type.Object(
  { email: Email, password: Type.String({ minLength: 1, maxLength: 200 }) },
  Closed,
);
export const CreateOrgBody = Type.Object({ name: SlugSchema, displayName: Type.Optional(DisplayName) }, Closed);
export const UpdateOrgBody = Type.Object({ displayName: DisplayName }, Closed);
export const AddMemberBody = Type.Object(
  {
    email: Email,
    name: Type.Optional(DisplayName),
    password: Type.Optional(Password),
    roles: Type.Array(RoleSchema, { minItems: 1, maxItems: 4, uniqueItems: true }),
  },
  Closed,
);
export const SetRolesBody = Type.Object(
  { roles: Type.Array(RoleSchema, { minItems: 1, maxItems: 4, uniqueItems: true }) },
  Closed,
);
export const UpdateMeBody = Type.Object(
  {
    name: Type.Optional(DisplayName),
    password: Type.Optional(Password),
    currentPassword: Type.Optional(Type.String({ maxLength: 200 })),
  },
  Closed,
);
export const CreateProviderBody = Type.Object(
  {
    orgId: IdSchema,
    name: SlugSchema,
    displayName: Type.Optional(DisplayName),
    description: Type.Optional(Description),
  },
  Closed,
);
export const UpdateProviderBody = Type.Object(
  { displayName: Type.Optional(DisplayName), description: Type.Optional(Description) },
  Closed,
);
export const CreateTokenBody = Type.Object(
  {
    providerId: IdSchema,
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400 })),
    note: Type.Optional(Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
  },
  Closed,
);
export const EnrolBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 200 }),
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    hostname: Type.Optional(Type.String({ maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
    version: Type.Optional(Type.String({ maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })),
  },
  Closed,
);
export const EnrolResult = Type.Object({
  agent: AgentSchema,
  credential: Type.String({ description: 'The long-lived agent credential; shown once, store it with mode 0600' }),
});

// Queries and params

export const IdParams = Type.Object({ id: IdSchema }, Closed);
export const MemberParams = Type.Object({ id: IdSchema, userId: IdSchema }, Closed);
export const DatasetParams = Type.Object(
  { id: IdSchema, name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }) },
  Closed,
);

export const ListQuery = Type.Object({ ...PageQuerySchema.properties }, Closed);
export const OrgListQuery = Type.Object(
  { ...PageQuerySchema.properties, status: Type.Optional(Type.Enum(['active', 'pending', 'suspended'] as const)) },
  Closed,
);
export const ProviderListQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    org: Type.Optional(IdSchema),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'Only the provider of this name (at most one)' }),
    ),
  },
  Closed,
);
export const ByProviderQuery = Type.Object({ ...PageQuerySchema.properties, provider: IdSchema }, Closed);
export const AgentListQuery = Type.Object({ ...PageQuerySchema.properties, provider: Type.Optional(IdSchema) }, Closed);
export const DatasetSearchQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    q: Type.Optional(
      Type.String({
        maxLength: 200,
        description: 'Words to find in names, tags, column names and descriptions (prefixes match)',
      }),
    ),
    tag: Type.Optional(
      Type.Array(TagSchema, { maxItems: 10, description: 'Only datasets with every one of these tags' }),
    ),
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Provider id or name' })),
    column: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'Only datasets with a column of this name (case-insensitive)',
      }),
    ),
  },
  Closed,
);

export const OrgPage = PageSchema(OrgSchema);
export const UserPage = PageSchema(UserSchema);
export const MemberPage = PageSchema(MemberSchema);
export const ProviderPage = PageSchema(ProviderSchema);
export const TokenPage = PageSchema(EnrolmentTokenSchema);
export const AgentPage = PageSchema(AgentSchema);
export const DatasetPage = PageSchema(DatasetSchema);

export type SignupBodyT = Static<typeof SignupBody>;

// Applications, approvals, deployments, services, keys, usage, audit, events

const AppName = AppNameSchema;
const Reason = Type.String({ maxLength: 2000, pattern: '^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$' });

export const AppSchema = Type.Object({
  id: IdSchema,
  orgId: IdSchema,
  name: Type.String(),
  description: Type.String(),
  createdAt: TimestampSchema,
});
export const AppPage = PageSchema(AppSchema);
export const AppListQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    org: Type.Optional(IdSchema),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'With org: only the application of this name' }),
    ),
  },
  Closed,
);
export const CreateAppBody = Type.Object(
  { orgId: IdSchema, name: AppName, description: Type.Optional(Type.String({ maxLength: 4000 })) },
  Closed,
);

export const BundleFileSchema = Type.Object({ path: Type.String(), size: Type.Integer(), sha256: Type.String() });
export const ApprovalSummarySchema = Type.Object({
  id: IdSchema,
  providerId: IdSchema,
  providerName: Type.String(),
  state: Type.Enum(['pending', 'approved', 'rejected'] as const),
  reason: Type.String(),
  decidedAt: Type.Optional(TimestampSchema),
});
export const ResolvedDatasetView = Type.Object(
  {
    providerId: IdSchema,
    providerName: Type.String(),
    dataset: Type.String(),
  },
  { description: 'A dataset the version reads, as resolved at submission: the provider by id' },
);
export const VersionSchema = Type.Object({
  id: IdSchema,
  appId: IdSchema,
  appName: Type.String(),
  version: Type.String(),
  digest: Type.String({ description: 'sha256 of the canonical tarball: what providers approve and agents verify' }),
  size: Type.Integer(),
  state: Type.Enum(['pending', 'approved', 'rejected'] as const),
  manifest: Type.Unknown(),
  files: Type.Array(BundleFileSchema),
  datasets: Type.Array(ResolvedDatasetView, {
    description:
      "The manifest's datasets resolved to provider ids at submission: what the providers approve and what agents let the application read",
  }),
  approvals: Type.Array(ApprovalSummarySchema),
  createdAt: TimestampSchema,
});
export const VersionPage = PageSchema(VersionSchema);
export const VersionParams = Type.Object({ id: IdSchema, versionId: IdSchema }, Closed);
export const FileQuery = Type.Object({ path: Type.String({ minLength: 1, maxLength: 255 }) }, Closed);

export const ApprovalSchema = Type.Object({
  id: IdSchema,
  versionId: IdSchema,
  appId: IdSchema,
  appName: Type.String(),
  appOrgId: IdSchema,
  version: Type.String(),
  digest: Type.String(),
  providerId: IdSchema,
  providerName: Type.String(),
  state: Type.Enum(['pending', 'approved', 'rejected'] as const),
  reason: Type.String(),
  createdAt: TimestampSchema,
  decidedAt: Type.Optional(TimestampSchema),
  jobPolicy: Type.Optional(
    Type.Object(CoreJobOutputPolicySchema.properties, {
      description: "What the provider lets leave of this version's jobs (set when approving)",
    }),
  ),
});
export const ApprovalDetailSchema = Type.Object({
  ...ApprovalSchema.properties,
  manifest: Type.Unknown(),
  datasets: Type.Array(Type.String(), {
    description: "The datasets of this approval's provider that the version would read, resolved at submission",
  }),
  files: Type.Array(
    Type.Object({
      ...BundleFileSchema.properties,
      text: Type.Optional(Type.String({ description: 'Contents of text files up to 256 KiB' })),
    }),
  ),
});
export const ApprovalPage = PageSchema(ApprovalSchema);
export const ApprovalListQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    state: Type.Optional(Type.Enum(['pending', 'approved', 'rejected'] as const)),
    provider: Type.Optional(IdSchema),
    version: Type.Optional(IdSchema),
  },
  Closed,
);
export const DecideBody = Type.Object(
  {
    reason: Type.Optional(Reason),
    jobPolicy: Type.Optional(
      Type.Object(CoreJobOutputPolicySchema.properties, {
        ...Closed,
        description:
          "What may leave of this version's jobs at your provider: the output lines (default: not) and tighter result limits than your agents' jobs.results; it can only tighten what the agent's config allows",
      }),
    ),
  },
  Closed,
);
export const RejectBody = Type.Object({ reason: Type.String({ minLength: 1, maxLength: 2000 }) }, Closed);

export const DeploymentAgentSchema = Type.Object({
  agentId: IdSchema,
  state: Type.String({
    description:
      'pending, starting, running (every instance ready), degraded (at least one instance ready and serving, fewer than desired), crash-looping (no instance ready, one keeps crashing), failed or stopped',
  }),
  reason: Type.String(),
  ready: Type.Integer(),
  desired: Type.Integer(),
  updatedAt: TimestampSchema,
});
export const DeploymentSchema = Type.Object({
  id: IdSchema,
  appId: IdSchema,
  versionId: IdSchema,
  version: Type.String(),
  providerId: IdSchema,
  replicas: Type.Integer({ description: 'Instances per agent' }),
  state: Type.Enum(['active', 'draining', 'removed'] as const),
  appLogs: Type.Boolean({
    description: "Whether the application's developers may read its output (insitu app logs); the provider decides",
  }),
  agents: Type.Array(DeploymentAgentSchema),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
});
export const DeploymentPage = PageSchema(DeploymentSchema);
export const CreateDeploymentBody = Type.Object(
  { versionId: IdSchema, providerId: IdSchema, replicas: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })) },
  Closed,
);
export const UpdateDeploymentBody = Type.Object({ replicas: Type.Integer({ minimum: 1, maximum: 64 }) }, Closed);
export const DeploymentAppLogsBody = Type.Object(
  { enabled: Type.Boolean({ description: "Let the application's developers read its output" }) },
  Closed,
);
export const DeploymentLogsQuery = Type.Object(
  {
    lines: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1000, default: 100, description: 'How many of the last lines (0-1000)' }),
    ),
    follow: Type.Optional(Type.Boolean({ description: 'Keep the answer open and stream new lines' })),
  },
  Closed,
);
export const DeploymentListQuery = Type.Object(
  {
    ...PageQuerySchema.properties,
    app: Type.Optional(IdSchema),
    provider: Type.Optional(IdSchema),
    state: Type.Optional(Type.Enum(['active', 'draining', 'removed'] as const)),
  },
  Closed,
);

const ServiceName = ServiceNameSchema;
const Limits = {
  ratePerSecond: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  burst: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  dailyQuota: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
  maxRequestBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1024 * 1024 * 1024 })),
  maxResponseBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 * 1024 * 1024 * 1024 })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 3_600_000 })),
};
export const ServiceSchema = Type.Object({
  id: IdSchema,
  name: Type.String(),
  orgId: IdSchema,
  appId: IdSchema,
  description: Type.String(),
  access: Type.Enum(['public', 'restricted'] as const),
  url: Type.String({ description: 'Base URL of the service (latest version)' }),
  limits: Type.Object({
    ratePerSecond: Type.Integer(),
    burst: Type.Integer(),
    dailyQuota: Type.Integer(),
    maxRequestBytes: Type.Integer(),
    maxResponseBytes: Type.Integer(),
    timeoutMs: Type.Integer(),
  }),
  versions: Type.Array(
    Type.Object({ version: Type.String(), major: Type.Integer(), path: Type.String(), running: Type.Boolean() }),
  ),
  datasets: Type.Array(
    Type.Object({
      provider: Type.String({ description: "The provider's name" }),
      providerId: IdSchema,
      dataset: Type.String(),
      datasetId: Type.Optional(IdSchema),
    }),
  ),
  createdAt: TimestampSchema,
});
export const ServicePage = PageSchema(ServiceSchema);
export const CreateServiceBody = Type.Object(
  {
    name: ServiceName,
    appId: IdSchema,
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    access: Type.Optional(Type.Enum(['public', 'restricted'] as const)),
    ...Limits,
  },
  Closed,
);
export const UpdateServiceBody = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    access: Type.Optional(Type.Enum(['public', 'restricted'] as const)),
    ...Limits,
  },
  Closed,
);
export const GrantBody = Type.Object({ orgId: IdSchema }, Closed);
export const GrantParams = Type.Object({ id: IdSchema, orgId: IdSchema }, Closed);

export const KeySchema = Type.Object({
  id: IdSchema,
  orgId: IdSchema,
  userId: IdSchema,
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to recognise it' }),
  services: Type.Array(IdSchema),
  state: Type.Enum(['active', 'expired', 'revoked'] as const),
  expiresAt: Type.Optional(TimestampSchema),
  createdAt: TimestampSchema,
});
export const KeyPage = PageSchema(KeySchema);
export const CreateKeyBody = Type.Object(
  {
    orgId: IdSchema,
    name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f]+$' }),
    services: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
      description: 'Service ids or names',
    }),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 5 * 366 * 86400 })),
  },
  Closed,
);
export const KeyListQuery = Type.Object({ ...PageQuerySchema.properties, org: Type.Optional(IdSchema) }, Closed);

export const UsageQuery = Type.Object(
  {
    granularity: Type.Optional(Type.Enum(['hour', 'day'] as const, { default: 'day' })),
    from: Type.Optional(TimestampSchema),
    to: Type.Optional(TimestampSchema),
    service: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    key: Type.Optional(IdSchema),
    groupBy: Type.Optional(Type.Enum(['key', 'service'] as const)),
  },
  Closed,
);
export const UsageSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      period: TimestampSchema,
      keyId: Type.Optional(IdSchema),
      serviceId: Type.Optional(IdSchema),
      calls: Type.Integer(),
      errors: Type.Integer(),
      bytesIn: Type.Integer(),
      bytesOut: Type.Integer(),
      avgDurationMs: Type.Number(),
      p50Ms: Type.Optional(
        Type.Number({
          description:
            'median call duration: the upper bound of its bucket in a log-scale histogram (powers of 2 ms), so at most twice the true value; absent for periods recorded before the histogram',
        }),
      ),
      p99Ms: Type.Optional(Type.Number({ description: '99th percentile call duration, like p50Ms' })),
    }),
  ),
});

export const JobUsageQuery = Type.Object(
  {
    granularity: Type.Optional(Type.Enum(['hour', 'day'] as const, { default: 'day' })),
    from: Type.Optional(TimestampSchema),
    to: Type.Optional(TimestampSchema),
    version: Type.Optional(IdSchema),
    groupBy: Type.Optional(Type.Enum(['org', 'provider', 'version'] as const)),
  },
  Closed,
);
export const JobUsageSchema = Type.Object({
  items: Type.Array(
    Type.Object({
      period: TimestampSchema,
      orgId: Type.Optional(IdSchema),
      providerId: Type.Optional(IdSchema),
      versionId: Type.Optional(IdSchema),
      runs: Type.Integer({ description: 'Jobs that ended in the period' }),
      succeeded: Type.Integer(),
      failed: Type.Integer(),
      refused: Type.Integer(),
      cancelled: Type.Integer(),
      wallTimeMs: Type.Integer({ description: 'Summed from start to end (0 for a job cancelled while queued)' }),
      cpuTimeMs: Type.Integer({ description: 'Summed over the runs whose agent measured it (cpuMeasuredRuns)' }),
      cpuMeasuredRuns: Type.Integer(),
      resultFiles: Type.Integer(),
      resultBytes: Type.Integer(),
      argsBytes: Type.Integer(),
    }),
  ),
});

export const AuditRecordSchema = Type.Object({
  seq: Type.Integer(),
  id: IdSchema,
  ts: TimestampSchema,
  requestId: Type.String(),
  keyId: Type.String(),
  callerOrgId: Type.String(),
  serviceId: Type.String(),
  serviceName: Type.String(),
  version: Type.String(),
  providerId: Type.String(),
  agentId: Type.String(),
  method: Type.String(),
  status: Type.Integer(),
  errorCode: Type.String(),
  bytesIn: Type.Integer(),
  bytesOut: Type.Integer(),
  durationMs: Type.Integer(),
  hash: Type.String(),
  prevHash: Type.String(),
});
export const AuditQuery = Type.Object(
  {
    service: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  Closed,
);
export const AuditPage = Type.Object({
  items: Type.Array(AuditRecordSchema),
  nextBefore: Type.Optional(Type.Integer()),
});
export const AuditVerificationSchema = Type.Object({
  ok: Type.Boolean(),
  records: Type.Integer(),
  firstBroken: Type.Optional(Type.Object({ seq: Type.Integer(), reason: Type.String() })),
  head: Type.Optional(Type.Object({ seq: Type.Integer(), hash: Type.String() })),
  anchored: Type.Boolean({
    description: 'False when no signed anchor was found outside the database: only the chain itself was checked',
  }),
  anchor: Type.Optional(
    Type.Object(
      { seq: Type.Integer(), hash: Type.String(), ts: Type.String(), keyId: Type.String(), source: Type.String() },
      { description: 'The newest signed head found outside the database (coord or the anchor file), and where' },
    ),
  ),
  ignored: Type.Optional(
    Type.Array(Type.String(), {
      description: "Coordination keys of anchors signed by keys this node does not trust (other nodes' own keys)",
    }),
  ),
});

export const AnchorKeySchema = Type.Object({
  keyId: Type.String({
    description: 'First 16 hex digits of the SHA-256 of the public key (SPKI DER); anchors name it',
  }),
  publicKey: Type.String({ description: 'Ed25519 public key (SPKI PEM) that verifies signed audit anchors' }),
});

export const EventSchema = Type.Object({
  seq: Type.Integer(),
  id: IdSchema,
  ts: TimestampSchema,
  orgId: Type.Optional(IdSchema),
  kind: Type.String(),
  subject: Type.String(),
  message: Type.String(),
  data: Type.Unknown(),
});
export const EventQuery = Type.Object(
  {
    subject: Type.Optional(Type.String({ maxLength: 64 })),
    kind: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z0-9.-]{0,63}$',
        description:
          'Only events of this kind; ending in a dot, of kinds starting so (operator. for every operator action)',
      }),
    ),
    before: Type.Optional(Type.Integer({ minimum: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  },
  Closed,
);
export const EventPage = Type.Object({ items: Type.Array(EventSchema), nextBefore: Type.Optional(Type.Integer()) });

/** What `GET /api/v1/agents/self/desired` answers: core's one wire shape, also sent as the tunnel's `desired` command. */
export const AgentDesiredSchema = CoreAgentDesiredSchema;
export const AgentStatusBody = Type.Object(
  {
    deployments: Type.Array(
      Type.Object(
        {
          id: IdSchema,
          state: Type.Enum(DEPLOYMENT_STATES),
          ready: Type.Integer({ minimum: 0, maximum: 1024 }),
          desired: Type.Integer({ minimum: 0, maximum: 1024 }),
          reason: Type.Optional(Type.String({ maxLength: 2000 })),
        },
        Closed,
      ),
      { maxItems: 1000 },
    ),
  },
  Closed,
);
export const DigestParams = Type.Object({ digest: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, Closed);

// Jobs

const JobState = Type.Enum(['queued', 'running', 'succeeded', 'failed', 'refused', 'cancelled'] as const);
export const JobResultSchema = Type.Object({
  name: Type.String(),
  size: Type.Integer({ description: 'Bytes' }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  createdAt: TimestampSchema,
});
export const JobSchema = Type.Object({
  id: IdSchema,
  orgId: IdSchema,
  appId: IdSchema,
  versionId: IdSchema,
  version: Type.String(),
  providerId: IdSchema,
  args: Type.Unknown(),
  state: JobState,
  reason: Type.String({ description: 'The state in words' }),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  logsShared: Type.Boolean({ description: "Whether the provider let the job's output lines out (GET …/logs)" }),
  wallTimeMs: Type.Integer({ description: 'The wall-time budget' }),
  cpuTimeMs: Type.Union([Type.Integer(), Type.Null()], {
    description: "CPU time the job's processes used, as the agent measured it; null while it runs or when unmeasured",
  }),
  createdAt: TimestampSchema,
  startedAt: Type.Union([TimestampSchema, Type.Null()]),
  finishedAt: Type.Union([TimestampSchema, Type.Null()]),
  expiresAt: Type.Union([TimestampSchema, Type.Null()]),
  results: Type.Optional(Type.Array(JobResultSchema, { description: 'Only for the submitting organisation' })),
});
export const JobPage = PageSchema(JobSchema);
export const CreateJobBody = Type.Object(
  {
    versionId: IdSchema,
    providerId: IdSchema,
    args: Type.Optional(Type.Unknown({ description: 'JSON the job reads (INSITU_JOB_ARGS); at most 64 KiB' })),
    wallTimeMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 7 * 24 * 3600 * 1000 })),
  },
  Closed,
);
export const JobListQuery = Type.Object({ ...PageQuerySchema.properties, state: Type.Optional(JobState) }, Closed);
export const JobResultParams = Type.Object(
  { id: IdSchema, name: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$' }) },
  Closed,
);
export const JobLogsSchema = Type.Object({ lines: Type.Array(Type.String()) });
export const AgentJobsSchema = CoreAgentJobsSchema;
export const AgentJobReportBody = CoreAgentJobReportSchema;
