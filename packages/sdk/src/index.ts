/**
 * @insitu/sdk — for application authors. Inside the agent's sandbox an application reads
 * the datasets its manifest declares with {@link readDataset} (an async iterator over the
 * agent's data API, with the query pushed down to the source) and serves its HTTP
 * endpoints with {@link serve} on the listening socket the agent hands over (`INSITU_LISTEN_FD`).
 *
 * It depends on nothing but Node itself, so the agent can mount it read-only into a
 * sandbox as `/node_modules/@insitu/sdk`. A Python module with the same functions is in
 * `python/insitu.py`.
 *
 * @example
 * import { readDataset, serve } from '@insitu/sdk';
 * serve({ 'GET /count': async () => { let n = 0; for await (const _ of readDataset('sales', { columns: ['id'] })) n++; return { n }; } });
 */
export { FILTER_OPS, AGGREGATE_FNS } from './data-query.js';
export type {
  FilterOp,
  AggregateFn,
  DataValue,
  Filter,
  OrderBy,
  Aggregate,
  DataQuery,
  DataColumn,
  DatasetInfo,
  OutputPolicyInfo,
  SchemaLine,
  EndLine,
  ErrorLine,
} from './data-query.js';
export { DataApiError } from './data-api-error.js';
export { readDataset, listDatasets } from './read-dataset.js';
export type { DataApiOptions, ReadOptions, ReadArraysOptions } from './read-dataset.js';
export { serve, respond } from './serve.js';
export type { AppRequest, AppResponse, Handler, Handlers } from './serve.js';
export { jobArgs, writeResult } from './job.js';
