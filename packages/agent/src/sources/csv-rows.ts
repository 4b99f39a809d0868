// The part of the CSV source that runs inside its query workers: reading a file's
// records, typing them, and nothing that loads more than it needs (the worker starts with
// the first query, so it imports core's light entry only).
import { createReadStream } from 'node:fs';
import { InsituError } from '@insitu/core/basics';
import type { Column, ColumnType } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import { parse } from 'csv-parse';
import type { CsvSourceConfig } from '../config/agent-config.js';
import type { QueryPlan } from './data-source.js';
import { canonicalDecimal, normaliseTimestamp } from './values.js';
import { dataSourceUnavailable } from '../errors.js';

const BATCH = 2000;

/** Text → typed value for one logical type; empty fields are null. */
export function csvCaster(type: ColumnType): (text: string) => DataValue {
  switch (type) {
    case 'integer':
    case 'number':
      return (t) => {
        if (t === '') return null;
        const n = Number(t);
        return Number.isFinite(n) ? n : null;
      };
    case 'decimal':
      return (t) => (t === '' ? null : /^-?\d+(\.\d+)?$/.test(t.trim()) ? canonicalDecimal(t) : null);
    case 'boolean':
      return (t) => (t === 'true' ? true : t === 'false' ? false : null);
    case 'timestamp':
      return (t) => (t === '' ? null : normaliseTimestamp(t));
    default:
      return (t) => (t === '' ? null : t);
  }
}

/** What a CSV query worker is given: the source's config and the agent's sort bound. */
export interface CsvWorkerData {
  config: Readonly<CsvSourceConfig>;
  maxSortRows: number;
}

/** The records of a CSV file, streamed (the header first). */
export function csvRecords(config: Readonly<CsvSourceConfig>, path: string, signal?: AbortSignal) {
  const input = createReadStream(path, signal ? { signal } : {});
  const parser = parse({ delimiter: config.delimiter, bom: true, skip_empty_lines: true, relax_column_count: false });
  input.on('error', (error) => parser.destroy(error));
  return input.pipe(parser);
}

/** The rows of the plan's file, typed, in dataset column order (run inside the query worker). */
export async function* csvRows(
  config: Readonly<CsvSourceConfig>,
  plan: QueryPlan,
  signal: AbortSignal,
): AsyncGenerator<DataValue[][]> {
  const columns = plan.dataset.columns;
  const casters = columns.map((c) => csvCaster(c.type));
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal.addEventListener('abort', onAbort);
  const records = csvRecords(config, plan.dataset.location, controller.signal);
  let first = true;
  let batch: DataValue[][] = [];
  try {
    for await (const record of records as AsyncIterable<string[]>) {
      if (first) {
        first = false;
        const header = record.map((h) => h.trim());
        if (header.length !== columns.length || header.some((h, i) => h !== (columns[i] as Column).name)) {
          throw dataSourceUnavailable(
            config.name,
            `the columns of ${plan.dataset.location} changed since the last sync`,
          );
        }
        continue;
      }
      const row = new Array<DataValue>(casters.length);
      for (let i = 0; i < casters.length; i++) row[i] = (casters[i] as (t: string) => DataValue)(record[i] ?? '');
      batch.push(row);
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } catch (error) {
    if (signal.aborted) return;
    if (error instanceof InsituError) throw error;
    throw dataSourceUnavailable(config.name, `${plan.dataset.location}: ${(error as Error).message}`, error);
  } finally {
    signal.removeEventListener('abort', onAbort);
    controller.abort();
  }
}
