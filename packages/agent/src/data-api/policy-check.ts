import { InsituError, type Column, type OutputPolicy } from '@insitu/core';
import type { PlannedNoise, QueryPlan } from '../sources/data-source.js';

function refuse(
  code: 'INSITU_POLICY_AGGREGATES_ONLY' | 'INSITU_POLICY_COLUMN_PROTECTED' | 'INSITU_POLICY_NOISE_UNSUPPORTED',
  message: string,
): InsituError {
  return new InsituError(code, message);
}

/**
 * Whether a dataset column is one the policy keeps inside the provider. Names compare
 * without case: SQLite and MySQL identifiers do, so `SSN` in a policy protects `ssn`.
 */
export function protectedColumns(policy: OutputPolicy, columns: readonly Column[]): Set<string> {
  const never = new Set((policy.neverLeave ?? []).map((n) => n.toLowerCase()));
  return new Set(columns.filter((c) => never.has(c.name.toLowerCase())).map((c) => c.name));
}

/**
 * Check a plan against the dataset's effective output policy and add what the policy
 * adds (the minimum group size, noise, the row cap is applied by the caller). Throws a
 * coded `INSITU_POLICY_*` error (403) for what the policy refuses; never loosens anything.
 *
 * @param explicitColumns whether the request named its columns (an unnamed projection
 *   leaves protected columns out instead of being refused)
 */
export function enforcePolicy(plan: QueryPlan, policy: OutputPolicy, explicitColumns: boolean): QueryPlan {
  const name = plan.dataset.name;
  const secret = protectedColumns(policy, plan.dataset.columns);
  const secretName = new Set([...secret].map((s) => s.toLowerCase()));
  const isSecret = (c: Column | undefined) => c !== undefined && secret.has(c.name);
  let columns = plan.columns;
  let output = plan.output;

  // neverLeave: never projected, never aggregated beyond count, never an ordering key,
  // never a group key (every group key is projected), never an output name.
  if (!plan.grouped && secret.size > 0) {
    const leaked = columns.filter(isSecret);
    if (leaked.length > 0 && explicitColumns)
      throw refuse(
        'INSITU_POLICY_COLUMN_PROTECTED',
        `column ${leaked[0]?.name} of dataset ${name} never leaves the provider: it can be used in "where" only`,
      );
    columns = columns.filter((c) => !isSecret(c));
    output = columns.map((c) => ({ name: c.name, type: c.type }));
    if (columns.length === 0)
      throw refuse('INSITU_POLICY_COLUMN_PROTECTED', `every column of dataset ${name} is protected (neverLeave)`);
  }
  for (const column of plan.groupBy)
    if (isSecret(column))
      throw refuse(
        'INSITU_POLICY_COLUMN_PROTECTED',
        `column ${column.name} of dataset ${name} never leaves the provider, and a group key is part of the answer: filter on it with "where" instead`,
      );
  for (const agg of plan.aggregates) {
    if (isSecret(agg.column) && agg.fn !== 'count')
      throw refuse(
        'INSITU_POLICY_COLUMN_PROTECTED',
        `${agg.fn} of column ${agg.column?.name} would reveal values of a column that never leaves the provider (only count is allowed)`,
      );
    if (secretName.has(agg.as.toLowerCase()))
      throw refuse(
        'INSITU_POLICY_COLUMN_PROTECTED',
        `an aggregate may not be named ${JSON.stringify(agg.as)}, the name of a column that never leaves the provider`,
      );
  }
  for (const order of plan.orderBy)
    if (isSecret(order.column))
      throw refuse(
        'INSITU_POLICY_COLUMN_PROTECTED',
        `ordering by column ${order.column?.name}, which never leaves the provider, would reveal its order`,
      );

  // aggregatesOnly, and noise (which only a grouped aggregate can carry).
  const onlyAggregates = policy.aggregatesOnly === true || policy.noise !== undefined;
  const code = policy.noise ? 'INSITU_POLICY_NOISE_UNSUPPORTED' : 'INSITU_POLICY_AGGREGATES_ONLY';
  if (onlyAggregates && (!plan.grouped || plan.aggregates.length === 0))
    throw refuse(
      code,
      `dataset ${name} answers only aggregates (count, sum${policy.noise ? '' : ', avg, min, max'}): rows and bare group keys are refused`,
    );
  if (policy.aggregatesOnly && policy.minGroupSize === undefined) {
    const extreme = plan.aggregates.find((a) => a.fn === 'min' || a.fn === 'max');
    if (extreme)
      throw refuse(
        'INSITU_POLICY_AGGREGATES_ONLY',
        `${extreme.fn} returns one row's value; dataset ${name} allows it only with a minimum group size`,
      );
  }

  let noise: PlannedNoise | undefined;
  let aggregates = plan.aggregates;
  if (policy.noise) {
    const epsilon = policy.noise.epsilonPerQuery;
    const share = epsilon / plan.aggregates.length;
    const bounds = policy.noise.sumBounds ?? {};
    aggregates = plan.aggregates.map((agg) => {
      if (agg.fn === 'count') return agg;
      const bound = agg.fn === 'sum' && agg.column ? bounds[agg.column.name] : undefined;
      if (bound === undefined)
        throw refuse(
          'INSITU_POLICY_NOISE_UNSUPPORTED',
          agg.fn === 'sum'
            ? `sum of ${agg.column?.name} needs a bound in the dataset's noise policy (sumBounds)`
            : `${agg.fn} cannot be answered with noise; dataset ${name} allows count and bounded sums`,
        );
      return { ...agg, clamp: bound };
    });
    for (const order of plan.orderBy)
      if (!order.column)
        throw refuse(
          'INSITU_POLICY_NOISE_UNSUPPORTED',
          `ordering by the aggregate ${order.name} would follow the exact values, not the noised ones`,
        );
    const offset = plan.groupBy.length;
    noise = {
      epsilon,
      columns: aggregates.map((agg, i) => ({
        index: offset + i,
        // Laplace scale = sensitivity / epsilon share: one row changes a count by 1, a sum by its bound.
        scale: (agg.fn === 'count' ? 1 : (agg.clamp as number)) / share,
        type: agg.type,
        nonNegative: agg.fn === 'count',
      })),
    };
  }

  return {
    ...plan,
    columns,
    output,
    aggregates,
    ...(policy.minGroupSize !== undefined && plan.grouped ? { minGroupSize: policy.minGroupSize } : {}),
    ...(noise ? { noise } : {}),
  };
}
