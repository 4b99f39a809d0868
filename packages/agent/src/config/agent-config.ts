import { dirname, isAbsolute, resolve } from 'node:path';
import {
  InsituError,
  JobResultPolicySchema,
  TagSchema,
  VISIBILITIES,
  COLUMN_TYPES,
  DatasetNameSchema,
  OutputPolicySchema,
  assertValid,
  deepFreeze,
  readConfigFile,
  type ColumnType,
  type Visibility,
} from '@insitu/core';
import Type, { type Static, type TSchema } from 'typebox';
import Value from 'typebox/value';
import { configInvalid } from '../errors.js';

function validated<S extends TSchema>(schema: S, value: unknown, what: string): Static<S> {
  const copy: unknown = typeof value === 'object' && value !== null ? structuredClone(value) : value;
  return assertValid(schema, Value.Default(schema, copy), { what, code: 'INSITU_CONFIG_INVALID' });
}

const ColumnOverrideSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    type: Type.Optional(
      Type.Enum(COLUMN_TYPES, { description: 'CSV only: the logical type instead of the inferred one' }),
    ),
  },
  { additionalProperties: false },
);

/** What the provider says about one table or file: its catalog name, description, tags and visibility. */
const DatasetOverrideSchema = Type.Object(
  {
    name: Type.Optional(DatasetNameSchema),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    tags: Type.Optional(Type.Array(TagSchema, { maxItems: 20, uniqueItems: true })),
    visibility: Type.Optional(Type.Enum(VISIBILITIES)),
    columns: Type.Optional(Type.Record(Type.String(), ColumnOverrideSchema)),
    policy: Type.Optional(
      Type.Unsafe<Static<typeof OutputPolicySchema>>({
        ...OutputPolicySchema,
        description: "Output policy (replaces the source's default one); the platform's can only tighten it",
      }),
    ),
  },
  { additionalProperties: false },
);
export type DatasetOverride = Static<typeof DatasetOverrideSchema>;

const common = {
  name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'Name of this source in the agent config' }),
  tables: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
      minItems: 1,
      description: 'Only these tables (or CSV file stems); default all',
    }),
  ),
  datasets: Type.Optional(
    Type.Record(Type.String(), DatasetOverrideSchema, {
      description: 'Per table (or file stem): catalog name, description, tags, visibility, columns',
    }),
  ),
  defaults: Type.Optional(
    Type.Object(
      {
        tags: Type.Optional(Type.Array(TagSchema, { maxItems: 20, uniqueItems: true })),
        visibility: Type.Optional(Type.Enum(VISIBILITIES)),
        policy: Type.Optional(OutputPolicySchema),
      },
      { additionalProperties: false },
    ),
  ),
};

const passwordFields = {
  passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the password (first line)' })),
  passwordEnv: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      description: 'Environment variable holding the password (not INSITU_*)',
    }),
  ),
};

export const SqliteSourceSchema = Type.Object(
  { ...common, kind: Type.Literal('sqlite'), path: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
);
export const CsvSourceSchema = Type.Object(
  {
    ...common,
    kind: Type.Literal('csv'),
    files: Type.String({
      minLength: 1,
      description:
        'A path or a glob (* and ? in the file name), e.g. ./data/*.csv; each file is a dataset named after its stem',
    }),
    delimiter: Type.String({ minLength: 1, maxLength: 1, default: ',' }),
  },
  { additionalProperties: false },
);
export const PostgresSourceSchema = Type.Object(
  {
    ...common,
    kind: Type.Literal('postgres'),
    host: Type.String({ minLength: 1, description: 'Host name, or a directory holding the Unix socket' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 5432 }),
    database: Type.String({ minLength: 1 }),
    user: Type.String({ minLength: 1, description: 'A read-only role' }),
    ...passwordFields,
    schema: Type.String({ minLength: 1, default: 'public' }),
    ssl: Type.Boolean({ default: false }),
    poolSize: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  },
  { additionalProperties: false },
);
export const MysqlSourceSchema = Type.Object(
  {
    ...common,
    kind: Type.Literal('mysql'),
    host: Type.Optional(Type.String({ minLength: 1 })),
    socket: Type.Optional(Type.String({ minLength: 1, description: 'Unix socket instead of host and port' })),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 3306 }),
    database: Type.String({ minLength: 1 }),
    user: Type.String({ minLength: 1, description: 'A read-only account' }),
    ...passwordFields,
    ssl: Type.Boolean({ default: false }),
    poolSize: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  },
  { additionalProperties: false },
);
export type SqliteSourceConfig = Static<typeof SqliteSourceSchema>;
export type CsvSourceConfig = Static<typeof CsvSourceSchema>;
export type PostgresSourceConfig = Static<typeof PostgresSourceSchema>;
export type MysqlSourceConfig = Static<typeof MysqlSourceSchema>;
export type SourceConfig = SqliteSourceConfig | CsvSourceConfig | PostgresSourceConfig | MysqlSourceConfig;

