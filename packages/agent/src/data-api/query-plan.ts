import { assertValid, type InsituError, type Column, type ColumnType, type OutputPolicy } from '@insitu/core';
import { AGGREGATE_FNS, FILTER_OPS, type DataQuery, type DataValue } from '@insitu/sdk';
import Type, { type Static } from 'typebox';
import type { DatasetMeta, PlannedAggregate, PlannedFilter, PlannedOrder, QueryPlan } from '../sources/data-source.js';
import { canonicalDecimal, isNumeric, normaliseTimestamp } from '../sources/values.js';
import { enforcePolicy } from './policy-check.js';
import { queryInvalid } from '../errors.js';

const Name = Type.String({ minLength: 1, maxLength: 128 });
const Scalar = Type.Union([Type.String({ maxLength: 65_536 }), Type.Number(), Type.Boolean(), Type.Null()]);

/** The body of `POST /v1/datasets/{name}/query`, checked before anything else. */
export const DataQuerySchema = Type.Object(
  {
    columns: Type.Optional(Type.Array(Name, { minItems: 1, maxItems: 1000 })),
    where: Type.Optional(
      Type.Array(
        Type.Object(
          {
            column: Name,
            op: Type.Enum(FILTER_OPS),
            value: Type.Optional(Type.Union([Scalar, Type.Array(Scalar, { maxItems: 10_000 })])),
          },
          { additionalProperties: false },
        ),
        { maxItems: 100 },
      ),
    ),
    orderBy: Type.Optional(
      Type.Array(
        Type.Object(
          { column: Name, direction: Type.Optional(Type.Enum(['asc', 'desc'] as const)) },
          { additionalProperties: false },
        ),
        { maxItems: 32 },
      ),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 0 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
    groupBy: Type.Optional(Type.Array(Name, { minItems: 1, maxItems: 32 })),
    aggregates: Type.Optional(
      Type.Array(
        Type.Object(
          { fn: Type.Enum(AGGREGATE_FNS), column: Type.Optional(Name), as: Type.Optional(Name) },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 64 },
      ),
    ),
  },
  { additionalProperties: false },
);
type CheckedQuery = Static<typeof DataQuerySchema>;
// The SDK's request type and this schema describe the same wire format.
const _sameShape: (q: DataQuery) => CheckedQuery = (q) => q;

function invalid(message: string): InsituError {
  return queryInvalid(message);
}

function columnOf(dataset: DatasetMeta, name: string, what: string): Column {
  const column = dataset.columns.find((c) => c.name === name);
  if (!column) throw invalid(`${what}: dataset ${dataset.name} has no column ${JSON.stringify(name)}`);
  return column;
}

/** A filter value, checked and normalised for the column's logical type. */
function typedValue(column: Column, value: unknown, what: string): DataValue {
  const type = column.type;
  const bad = () => invalid(`${what}: ${JSON.stringify(value)} is not a valid ${type} value for column ${column.name}`);
  if (value === null || value === undefined)
    throw invalid(`${what}: a value is required (use "is null" to test for null)`);
  switch (type) {
    case 'integer': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw bad();
      return n;
    }
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) throw bad();
      return n;
    }
    case 'decimal': {
      if (typeof value === 'number' && Number.isFinite(value)) return canonicalDecimal(value);
      if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return canonicalDecimal(value);
      throw bad();
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw bad();
      return value;
    case 'date':
      if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) throw bad();
      return value;
    case 'timestamp':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw bad();
      return normaliseTimestamp(value);
    case 'binary':
      throw invalid(`${what}: binary column ${column.name} can only be tested with "is null" or "is not null"`);
    default:
      if (typeof value !== 'string') throw bad();
      return value;
  }
}

function aggregateType(fn: PlannedAggregate['fn'], column: Column | undefined): ColumnType {
  if (fn === 'count') return 'integer';
  if (fn === 'avg') return 'number';
  const type = (column as Column).type;
  if (fn === 'sum') return type === 'integer' ? 'integer' : type === 'decimal' ? 'decimal' : 'number';
  return type;
}

/** The longest LIKE pattern accepted: a pattern's cost on each value grows with its length. */
export const MAX_LIKE_PATTERN = 1000;

/**
 * Check a data API request against the dataset's introspected schema and turn it into a
 * {@link QueryPlan}. Every column named anywhere must exist in the dataset; filter values
 * must fit their column's type. Throws `INSITU_DATA_QUERY_INVALID` naming the problem.
 * With an output `policy`, the plan is then checked against it and carries what it adds
 * (see {@link enforcePolicy}); `limits.maxRows` should already be the policy's row cap.
 */
