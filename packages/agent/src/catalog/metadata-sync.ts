import { readFile, rename, writeFile } from 'node:fs/promises';
import { InsituError, type DatasetInput, type Logger } from '@insitu/core';
import type { DatasetMeta } from '../sources/data-source.js';
import type { DatasetRegistry, RefreshReport } from '../sources/dataset-registry.js';
import type { PlatformClient } from '../identity/platform-client.js';

/** What one sync did. */
export interface SyncReport {
  at: string;
  published: string[];
  removed: string[];
  /** Datasets this agent no longer serves but another agent of the provider published since; left alone. */
  released: string[];
  errors: Array<{ source?: string; dataset?: string; code: string; message: string }>;
}

/** The metadata the catalog receives for one dataset: never a row. */
export function datasetInput(meta: DatasetMeta, syncedAt: string): DatasetInput {
  return {
    description: meta.description,
    tags: meta.tags,
    sourceKind: meta.sourceKind,
    visibility: meta.visibility,
    columns: meta.columns.map((c) => ({
      name: c.name,
      type: c.type,
      ...(c.sourceType !== undefined ? { sourceType: c.sourceType.slice(0, 64) } : {}),
      nullable: c.nullable,
      ...(c.description !== undefined ? { description: c.description } : {}),
    })),
    rowCount: meta.rowCount,
    syncedAt,
    policy: meta.policy ?? {},
  };
}

/** Datasets this agent published, with the `syncedAt` it sent last: `{ name: iso }`. */
type Published = Record<string, string>;

/**
 * Pushes the metadata of the agent's datasets to the catalog and removes what it
 * published before and no longer serves.
 *
 * Several agents of one provider share its catalog. An agent removes a dataset only if
 * it published it itself (it keeps the list in its data directory) and no other agent has
 * published it since: the catalog's `syncedAt` is still the one this agent sent. Every
 * agent republishes its datasets at every sync, so a dataset another agent still serves
 * comes back within one interval even in the rare race.
 */
export class MetadataSync {
  private running: Promise<SyncReport> | undefined;
  private queued: Promise<SyncReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  last: SyncReport | undefined;

  constructor(
    private readonly options: {
      registry: DatasetRegistry;
      client: PlatformClient;
      providerId: string;
      stateFile: string;
      intervalMs: number;
      logger: Logger;
      onSync?: (report: SyncReport) => void;
    },
  ) {}

  /** Sync now, then every interval. */
  start(): Promise<SyncReport> {
    const first = this.syncNow();
    this.timer = setInterval(() => {
      this.syncNow().catch(() => undefined);
    }, this.options.intervalMs);
    this.timer.unref();
    return first;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Re-introspect every source and push the metadata; calls during a sync share one more sync after it. */
  syncNow(): Promise<SyncReport> {
    if (this.running) {
      // Calls during a sync share one more sync after it: they may carry news it missed.
      this.queued ??= this.running.then(
        () => this.startQueued(),
        () => this.startQueued(),
      );
      return this.queued;
    }
    this.running = this.sync().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private startQueued(): Promise<SyncReport> {
    this.queued = undefined;
    return this.syncNow();
  }

  private async loadPublished(): Promise<Published> {
    try {
      return JSON.parse(await readFile(this.options.stateFile, 'utf8')) as Published;
    } catch {
      return {};
    }
  }

  private async savePublished(published: Published): Promise<void> {
    const temp = `${this.options.stateFile}.tmp`;
    await writeFile(temp, `${JSON.stringify(published, null, 2)}\n`, { mode: 0o600 });
    await rename(temp, this.options.stateFile);
  }

  private async sync(): Promise<SyncReport> {
    const { registry, client, providerId, logger } = this.options;
    const at = new Date().toISOString();
    const report: SyncReport = { at, published: [], removed: [], released: [], errors: [] };
    const refreshed: RefreshReport = await registry.refresh();
    for (const source of refreshed.sources)
      if (source.error) report.errors.push({ source: source.name, ...source.error });
    const published = await this.loadPublished();
    for (const meta of refreshed.datasets) {
      try {
        await client.putDataset(providerId, meta.name, datasetInput(meta, at));
        published[meta.name] = at;
        report.published.push(meta.name);
      } catch (error) {
        const e = error instanceof InsituError ? error : new InsituError('INSITU_REMOTE', (error as Error).message);
        report.errors.push({ dataset: meta.name, code: e.code, message: e.message });
      }
    }
    const current = new Set(refreshed.datasets.map((d) => d.name));
    // A source that failed keeps its datasets in the registry, so they are in `current` too.
    const gone = Object.keys(published).filter((name) => !current.has(name));
    if (gone.length > 0) {
      try {
        const catalog = new Map((await client.listDatasets(providerId)).map((d) => [d.name, d]));
        for (const name of gone) {
          const entry = catalog.get(name);
          const mine = entry !== undefined && Date.parse(entry.syncedAt) === Date.parse(published[name] as string);
          if (mine && (await client.deleteDataset(providerId, name))) report.removed.push(name);
          else if (entry) report.released.push(name);
          delete published[name];
        }
      } catch (error) {
        const e = error instanceof InsituError ? error : new InsituError('INSITU_REMOTE', (error as Error).message);
        report.errors.push({ code: e.code, message: e.message });
      }
    }
    await this.savePublished(published);
    this.last = report;
    logger.info(
      {
        published: report.published.length,
        removed: report.removed,
        released: report.released,
        errors: report.errors.length,
      },
      'metadata synced',
    );
    this.options.onSync?.(report);
    return report;
  }
}
