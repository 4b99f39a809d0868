import { DatasetNameSchema, InsituError, type Logger } from '@insitu/core';
import Value from 'typebox/value';
import type { DataSource, DatasetMeta } from './data-source.js';
import { dataSourceUnavailable } from '../errors.js';

/** What one refresh found: datasets, and per source either its dataset names or the error that kept it out. */
export interface RefreshReport {
  datasets: DatasetMeta[];
  sources: Array<{ name: string; kind: string; datasets: string[]; error?: { code: string; message: string } }>;
}

/**
 * The agent's datasets: every source's introspected tables and files, by catalog name.
 * A source that fails to introspect keeps its previous datasets (so a database restart
 * does not make them vanish from the catalog) and is reported.
 */
export class DatasetRegistry {
  private byName = new Map<string, { meta: DatasetMeta; source: DataSource }>();
  private readonly lastGood = new Map<string, DatasetMeta[]>();

  constructor(
    readonly sources: readonly DataSource[],
    private readonly logger?: Logger,
  ) {}

  /** Introspect every source again. */
  async refresh(): Promise<RefreshReport> {
    const next = new Map<string, { meta: DatasetMeta; source: DataSource }>();
    const report: RefreshReport = { datasets: [], sources: [] };
    for (const source of this.sources) {
      let found: DatasetMeta[];
      let failure: { code: string; message: string } | undefined;
      try {
        found = await source.introspect();
        this.lastGood.set(source.name, found);
      } catch (error) {
        const e =
          error instanceof InsituError ? error : dataSourceUnavailable(undefined, (error as Error).message, error);
        failure = { code: e.code, message: e.message };
        this.logger?.warn({ source: source.name, err: e.message }, 'cannot introspect source; keeping what it had');
        found = this.lastGood.get(source.name) ?? [];
      }
      const names: string[] = [];
      for (const meta of found) {
        if (!Value.Check(DatasetNameSchema, meta.name)) {
          const message = `"${String(meta.name)}" is not a valid dataset name; rename it with datasets.<table>.name in the config`;
          failure ??= { code: 'INSITU_CONFIG_INVALID', message };
          this.logger?.warn({ source: source.name, dataset: meta.name }, message);
          continue;
        }
        const clash = next.get(meta.name);
        if (clash) {
          const message = `dataset ${meta.name} is in sources ${clash.source.name} and ${source.name}; rename one with datasets.<table>.name`;
          failure ??= { code: 'INSITU_CONFIG_INVALID', message };
          this.logger?.warn({ source: source.name, dataset: meta.name }, message);
          continue;
        }
        next.set(meta.name, { meta, source });
        names.push(meta.name);
        report.datasets.push(meta);
      }
      report.sources.push({
        name: source.name,
        kind: source.kind,
        datasets: names,
        ...(failure ? { error: failure } : {}),
      });
    }
    this.byName = next;
    return report;
  }

  get(name: string): { meta: DatasetMeta; source: DataSource } | undefined {
    return this.byName.get(name);
  }

  list(): DatasetMeta[] {
    return [...this.byName.values()].map((d) => d.meta);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.sources.map((s) => s.close()));
  }
}