const SOURCE_SCHEMAS = {
  sqlite: SqliteSourceSchema,
  csv: CsvSourceSchema,
  postgres: PostgresSourceSchema,
  mysql: MysqlSourceSchema,
} as const;
export const AGENT_SOURCE_KINDS = Object.keys(SOURCE_SCHEMAS) as Array<keyof typeof SOURCE_SCHEMAS>;

export const LimitsSchema = Type.Object(
  {
    queryTimeoutMs: Type.Integer({
      minimum: 100,
      maximum: 3_600_000,
      default: 30_000,
      description: 'Per data API query, from request to last row',
    }),
    maxRows: Type.Integer({
      minimum: 1,
      maximum: 100_000_000,
      default: 1_000_000,
      description: 'Rows one data API answer may hold; more are cut and the answer says "truncated"',
    }),
    maxConcurrentQueries: Type.Integer({
      minimum: 1,
      maximum: 256,
      default: 8,
      description: 'Data API queries running at once per source',
    }),
    maxSortRows: Type.Integer({
      minimum: 1000,
      maximum: 100_000_000,
      default: 2_000_000,
      description: 'CSV only: rows kept in memory to order or group',
    }),
  },
  { additionalProperties: false, default: {} },
);

export const SandboxSchema = Type.Object(
  {
    allowNoSandbox: Type.Boolean({
      default: false,
      description: 'Allow --no-sandbox (development only; warns on every start)',
    }),
    bwrap: Type.String({ default: 'bwrap', description: 'The bubblewrap binary' }),
    cgroups: Type.Boolean({
      default: true,
      description: 'Use cgroup v1 memory and pids controllers when they are writable',
    }),
    uid: Type.Integer({
      minimum: 1,
      maximum: 4_294_967_294,
      default: 65534,
      description: 'User id inside the sandbox',
    }),
    addressSpaceExtraMb: Type.Integer({
      minimum: 0,
      maximum: 1_048_576,
      default: 2048,
      description:
        'Added to an app memory limit to form its address-space rlimit (runtimes reserve far more than they use)',
    }),
  },
  { additionalProperties: false, default: {} },
);

