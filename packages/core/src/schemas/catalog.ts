import Type, { type Static } from 'typebox';
import { IdSchema, NOT_ID_SHAPED, TimestampSchema } from './common.js';
import { OutputPolicySchema } from './output-policy.js';

/** Kinds of data source an agent connects. */
export const SOURCE_KINDS = ['sqlite', 'csv', 'parquet', 'postgres', 'mysql'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** Logical column types, the same for every source; the source's own type is kept in `sourceType`. */
export const COLUMN_TYPES = [
  'integer',
  'number',
  'decimal',
  'text',
  'boolean',
  'date',
  'timestamp',
  'binary',
  'json',
  'unknown',
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/** Who may see a dataset's metadata: everyone signed in, or only its own organisation. */
export const VISIBILITIES = ['public', 'org'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

const NoControl = '^[^\\u0000-\\u001f\\u007f]*$';

/** A dataset's name, unique within its provider; it may hold `_` (table names do) but never has the shape of an id. */
export const DatasetNameSchema = Type.String({
  pattern: `^${NOT_ID_SHAPED}[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`,
  description: 'Dataset name, unique within its provider: letters, digits, "_", ".", "-"; never the shape of an id',
});

export const TagSchema = Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,47}$', description: 'Lower-case tag' });

export const ColumnSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: NoControl }),
    type: Type.Enum(COLUMN_TYPES),
    sourceType: Type.Optional(Type.String({ maxLength: 64, pattern: NoControl })),
    nullable: Type.Boolean(),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);
export type Column = Static<typeof ColumnSchema>;

/** What an agent sends for one dataset: metadata only, never rows. */
export const DatasetInputSchema = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    tags: Type.Optional(Type.Array(TagSchema, { maxItems: 20, uniqueItems: true })),
    sourceKind: Type.Enum(SOURCE_KINDS),
    visibility: Type.Optional(Type.Enum(VISIBILITIES, { default: 'public' })),
    columns: Type.Array(ColumnSchema, { minItems: 1, maxItems: 1000 }),
    rowCount: Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.Null()]),
    syncedAt: Type.Optional(TimestampSchema),
    policy: Type.Optional(
      Type.Unsafe<Static<typeof OutputPolicySchema>>({
        ...OutputPolicySchema,
        description: "The output policy of the agent's config (authoritative; the platform's can only tighten it)",
      }),
    ),
  },
  { additionalProperties: false },
);
export type DatasetInput = Static<typeof DatasetInputSchema>;

/** A dataset as the catalog shows it. */
export const DatasetSchema = Type.Object({
  id: IdSchema,
  providerId: IdSchema,
  providerName: Type.String(),
  orgId: IdSchema,
  name: Type.String(),
  description: Type.String(),
  tags: Type.Array(Type.String()),
  sourceKind: Type.String(),
  visibility: Type.String(),
  columns: Type.Array(ColumnSchema),
  rowCount: Type.Union([Type.Integer(), Type.Null()]),
  policy: Type.Unsafe<Static<typeof OutputPolicySchema>>({
    ...OutputPolicySchema,
    description:
      "The effective output policy the agent enforces: the stricter of the agent's config (agentPolicy) and the platform's (platformPolicy)",
  }),
  agentPolicy: OutputPolicySchema,
  platformPolicy: OutputPolicySchema,
  syncedAt: TimestampSchema,
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
});
export type Dataset = Static<typeof DatasetSchema>;