export function planQuery(
  dataset: DatasetMeta,
  body: unknown,
  limits: { maxRows: number },
  policy?: OutputPolicy,
): QueryPlan {
  const query = assertValid(DataQuerySchema, body ?? {}, { what: 'data query', code: 'INSITU_DATA_QUERY_INVALID' });
  const where: PlannedFilter[] = (query.where ?? []).map((filter, i) => {
    const what = `where[${i}]`;
    const column = columnOf(dataset, filter.column, what);
    if (filter.op === 'is null' || filter.op === 'is not null') {
      if (filter.value !== undefined && filter.value !== null) throw invalid(`${what}: "${filter.op}" takes no value`);
      return { column, op: filter.op };
    }
    if (filter.op === 'in') {
      if (!Array.isArray(filter.value) || filter.value.length === 0)
        throw invalid(`${what}: "in" needs a non-empty array of values`);
      return { column, op: 'in', value: filter.value.map((v) => typedValue(column, v, what)) };
    }
    if (Array.isArray(filter.value)) throw invalid(`${what}: only "in" takes an array`);
    if (filter.op === 'like') {
      if (column.type !== 'text')
        throw invalid(`${what}: "like" works on text columns; ${column.name} is ${column.type}`);
      if (typeof filter.value !== 'string') throw invalid(`${what}: "like" needs a string pattern`);
      if (filter.value.length > MAX_LIKE_PATTERN)
        throw invalid(`${what}: a "like" pattern may have at most ${MAX_LIKE_PATTERN} characters`);
      return { column, op: 'like', value: filter.value };
    }
    return { column, op: filter.op, value: typedValue(column, filter.value, what) };
  });

  const grouped = query.groupBy !== undefined || query.aggregates !== undefined;
  let output: QueryPlan['output'];
  let columns: Column[] = [];
  let groupBy: Column[] = [];
  let aggregates: PlannedAggregate[] = [];
  let orderable: Map<string, { column?: Column; type: ColumnType }>;
  if (grouped) {
    groupBy = (query.groupBy ?? []).map((name, i) => columnOf(dataset, name, `groupBy[${i}]`));
    if (query.columns && query.columns.some((c) => !groupBy.some((g) => g.name === c))) {
      throw invalid(
        'columns: with groupBy or aggregates, only grouped columns can be selected (the answer holds the groupBy columns, then the aggregates)',
      );
    }
    aggregates = (query.aggregates ?? []).map((agg, i) => {
      const what = `aggregates[${i}]`;
      if (agg.column === undefined && agg.fn !== 'count') throw invalid(`${what}: ${agg.fn} needs a column`);
      const column = agg.column === undefined ? undefined : columnOf(dataset, agg.column, what);
      if (column && (agg.fn === 'sum' || agg.fn === 'avg') && !isNumeric(column.type)) {
        throw invalid(`${what}: ${agg.fn} needs a numeric column; ${column.name} is ${column.type}`);
      }
      if (
        column &&
        (agg.fn === 'min' || agg.fn === 'max') &&
        (column.type === 'binary' || column.type === 'json' || column.type === 'unknown')
      ) {
        throw invalid(`${what}: ${agg.fn} cannot compare ${column.type} values`);
      }
      return {
        fn: agg.fn,
        ...(column ? { column } : {}),
        as: agg.as ?? (column ? `${agg.fn}_${column.name}` : agg.fn),
        type: aggregateType(agg.fn, column),
      };
    });
    output = [
      ...groupBy.map((c) => ({ name: c.name, type: c.type })),
      ...aggregates.map((a) => ({ name: a.as, type: a.type })),
    ];
    const names = new Set<string>();
    for (const o of output) {
      if (names.has(o.name))
        throw invalid(
          `the answer would have two columns named ${JSON.stringify(o.name)}; give aggregates distinct "as" names`,
        );
      names.add(o.name);
    }
    orderable = new Map<string, { column?: Column; type: ColumnType }>(
      groupBy.map((c) => [c.name, { column: c, type: c.type }]),
    );
    for (const a of aggregates) orderable.set(a.as, { type: a.type });
  } else {
    columns = query.columns
      ? query.columns.map((name, i) => columnOf(dataset, name, `columns[${i}]`))
      : dataset.columns;
    output = columns.map((c) => ({ name: c.name, type: c.type }));
    orderable = new Map(dataset.columns.map((c) => [c.name, { column: c, type: c.type }]));
  }
  const orderBy: PlannedOrder[] = (query.orderBy ?? []).map((order, i) => {
    const found = orderable.get(order.column);
    if (!found) {
      throw invalid(
        `orderBy[${i}]: ${JSON.stringify(order.column)} is not ${grouped ? 'a grouped column or an aggregate of this query' : `a column of dataset ${dataset.name}`}`,
      );
    }
    if (found.type === 'binary' || found.type === 'json')
      throw invalid(`orderBy[${i}]: cannot order by ${found.type} column ${order.column}`);
    return {
      name: order.column,
      ...(found.column ? { column: found.column } : {}),
      type: found.type,
      direction: order.direction ?? 'asc',
    };
  });
  const requested = query.limit;
  const limit = requested !== undefined && requested <= limits.maxRows ? requested : limits.maxRows + 1;
  const plan: QueryPlan = {
    dataset,
    output,
    columns,
    where,
    grouped,
    groupBy,
    aggregates,
    orderBy,
    limit,
    offset: query.offset ?? 0,
  };
  return policy ? enforcePolicy(plan, policy, query.columns !== undefined) : plan;
}
