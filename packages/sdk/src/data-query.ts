/** Filter operators of the data API. `like` uses `%` and `_`, case-sensitive on every source. */
export const FILTER_OPS = ['=', '!=', '<', '<=', '>', '>=', 'in', 'like', 'is null', 'is not null'] as const;
export type FilterOp = (typeof FILTER_OPS)[number];

/** Aggregate functions the data API pushes down to the source. */
export const AGGREGATE_FNS = ['count', 'sum', 'avg', 'min', 'max'] as const;
export type AggregateFn = (typeof AGGREGATE_FNS)[number];

/** A scalar as it travels in JSON: dates and timestamps are ISO strings, decimals strings, binary base64. */
export type DataValue = string | number | boolean | null;

/** One condition; all conditions of a query must hold. */
export interface Filter {
  column: string;
  op: FilterOp;
  /** An array for `in`; absent for `is null` / `is not null`. */
  value?: DataValue | DataValue[];
}

export interface OrderBy {
  column: string;
  /** Default `asc`. Nulls come first in ascending order and last in descending order, on every source. */
  direction?: 'asc' | 'desc';
}

export interface Aggregate {
  fn: AggregateFn;
  /** Absent only for `count` (counts rows). */
  column?: string;
  /** Output column name; default `count` or `<fn>_<column>`. */
  as?: string;
}

/** A data API read request: projection, filters, ordering, paging and grouping, all pushed down. */
export interface DataQuery {
  columns?: string[];
  where?: Filter[];
  orderBy?: OrderBy[];
  limit?: number;
  offset?: number;
  groupBy?: string[];
  aggregates?: Aggregate[];
}

/** A column of an answer or of a dataset, with its logical type (the catalog's column types). */
export interface DataColumn {
  name: string;
  type: string;
  nullable?: boolean;
}

/** A dataset as the data API lists it to an application. */
export interface DatasetInfo {
  name: string;
  sourceKind: string;
  columns: DataColumn[];
  rowCount: number | null;
  /**
   * The dataset's effective output policy, enforced by the agent on every query (absent
   * fields: no restriction). A query it refuses fails with a `DataApiError` whose `code`
   * is `INSITU_POLICY_AGGREGATES_ONLY`, `INSITU_POLICY_COLUMN_PROTECTED`,
   * `INSITU_POLICY_NOISE_UNSUPPORTED` or `INSITU_POLICY_BUDGET_SPENT`.
   */
  policy?: OutputPolicyInfo;
}

/** An output policy as the data API reports it (core's `OutputPolicySchema`; the SDK has no dependencies). */
export interface OutputPolicyInfo {
  aggregatesOnly?: boolean;
  minGroupSize?: number;
  neverLeave?: string[];
  maxRowsPerAnswer?: number;
  noise?: { epsilonPerQuery: number; budget: number; sumBounds?: Record<string, number> };
}

/**
 * The NDJSON answer of `POST /v1/datasets/{name}/query`, one JSON value per line:
 * first a {@link SchemaLine}, then one JSON array per row (values in column order),
 * then an {@link EndLine}, or an {@link ErrorLine} if the query failed after it started.
 */
export interface SchemaLine {
  columns: DataColumn[];
}
export interface EndLine {
  end: { rows: number; truncated: boolean };
}
export interface ErrorLine {
  error: { code: string; message: string };
}
