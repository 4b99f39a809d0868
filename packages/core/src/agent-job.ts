import Type, { type Static } from 'typebox';
import { ResolvedDatasetSchema } from './agent-deployment.js';

/** A job's life: queued at the platform, running at one agent, then one final state. */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'refused', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** States a job never leaves. */
export const JOB_FINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'refused', 'cancelled'];

/**
 * A result file name: one path segment of letters, digits, `.`, `_` and `-`, not starting
 * with a dot (no directories, no hidden files, nothing a shell or a path join reads twice).
 */
export const RESULT_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$';

/**
 * What a provider lets leave its premises as job results, checked by the agent before
 * anything goes up the tunnel, and again by the platform (which trusts no agent).
 */
export const JobResultPolicySchema = Type.Object(
  {
    maxFiles: Type.Integer({ minimum: 0, maximum: 1000, default: 16, description: 'Result files per job' }),
    maxFileBytes: Type.Integer({
      minimum: 0,
      maximum: 1024 * 1024 * 1024,
      default: 16 * 1024 * 1024,
      description: 'Bytes of one result file',
    }),
    maxTotalBytes: Type.Integer({
      minimum: 0,
      maximum: 4 * 1024 * 1024 * 1024,
      default: 64 * 1024 * 1024,
      description: 'Bytes of all result files of one job',
    }),
    extensions: Type.Array(Type.String({ pattern: '^[a-z0-9]{1,16}$' }), {
      maxItems: 64,
      default: ['json', 'csv', 'txt', 'parquet'],
      description: 'Allowed file extensions (lower case, without the dot)',
    }),
  },
  { additionalProperties: false },
);
export type JobResultPolicy = Static<typeof JobResultPolicySchema>;

/**
 * What the provider lets leave of one approved version's jobs, set on the approval (per
 * version and provider). The agent's config stays the ceiling: this can only tighten it
 * ({@link stricterJobPolicy}). Without one, nothing of a job's output lines leaves.
 */
export const JobOutputPolicySchema = Type.Object(
  {
    shareLogs: Type.Boolean({
      default: false,
      description:
        "Let the job's last output lines reach the submitter (only if the agent's jobs.shareLogs allows it too)",
    }),
    // Written out without defaults: a limit the provider did not set must not appear as one.
    results: Type.Optional(
      Type.Object(
        {
          maxFiles: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
          maxFileBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: 1024 * 1024 * 1024 })),
          maxTotalBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: 4 * 1024 * 1024 * 1024 })),
          extensions: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9]{1,16}$' }), { maxItems: 64 })),
        },
        {
          additionalProperties: false,
          description: "Tighter result limits than the agent's jobs.results (a looser value changes nothing)",
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type JobOutputPolicy = Static<typeof JobOutputPolicySchema>;

/**
 * The stricter of the agent's own result policy and sharing, and an approval's: the
 * smaller of each limit, only extensions both allow, logs only when both share them.
 */
export function stricterJobPolicy(
  config: { shareLogs: boolean; results: JobResultPolicy },
  approval: JobOutputPolicy | undefined,
): { shareLogs: boolean; results: JobResultPolicy } {
  const tight = approval?.results ?? {};
  const min = (a: number, b: number | undefined) => (b === undefined ? a : Math.min(a, b));
  return {
    shareLogs: config.shareLogs && approval?.shareLogs === true,
    results: {
      maxFiles: min(config.results.maxFiles, tight.maxFiles),
      maxFileBytes: min(config.results.maxFileBytes, tight.maxFileBytes),
      maxTotalBytes: min(config.results.maxTotalBytes, tight.maxTotalBytes),
      extensions: tight.extensions
        ? config.results.extensions.filter((e) => tight.extensions?.includes(e))
        : [...config.results.extensions],
    },
  };
}

/**
 * A job as the platform sends it to a provider's agents (in `GET /api/v1/agents/self/jobs`
 * and the tunnel's `jobs` command): queued jobs any agent of the provider may claim, and
 * the running ones this agent claimed (a running job missing from the list was cancelled).
 */
export const AgentJobSchema = Type.Object(
  {
    id: Type.String({ pattern: '^job_[0-9a-hjkmnp-tv-z]{26}$' }),
    state: Type.Enum(['queued', 'running'] as const),
    app: Type.String({ minLength: 1, maxLength: 64 }),
    version: Type.String({ minLength: 1, maxLength: 128 }),
    digest: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    bundle: Type.String({ maxLength: 200 }),
    args: Type.Unknown({ description: 'The JSON arguments the consumer gave (INSITU_JOB_ARGS)' }),
    datasets: Type.Array(ResolvedDatasetSchema, { maxItems: 100 }),
    wallTimeMs: Type.Integer({ minimum: 1000, maximum: 7 * 24 * 3600 * 1000 }),
    policy: Type.Optional(JobOutputPolicySchema),
  },
  { additionalProperties: false },
);
export type AgentJob = Static<typeof AgentJobSchema>;

export const AgentJobsSchema = Type.Object(
  { jobs: Type.Array(AgentJobSchema, { maxItems: 1000 }) },
  { additionalProperties: false },
);

/** An agent's report of a job it claimed: running, or how it ended (results were uploaded before). */
export const AgentJobReportSchema = Type.Object(
  {
    state: Type.Enum(['succeeded', 'failed', 'refused'] as const),
    reason: Type.String({ maxLength: 2000 }),
    exitCode: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    logs: Type.Optional(Type.Array(Type.String({ maxLength: 2100 }), { maxItems: 200 })),
    cpuTimeMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2 ** 52,
        description: "CPU time the job's processes used (ms), measured by the agent's cgroup; absent when not measured",
      }),
    ),
  },
  { additionalProperties: false },
);
export type AgentJobReport = Static<typeof AgentJobReportSchema>;
