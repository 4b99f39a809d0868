import Type, { type Static } from 'typebox';

const ColumnName = Type.String({ minLength: 1, maxLength: 128 });

/** Laplace noise on counts and sums, paid for from a privacy budget per caller and dataset. */
export const NoisePolicySchema = Type.Object(
  {
    epsilonPerQuery: Type.Number({
      exclusiveMinimum: 0,
      maximum: 10,
      description: 'Privacy loss of one answer; shared among the noised aggregates of the query',
    }),
    budget: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1_000_000,
      description: 'Total epsilon one caller may spend on the dataset; then noised queries are refused',
    }),
    sumBounds: Type.Optional(
      Type.Record(ColumnName, Type.Number({ exclusiveMinimum: 0, maximum: 1e15 }), {
        description:
          'Per numeric column, the largest absolute value one row may contribute to a sum (values are clamped to it); a sum of a column without a bound is refused',
      }),
    ),
  },
  { additionalProperties: false },
);
export type NoisePolicy = Static<typeof NoisePolicySchema>;

/**
 * What may leave the provider from one dataset, whatever application asks: set by the
 * provider (in the agent's config, and optionally on the platform), enforced by the agent's
 * data API where the data is read. An absent field is no restriction.
 */
export const OutputPolicySchema = Type.Object(
  {
    aggregatesOnly: Type.Optional(
      Type.Boolean({ description: 'Only grouped aggregates are answered; no row-level reads' }),
    ),
    minGroupSize: Type.Optional(
      Type.Integer({
        minimum: 2,
        maximum: 1_000_000,
        description: 'Every aggregate row covers at least this many source rows; smaller groups are suppressed',
      }),
    ),
    neverLeave: Type.Optional(
      Type.Array(ColumnName, {
        maxItems: 1000,
        uniqueItems: true,
        description:
          'Columns usable in filters (and as hidden grouping keys) but never projected, aggregated or ordered by',
      }),
    ),
    maxRowsPerAnswer: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Rows per answer at most (more are cut)' }),
    ),
    noise: Type.Optional(NoisePolicySchema),
  },
  { additionalProperties: false },
);
export type OutputPolicy = Static<typeof OutputPolicySchema>;

function stricterNoise(a: NoisePolicy | undefined, b: NoisePolicy | undefined): NoisePolicy | undefined {
  if (!a || !b) return a ?? b;
  const bounds: Record<string, number> = {};
  // A sum is allowed only where both allow it; of two bounds the larger gives the more noise.
  for (const [column, bound] of Object.entries(a.sumBounds ?? {})) {
    const other = b.sumBounds?.[column];
    if (other !== undefined) bounds[column] = Math.max(bound, other);
  }
  return {
    epsilonPerQuery: Math.min(a.epsilonPerQuery, b.epsilonPerQuery),
    budget: Math.min(a.budget, b.budget),
    ...(Object.keys(bounds).length > 0 ? { sumBounds: bounds } : {}),
  };
}

/**
 * The stricter of two policies, field by field: aggregates only if either says so, the
 * larger minimum group, the union of protected columns, the smaller row cap, the smaller
 * epsilon and budget. Combining can only tighten: `stricterPolicy(a, b)` allows nothing
 * that `a` or `b` refuses.
 */
export function stricterPolicy(a: OutputPolicy | undefined, b: OutputPolicy | undefined): OutputPolicy {
  const x = a ?? {};
  const y = b ?? {};
  const out: OutputPolicy = {};
  if (x.aggregatesOnly === true || y.aggregatesOnly === true) out.aggregatesOnly = true;
  const k = Math.max(x.minGroupSize ?? 0, y.minGroupSize ?? 0);
  if (k > 0) out.minGroupSize = k;
  const never = [...new Set([...(x.neverLeave ?? []), ...(y.neverLeave ?? [])])];
  if (never.length > 0) out.neverLeave = never;
  const rows = Math.min(x.maxRowsPerAnswer ?? Infinity, y.maxRowsPerAnswer ?? Infinity);
  if (rows !== Infinity) out.maxRowsPerAnswer = rows;
  const noise = stricterNoise(x.noise, y.noise);
  if (noise) out.noise = noise;
  return out;
}

/**
 * A policy in words, one clause per restriction (`[]` when it restricts nothing), for
 * `insitu catalog show` and logs: `['aggregates only', 'groups of at least 10 rows', …]`.
 */
export function describeOutputPolicy(policy: OutputPolicy): string[] {
  const out: string[] = [];
  if (policy.aggregatesOnly) out.push('aggregates only');
  if (policy.minGroupSize !== undefined) out.push(`groups of at least ${policy.minGroupSize} rows`);
  if (policy.neverLeave?.length) out.push(`never leave: ${policy.neverLeave.join(', ')}`);
  if (policy.maxRowsPerAnswer !== undefined) out.push(`at most ${policy.maxRowsPerAnswer} rows per answer`);
  if (policy.noise) {
    const bounds = Object.entries(policy.noise.sumBounds ?? {}).map(([c, b]) => `${c} ±${b}`);
    out.push(
      `Laplace noise, epsilon ${policy.noise.epsilonPerQuery} per query, budget ${policy.noise.budget} per application${bounds.length ? `, sums of ${bounds.join(', ')}` : ''}`,
    );
  }
  return out;
}
