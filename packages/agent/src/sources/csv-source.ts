import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { InsituError, type Column, type ColumnType } from '@insitu/core';
import type { DataValue } from '@insitu/sdk';
import type { CsvSourceConfig } from '../config/agent-config.js';
import type { DataSource, DatasetMeta, QueryPlan } from './data-source.js';
import { describeDataset, selectTables } from './describe.js';
import { csvRecords, type CsvWorkerData } from './csv-rows.js';
import { WorkerPool } from './worker-pool.js';
import { configInvalid, dataSourceUnavailable } from '../errors.js';

/** Files matching `pattern`: `*` and `?` in the file name only. */
export async function globFiles(pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  const name = basename(pattern);
  if (!/[*?]/.test(name)) return [pattern];
  if (/[*?]/.test(dir)) throw configInvalid(`files: wildcards are allowed in the file name only, not in ${dir}`);
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  );
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw dataSourceUnavailable(
      undefined,
      `cannot list ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return entries
    .filter((e) => re.test(e))
    .sort()
    .map((e) => join(dir, e));
}

// Inference: the first type, in this order, that every non-empty value of a column fits.
const INFERABLE: Array<[ColumnType, RegExp]> = [
  ['integer', /^-?\d{1,15}$/],
  ['number', /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/],
  ['boolean', /^(?:true|false)$/],
  ['date', /^\d{4}-\d{2}-\d{2}$/],
  ['timestamp', /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$/],
];

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

  private readonly pool: WorkerPool;

  constructor(
    private readonly config: Readonly<CsvSourceConfig>,
    options: { maxSortRows: number; maxConcurrent: number },
  ) {
    this.name = config.name;
    // Queries (parsing, filtering, ordering, grouping) run in worker threads, as the SQL
    // sources' do: the agent's main thread stays free, and a query past its time limit is
    // stopped by terminating its worker.
    this.pool = new WorkerPool(
      new URL('./csv-worker.js', import.meta.url),
      { config, maxSortRows: options.maxSortRows } satisfies CsvWorkerData,
      options.maxConcurrent,
    );
  }

  private parser(path: string) {
    return csvRecords(this.config, path);
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
            if (h === '' || seen.has(h))
              throw dataSourceUnavailable(
                undefined,
                `${path}: header has an empty or repeated column name ${JSON.stringify(h)}`,
              );
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
          for (let t = 0; t < INFERABLE.length; t++)
            if (p[t] && !(INFERABLE[t] as [ColumnType, RegExp])[1].test(value)) p[t] = false;
        }
      }
    } catch (error) {
      if (error instanceof InsituError) throw error;
      throw dataSourceUnavailable(this.name, `${path}: ${(error as Error).message}`, error);
    }
    if (!header) throw dataSourceUnavailable(this.name, `${path} is empty (a header line is needed)`);
    const overrides = this.config.datasets?.[key]?.columns ?? {};
    const columns: Column[] = header.map((name, i) => {
      const p = possible[i] as boolean[];
      const allEmpty = rowCount === 0 || (nullable[i] && p.every(Boolean));
      const inferred = allEmpty ? 'text' : (INFERABLE.find((_, t) => p[t])?.[0] ?? 'text');
      const type = overrides[name]?.type ?? inferred;
      return {
        name,
        type,
        sourceType: overrides[name]?.type ? `csv (${type}, set in config)` : `csv (inferred ${inferred})`,
        nullable: nullable[i] ?? false,
      };
    });
    for (const name of Object.keys(overrides)) {
      if (!header.includes(name))
        throw configInvalid(`source ${this.name}: datasets.${key}.columns.${name}: ${path} has no such column`);
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
        throw dataSourceUnavailable(
          this.name,
          `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        );
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

  async *query(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<DataValue[][]> {
    for await (const reply of this.pool.run({ type: 'query', plan, lines: false }, signal, this.name)) {
      if (reply.type === 'rows') yield reply.rows as DataValue[][];
    }
  }

  async *queryLines(plan: QueryPlan, signal: AbortSignal): AsyncGenerator<{ text: string; rows: number }> {
    for await (const reply of this.pool.run({ type: 'query', plan, lines: true }, signal, this.name)) {
      if (reply.type === 'text') yield { text: reply.text, rows: reply.rows };
    }
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.pool.close();
  }
}