export const AgentConfigSchema = Type.Object(
  {
    providerId: Type.Optional(
      Type.String({
        pattern: '^prv_[0-9a-hjkmnp-tv-z]{26}$',
        description: "This agent's provider; checked against the credential's",
      }),
    ),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description: 'Agent name shown on the platform (default: host name)',
      }),
    ),
    sources: Type.Array(Type.Unknown(), { default: [], maxItems: 100 }),
    sync: Type.Object(
      {
        intervalSeconds: Type.Integer({
          minimum: 5,
          maximum: 86_400,
          default: 300,
          description: 'Re-sync metadata this often',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    limits: LimitsSchema,
    sandbox: SandboxSchema,
    tunnel: Type.Object(
      {
        workConnections: Type.Integer({
          minimum: 0,
          maximum: 256,
          default: 64,
          description:
            'Work connections per tunnel session: plain connections the agent dials beside the HTTP/2 session, over which calls reach applications as piped bytes (0: every call over HTTP/2)',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    jobs: Type.Object(
      {
        concurrency: Type.Integer({
          minimum: 0,
          maximum: 64,
          default: 2,
          description: 'Jobs this agent runs at once (0: it runs none); the others wait in the queue',
        }),
        shareLogs: Type.Boolean({
          default: false,
          description:
            "Allow a job's own output lines (its last 200) to go to the platform for the submitter to read; they go only for versions whose approval shares them too (jobPolicy.shareLogs)",
        }),
        results: Type.Object(JobResultPolicySchema.properties, {
          additionalProperties: false,
          default: {},
          description: 'What may leave as job results: checked before anything goes up the tunnel',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** The agent config after validation, with every source typed and every path absolute. */
export type AgentConfig = Omit<Static<typeof AgentConfigSchema>, 'sources'> & { sources: SourceConfig[] };
export type AgentLimits = Static<typeof LimitsSchema>;
export type SandboxConfig = Static<typeof SandboxSchema>;

function resolvePath(base: string, path: string): string {
  return isAbsolute(path) ? path : resolve(base, path);
}

/**
 * Validate an agent config (already parsed), resolve relative paths against `baseDir`,
 * and check the rules a schema cannot say (unique source names, a password source).
 */
export function parseAgentConfig(
  raw: Record<string, unknown>,
  options: { what: string; baseDir: string },
): Readonly<AgentConfig> {
  const base = validated(AgentConfigSchema, raw, options.what);
  const sources: SourceConfig[] = [];
  const names = new Set<string>();
  base.sources.forEach((value, index) => {
    const where = `${options.what}: sources[${index}]`;
    const kind = (value as { kind?: unknown } | null)?.kind;
    if (typeof kind !== 'string' || !(kind in SOURCE_SCHEMAS)) {
      throw configInvalid(
        `invalid ${where}: "kind" must be one of ${AGENT_SOURCE_KINDS.join(', ')}${typeof kind === 'string' ? `, got "${kind}"` : ''}`,
      );
    }
    const schema = SOURCE_SCHEMAS[kind as keyof typeof SOURCE_SCHEMAS];
    const source: SourceConfig = validated(schema, value, where);
    if (names.has(source.name))
      throw configInvalid(`invalid ${where}: a source named "${source.name}" is declared twice`);
    names.add(source.name);
    const copy = source;
    if (copy.kind === 'sqlite') copy.path = resolvePath(options.baseDir, copy.path);
    if (copy.kind === 'csv') copy.files = resolvePath(options.baseDir, copy.files);
    if ((copy.kind === 'postgres' || copy.kind === 'mysql') && copy.passwordFile)
      copy.passwordFile = resolvePath(options.baseDir, copy.passwordFile);
    if (copy.kind === 'mysql' && !copy.host && !copy.socket)
      throw configInvalid(`invalid ${where}: give "host" or "socket"`);
    if ((copy.kind === 'postgres' || copy.kind === 'mysql') && copy.passwordEnv?.startsWith('INSITU_')) {
      throw configInvalid(`invalid ${where}: passwordEnv must not be an INSITU_* variable (those are reserved)`);
    }
    sources.push(copy);
  });
  const config: AgentConfig = { ...base, sources };
  return deepFreeze(config);
}

/** Read and validate `agent.yaml`; relative paths in it are relative to the file. */
export function loadAgentConfig(file: string): Readonly<AgentConfig> {
  const raw = readConfigFile(file, true) ?? {};
  try {
    return parseAgentConfig(raw, { what: `agent config ${file}`, baseDir: dirname(resolve(file)) });
  } catch (error) {
    if (error instanceof InsituError && error.code === 'INSITU_CONFIG_INVALID' && !error.message.includes(file)) {
      throw configInvalid(`${file}: ${error.message}`, {
        details: error.details,
        cause: error,
      });
    }
    throw error;
  }
}

export type { ColumnType, Visibility };
