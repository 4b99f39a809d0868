import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { InsituError, type Column, type ColumnType } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import { parse } from 'csv-parse';
import type { CsvSourceConfig } from '../config/agent-config.js';
import type { DataSource, DatasetMeta, QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { runPlan } from './row-engine.js';
import { canonicalDecimal, normaliseTimestamp } from './values.js';

const BATCH = 2000;

/** Files matching `pattern`: `*` and `?` in the file name only. */
export async function globFiles(pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  const name = basename(pattern);
  if (!/[*?]/.test(name)) return [pattern];
  if (/[*?]/.test(dir)) throw new InsituError('INSITU_CONFIG_INVALID', `files: wildcards are allowed in the file name only, not in ${dir}`);
  const re = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `cannot list ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return entries.filter((e) => re.test(e)).sort().map((e) => join(dir, e));
}

// Inference: the first type, in this order, that every non-empty value of a column fits.
const INFERABLE: Array<[ColumnType, RegExp]> = [
  ['integer', /^-?\d{1,15}$/],
  ['number', /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/],
  ['boolean', /^(?:true|false)$/],
  ['date', /^\d{4}-\d{2}-\d{2}$/],
  ['timestamp', /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$/],
];

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

interface FileInfo {
  size: number;
  mtimeMs: number;
  meta: DatasetMeta;
}

/** CSV files: a dataset per file, typed by inference with per-column overrides, filtered while streaming. */
export class CsvSource implements DataSource {
  readonly kind = 'csv' as const;
  readonly name: string;
  private readonly cache = new Map<string, FileInfo>();

  constructor(
    private readonly config: Readonly<CsvSourceConfig>,
    private readonly options: { maxSortRows: number },
  ) {
    this.name = config.name;
  }

  private parser(path: string, signal?: AbortSignal) {
    const input = createReadStream(path, signal ? { signal } : {});
    const parser = parse({ delimiter: this.config.delimiter, bom: true, skip_empty_lines: true, relax_column_count: false });
    input.on('error', (error) => parser.destroy(error));
    return input.pipe(parser);
  }

  private async describeFile(path: string, key: string): Promise<DatasetMeta> {
    let header: string[] | undefined;
    let possible: boolean[][] = [];
    let nullable: boolean[] = [];
    let rowCount = 0;
    try {
      for await (const record of this.parser(path) as AsyncIterable<string[]>) {
        if (!header) {
          header = record.map((h) => h.trim());
          const seen = new Set<string>();
          for (const h of header) {
            if (h === '' || seen.has(h)) throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `${path}: header has an empty or repeated column name ${JSON.stringify(h)}`);
            seen.add(h);
          }
          possible = header.map(() => INFERABLE.map(() => true));
          nullable = header.map(() => false);
          continue;
        }
        rowCount++;
        for (let i = 0; i < record.length; i++) {
          const value = record[i] as string;
          if (value === '') {
            nullable[i] = true;
            continue;
          }
          const p = possible[i] as boolean[];
          for (let t = 0; t < INFERABLE.length; t++) if (p[t] && !(INFERABLE[t] as [ColumnType, RegExp])[1].test(value)) p[t] = false;
        }
      }
    } catch (error) {
      if (error instanceof InsituError) throw error;
      throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (!header) throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: ${path} is empty (a header line is needed)`);
    const overrides = this.config.datasets?.[key]?.columns ?? {};
    const columns: Column[] = header.map((name, i) => {
      const p = possible[i] as boolean[];
      const allEmpty = rowCount === 0 || (nullable[i] && p.every(Boolean));
      const inferred = allEmpty ? 'text' : (INFERABLE.find((_, t) => p[t])?.[0] ?? 'text');
      const type = overrides[name]?.type ?? inferred;
      return { name, type, sourceType: overrides[name]?.type ? `csv (${type}, set in config)` : `csv (inferred ${inferred})`, nullable: nullable[i] ?? false };
    });
    for (const name of Object.keys(overrides)) {
      if (!header.includes(name)) throw new InsituError('INSITU_CONFIG_INVALID', `source ${this.name}: datasets.${key}.columns.${name}: ${path} has no such column`);
    }
    return describeDataset(this.config, key, path, columns, rowCount);
  }

  async introspect(): Promise<DatasetMeta[]> {
    const files = await globFiles(this.config.files);
    const byStem = new Map(files.map((f) => [basename(f, extname(f)), f]));
    const out: DatasetMeta[] = [];
    for (const stem of selectTables([...byStem.keys()], this.config)) {
      const path = byStem.get(stem) as string;
      let info;
      try {
        info = await stat(path);
      } catch (error) {
        throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      const cached = this.cache.get(path);
      if (cached && cached.size === info.size && cached.mtimeMs === info.mtimeMs) {
        out.push(cached.meta);
        continue;
      }
      const meta = await this.describeFile(path, stem);
      this.cache.set(path, { size: info.size, mtimeMs: info.mtimeMs, meta });
      out.push(meta);
    }
    return out;
  }

  private async *typedRows(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    const columns = plan.dataset.columns;
    const casters = columns.map((c) => csvCaster(c.type));
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal.addEventListener('abort', onAbort);
    const records = this.parser(plan.dataset.location, controller.signal);
    let first = true;
    let batch: DataValue[][] = [];
    try {
      for await (const record of records as AsyncIterable<string[]>) {
        if (first) {
          first = false;
          const header = record.map((h) => h.trim());
          if (header.length !== columns.length || header.some((h, i) => h !== (columns[i] as Column).name)) {
            throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: the columns of ${plan.dataset.location} changed since the last sync`);
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
      throw new InsituError('INSITU_DATA_SOURCE_UNAVAILABLE', `source ${this.name}: ${plan.dataset.location}: ${(error as Error).message}`, { cause: error });
    } finally {
      signal.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }

  query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    return runPlan(plan, this.typedRows(plan, signal), this.options);
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}
