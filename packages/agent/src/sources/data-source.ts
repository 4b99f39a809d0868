import {
  InsituError,
  type Column,
  type ColumnType,
  type OutputPolicy,
  type SourceKind,
  type Visibility,
} from '@insitu/core';
import type { AggregateFn, DataValue, FilterOp } from '@insitu/sdk';
import { dataSourceUnavailable } from '../errors.js';

/** A table or file of a source as the agent knows it: metadata only. */
export interface DatasetMeta {
  /** Catalog name (unique within the provider). */
  name: string;
  /** The config name of the source it comes from. */
  source: string;
  sourceKind: SourceKind;
  /** Table name, or the CSV file path. */
  location: string;
  columns: Column[];
  rowCount: number | null;
  description: string;
  tags: string[];
  visibility: Visibility;
  /** The output policy of the agent's config for this dataset (the platform's may only tighten it). */
  policy?: OutputPolicy;
}

/** One checked condition: the column comes from the introspected schema, the value is typed for it. */
export interface PlannedFilter {
  column: Column;
  op: FilterOp;
  /** Normalised for the column's logical type; an array for `in`; undefined for null tests. */
  value?: DataValue | DataValue[];
}

export interface PlannedAggregate {
  fn: AggregateFn;
  column?: Column;
  as: string;
  type: ColumnType;
  /** Output policy (noise): each value is clamped to [-clamp, clamp] before it is summed. */
  clamp?: number;
}

export interface PlannedOrder {
  /** Output column name (aggregate alias or group column) for grouped queries, else a dataset column. */
  name: string;
  /** The dataset column, when ordering by one. */
  column?: Column;
  type: ColumnType;
  direction: 'asc' | 'desc';
}

/**
 * A data API request after it was checked against the dataset's introspected schema.
 * Sources compile only this: every identifier in it is a column the agent found itself.
 */
export interface QueryPlan {
  dataset: DatasetMeta;
  /** The answer's columns, in order. */
  output: Array<{ name: string; type: ColumnType }>;
  /** Rows: the projected columns. */
  columns: Column[];
  where: PlannedFilter[];
  grouped: boolean;
  groupBy: Column[];
  aggregates: PlannedAggregate[];
  orderBy: PlannedOrder[];
  /** Rows to fetch at most (the row cap + 1 when the caller gave no smaller limit). */
  limit: number;
  offset: number;
  /** Output policy: groups (or the whole table, without groupBy) covering fewer source rows are left out. */
  minGroupSize?: number;
  /** Output policy: which aggregates get Laplace noise, and how much epsilon the answer costs. */
  noise?: PlannedNoise;
}

/** Laplace noise for a grouped answer: per output column index, the scale of the noise. */
export interface PlannedNoise {
  epsilon: number;
  columns: Array<{ index: number; scale: number; type: ColumnType; nonNegative: boolean }>;
}

/** A connector: introspects a source and runs planned queries against it, read-only. */
export interface DataSource {
  readonly name: string;
  readonly kind: SourceKind;
  /** Tables or files → datasets with columns, types, nullability and row counts. Never rows. */
  introspect(): Promise<DatasetMeta[]>;
  /**
   * Run a plan; yields batches of rows (values in `plan.output` order, already in wire
   * form). Stops and releases the source when `signal` aborts.
   */
  query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]>;
  /**
   * Optional fast path: the same rows, already serialised as data API row lines (one JSON
   * array and a newline per row), with their count. A source offers it when it can
   * serialise off the agent's main thread.
   */
  queryLines?(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<{ text: string; rows: number }>;
  close(): Promise<void>;
}

/** A source's failure as the data API reports it: `INSITU_DATA_SOURCE_UNAVAILABLE` naming the source (an InsituError passes as it is). */
export function sourceUnavailable(source: string, error: unknown): InsituError {
  if (error instanceof InsituError) return error;
  return dataSourceUnavailable(source, error instanceof Error ? error.message : String(error), error);
}
