import Type, { type Static } from 'typebox';
import Value from 'typebox/value';
import { InsituError } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { assertValid } from '../validate.js';
import { DatasetNameSchema } from './catalog.js';
import { AppNameSchema } from './common.js';

/** How an application is started: a JS entry file, a .py entry, or any executable. */
export const APP_RUNTIMES = ['node', 'python', 'command'] as const;
export type AppRuntime = (typeof APP_RUNTIMES)[number];

/** A service answers calls; a job runs once and writes result files. */
export const APP_KINDS = ['service', 'job'] as const;
export type AppKind = (typeof APP_KINDS)[number];

/** The kinds a manifest declares, as a list. */
export function manifestKinds(manifest: { kind?: AppKind | readonly AppKind[] }): AppKind[] {
  const kind = manifest.kind ?? 'service';
  return typeof kind === 'string' ? [kind] : [...kind];
}

/** HTTP methods an endpoint may declare. */
export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

// Semantic Versioning 2.0.0, the regular expression suggested by semver.org.
const SEMVER =
  '^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$';

// A relative path inside the bundle: no leading "/", no "." or ".." segment, no control characters.
const BUNDLE_PATH = '^(?!/)(?!.*(?:^|/)\\.{1,2}(?:/|$))[^\\u0000-\\u001f\\u007f\\\\]{1,255}$';

export const AppLimitsSchema = Type.Object(
  {
    memoryMb: Type.Integer({
      minimum: 16,
      maximum: 65536,
      default: 256,
      description:
        'Memory of one instance in MiB (cgroup limit where available; the address-space rlimit is derived from it)',
    }),
    cpuSeconds: Type.Integer({
      minimum: 1,
      maximum: 31_536_000,
      default: 3600,
      description:
        'CPU time one process of an instance may use in its lifetime (RLIMIT_CPU); past it the process is killed and restarted',
    }),
    processes: Type.Integer({
      minimum: 1,
      maximum: 4096,
      default: 64,
      description: 'Processes and threads one instance may have at once',
    }),
    openFiles: Type.Integer({
      minimum: 16,
      maximum: 65536,
      default: 256,
      description: 'Open file descriptors per process (RLIMIT_NOFILE)',
    }),
    requestTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 600_000,
      default: 30_000,
      description: 'How long one request may take before the agent answers 504',
    }),
  },
  { additionalProperties: false },
);
export type AppLimits = Static<typeof AppLimitsSchema>;

export const AppDatasetRefSchema = Type.Object(
  {
    provider: Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'Provider id (prv_…) or name; the platform resolves it to an id once, at submission',
    }),
    dataset: DatasetNameSchema,
  },
  { additionalProperties: false },
);
export type AppDatasetRef = Static<typeof AppDatasetRefSchema>;

export const AppEndpointSchema = Type.Object(
  {
    method: Type.Enum(HTTP_METHODS),
    path: Type.String({ pattern: '^/[^\\s]{0,511}$', description: 'Path, may hold {parameters}' }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type AppEndpoint = Static<typeof AppEndpointSchema>;

/**
 * `insitu.json`, the manifest at the root of every application bundle. The platform
 * validates submissions with it and the agent validates it again before starting.
 * `endpoints` (a list) or `openapi` (a path to an OpenAPI document inside the bundle)
 * must be given.
 */
export const AppManifestSchema = Type.Object(
  {
    $schema: Type.Optional(
      Type.String({
        maxLength: 2000,
        description:
          "The manifest's JSON Schema (GET /api/v1/schemas/insitu.json), for editors; ignored by the platform",
      }),
    ),
    name: AppNameSchema,
    version: Type.String({ pattern: SEMVER, maxLength: 128, description: 'Semantic version, e.g. 1.2.0' }),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    runtime: Type.Enum(APP_RUNTIMES),
    entry: Type.String({ pattern: BUNDLE_PATH, description: 'Entry file, relative to the bundle root' }),
    args: Type.Optional(
      Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64, description: 'Arguments after the entry' }),
    ),
    datasets: Type.Array(AppDatasetRefSchema, {
      maxItems: 100,
      default: [],
      description: 'Datasets the application reads',
    }),
    endpoints: Type.Optional(Type.Array(AppEndpointSchema, { minItems: 1, maxItems: 200 })),
    openapi: Type.Optional(Type.String({ pattern: BUNDLE_PATH, description: 'OpenAPI document inside the bundle' })),
    limits: Type.Optional(AppLimitsSchema),
    replicas: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    kind: Type.Union(
      [Type.Enum(APP_KINDS), Type.Array(Type.Enum(APP_KINDS), { minItems: 1, maxItems: 2, uniqueItems: true })],
      {
        default: 'service',
        description:
          'What the application is: a "service" answering calls, a "job" run once over the data writing result files, or both (["service","job"])',
      },
    ),
  },
  { additionalProperties: false },
);
/** A manifest after defaults are filled: `limits` is always present. */
export type AppManifest = Static<typeof AppManifestSchema> & { limits: AppLimits };

/**
 * Validate a parsed `insitu.json`: fill defaults, check the schema and the rules a
 * schema cannot say (endpoints or openapi; no dataset twice). Returns a new, typed
 * manifest or throws `code` (default `INSITU_VALIDATION`) listing every problem.
 *
 * @example const manifest = parseAppManifest(JSON.parse(text), { what: 'insitu.json of my-app' });
 */
export function parseAppManifest(value: unknown, options: { what?: string; code?: ErrorCode } = {}): AppManifest {
  const what = options.what ?? 'insitu.json';
  const code = options.code ?? 'INSITU_VALIDATION';
  const copy: unknown = typeof value === 'object' && value !== null ? structuredClone(value) : value;
  if (typeof copy === 'object' && copy !== null && !Array.isArray(copy)) {
    const record = copy as Record<string, unknown>;
    record.limits = Value.Default(AppLimitsSchema, record.limits ?? {});
  }
  const manifest = assertValid(AppManifestSchema, Value.Default(AppManifestSchema, copy), {
    what,
    code,
  }) as AppManifest;
  const problems: string[] = [];
  if (!manifest.endpoints && !manifest.openapi && manifestKinds(manifest).includes('service'))
    problems.push('give "endpoints" (a list) or "openapi" (a path to an OpenAPI document in the bundle)');
  const seen = new Set<string>();
  for (const ref of manifest.datasets) {
    const key = `${ref.provider}/${ref.dataset}`;
    if (seen.has(key)) problems.push(`datasets: ${key} is listed twice`);
    seen.add(key);
  }
  if (problems.length > 0)
    throw new InsituError(code, `invalid ${what}: ${problems.join('; ')}`, { details: { issues: problems } });
  return manifest;
}
