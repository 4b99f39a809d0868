import Type, { type Static } from 'typebox';
import { DatasetNameSchema } from './schemas/catalog.js';
import { OutputPolicySchema } from './schemas/output-policy.js';

/**
 * One dataset an application version may read, as the platform resolved its manifest
 * entry at submission: the provider by id (never by name), and the dataset's name at that
 * provider. The list of these is what the providers approved and what agents enforce.
 */
export const ResolvedDatasetSchema = Type.Object(
  {
    providerId: Type.String({ pattern: '^prv_[0-9a-hjkmnp-tv-z]{26}$', description: 'The provider, by id' }),
    dataset: DatasetNameSchema,
  },
  { additionalProperties: false },
);
export type ResolvedDataset = Static<typeof ResolvedDatasetSchema>;

/**
 * The path an agent answers itself on the tunnel, without any application: the operator's
 * deep probe (server → tunnel → agent) reaches every connected agent through it.
 */
export const AGENT_PROBE_PATH = '/_insitu/probe';

/**
 * The path an agent answers itself with what a deployment's instances wrote:
 * `GET /_insitu/logs/{deployment}?lines=N[&follow=1]`, one JSON line per output line
 * (`{ at, instance, stream, line }`); with `follow` the answer stays open and streams new lines.
 */
export const AGENT_LOGS_PATH = '/_insitu/logs';

/** The header a gateway sets on a call it sends down the tunnel: which deployment answers it. */
export const DEPLOYMENT_HEADER = 'insitu-deployment';

/**
 * A deployment as the platform sends it to a provider's agents (`GET
 * /api/v1/agents/self/desired` and the tunnel's `desired` command): the one wire shape
 * the server writes and the agent reads, and validates on every path in.
 */
export const AgentDeploymentSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64 }),
    app: Type.String({ minLength: 1, maxLength: 64 }),
    version: Type.String({ minLength: 1, maxLength: 128 }),
    digest: Type.String({
      pattern: '^[0-9a-f]{64}$',
      description: "The approved sha256 of the bundle's canonical tarball",
    }),
    replicas: Type.Integer({ minimum: 0, maximum: 1024 }),
    bundle: Type.String({
      maxLength: 200,
      description: 'Platform path to fetch the bundle from with the agent credential',
    }),
    state: Type.Enum(['active', 'draining'] as const),
    datasets: Type.Array(ResolvedDatasetSchema, {
      maxItems: 100,
      description:
        "The approved, resolved datasets of this deployment's provider that the application may read; the agent serves these and nothing else",
    }),
  },
  { additionalProperties: false },
);
export type AgentDeployment = Static<typeof AgentDeploymentSchema>;

/** An output policy the provider set on the platform for one of its datasets, by name. */
export const AgentDatasetPolicySchema = Type.Object(
  { dataset: DatasetNameSchema, policy: OutputPolicySchema },
  { additionalProperties: false },
);
export type AgentDatasetPolicy = Static<typeof AgentDatasetPolicySchema>;

/**
 * What the platform sends an agent: every deployment its provider should run, and the
 * output policies set on the platform for its datasets (the agent applies the stricter of
 * each and its own; a platform without policies sends none).
 */
export const AgentDesiredSchema = Type.Object(
  {
    deployments: Type.Array(AgentDeploymentSchema, { maxItems: 1000 }),
    policies: Type.Optional(Type.Array(AgentDatasetPolicySchema, { maxItems: 100_000 })),
  },
  { additionalProperties: false },
);
export type AgentDesired = Static<typeof AgentDesiredSchema>;

/**
 * What an agent reports for one deployment it runs (`PUT /api/v1/agents/self/status`):
 * `pending` (not started), `starting` (no instance ready yet, none in trouble),
 * `running` (every desired instance ready), `degraded` (at least one instance ready and
 * serving, fewer than desired), `crash-looping` (no instance ready, one keeps crashing),
 * `failed` (will not start: bundle, digest, manifest), `stopping`, `stopped`.
 */
export const DEPLOYMENT_STATES = [
  'pending',
  'starting',
  'running',
  'degraded',
  'crash-looping',
  'failed',
  'stopped',
  'stopping',
] as const;
export type ReportedDeploymentState = (typeof DEPLOYMENT_STATES)[number];

/**
 * Whether calls may go to a deployment an agent reports so: `running` or `degraded`,
 * with at least one ready instance. The one rule the agent's announcement to the tunnel
 * and the gateway's routing share, so they never disagree about what serves.
 */
export function servesCalls(report: { state: string; ready: number }): boolean {
  return (report.state === 'running' || report.state === 'degraded') && report.ready > 0;
}

/**
 * Whether an agent's report says an instance of the deployment keeps crashing: the whole
 * deployment is `crash-looping`, or it is `degraded` (others serve) with the reason the
 * agent gives a crash loop, `… [INSITU_APP_UNAVAILABLE]` (the agent writes a report's
 * reason as `message [CODE]`). What the operator's `app-crash-looping` alert reads.
 */
export function reportsCrashLoop(report: { state: string; reason?: string }): boolean {
  return (
    report.state === 'crash-looping' ||
    (report.state === 'degraded' && (report.reason ?? '').endsWith('[INSITU_APP_UNAVAILABLE]'))
  );
}
