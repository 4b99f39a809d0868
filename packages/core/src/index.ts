/**
 * @insitu/core — the shared vocabulary of Insitu: error codes and the error class,
 * ids and secrets, configuration loading with the registry of environment variables,
 * logging, metrics and the wire schemas that the platform and the agent agree on.
 *
 * It imports nothing of ours. Start with {@link InsituError} and {@link loadConfig}.
 */
export { ERROR_CODES, isErrorCode } from './error-codes.js';
export type { ErrorCode } from './error-codes.js';
export { InsituError, errorBody, errorJson, isUserError, toInsituError } from './errors.js';
export type { ErrorBody, InsituErrorOptions } from './errors.js';
export { newId, isId } from './ids.js';
export type { IdPrefix } from './ids.js';
export { ID_SHAPE, hasIdShape, refKind } from './names.js';
export type { RefKind } from './names.js';
export {
  generateSecret,
  hashSecret,
  hashPassword,
  verifyPassword,
  safeEqual,
  DEFAULT_PASSWORD_COST,
} from './secrets.js';
export type { PasswordKdfCost } from './secrets.js';
export { createLogger, LOG_LEVELS, REDACT_PATHS } from './logger.js';
export type { Logger, LogLevel, CreateLoggerOptions } from './logger.js';
export { createMetricsRegistry, createHttpMetrics, Counter, Gauge, Histogram, Registry } from './metrics.js';
export type { HttpMetrics } from './metrics.js';
export { suggest } from './suggest.js';
export { assertValid, findUnknownKeys, formatIssues, schemaIssues } from './validate.js';
export type { ValidationIssue, AssertValidOptions } from './validate.js';
export { ENV_VARS, checkEnv, envOptions, envVar, readEnvVar, setPath } from './env-registry.js';
export type { EnvVar, EnvScope } from './env-registry.js';
export { loadConfig, readConfigFile, deepMerge, deepFreeze } from './config.js';
export type { ConfigSources } from './config.js';
export { seededRandom } from './seeded-random.js';
export { canonicalTar, bundleDigestOf, checkBundlePath, readBundleTar } from './bundle-format.js';
export type { BundleEntry, BundleLimits } from './bundle-format.js';
export { waitFor } from './wait-for.js';
export { CLUSTER_AUTH_HEADER, signClusterRequest, verifyClusterRequest } from './cluster-auth.js';
export { answerClientError, checkPathEncoding, decodePathSegment, echo, isLoopback } from './http-edge.js';
export { VERSION } from './version.js';
export { Sleeper, sleep } from './sleep.js';
export {
  AGENT_LOGS_PATH,
  AGENT_PROBE_PATH,
  AgentDeploymentSchema,
  AgentDesiredSchema,
  AgentDatasetPolicySchema,
  DEPLOYMENT_HEADER,
  DEPLOYMENT_STATES,
  ResolvedDatasetSchema,
  reportsCrashLoop,
  servesCalls,
} from './agent-deployment.js';
export type {
  AgentDeployment,
  AgentDesired,
  AgentDatasetPolicy,
  ReportedDeploymentState,
  ResolvedDataset,
} from './agent-deployment.js';
export {
  AgentJobSchema,
  AgentJobsSchema,
  AgentJobReportSchema,
  JOB_STATES,
  JOB_FINAL_STATES,
  JobResultPolicySchema,
  JobOutputPolicySchema,
  RESULT_NAME_PATTERN,
  stricterJobPolicy,
} from './agent-job.js';
export type { AgentJob, AgentJobReport, JobState, JobResultPolicy, JobOutputPolicy } from './agent-job.js';
export type { WaitForOptions } from './wait-for.js';
export {
  IdSchema,
  TimestampSchema,
  SlugSchema,
  AppNameSchema,
  ServiceNameSchema,
  ErrorBodySchema,
  PageQuerySchema,
  PageSchema,
} from './schemas/common.js';
export {
  SOURCE_KINDS,
  COLUMN_TYPES,
  VISIBILITIES,
  DatasetNameSchema,
  TagSchema,
  ColumnSchema,
  DatasetInputSchema,
  DatasetSchema,
} from './schemas/catalog.js';
export type { SourceKind, ColumnType, Visibility, Column, DatasetInput, Dataset } from './schemas/catalog.js';
export {
  OutputPolicySchema,
  NoisePolicySchema,
  stricterPolicy,
  describeOutputPolicy,
} from './schemas/output-policy.js';
export type { OutputPolicy, NoisePolicy } from './schemas/output-policy.js';
export {
  APP_KINDS,
  APP_RUNTIMES,
  HTTP_METHODS,
  manifestKinds,
  AppLimitsSchema,
  AppDatasetRefSchema,
  AppEndpointSchema,
  AppManifestSchema,
  parseAppManifest,
} from './schemas/app-manifest.js';
export type {
  AppKind,
  AppRuntime,
  AppLimits,
  AppDatasetRef,
  AppEndpoint,
  AppManifest,
} from './schemas/app-manifest.js';
