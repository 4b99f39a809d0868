import type { Column } from '@insitu/core';
import type { SourceConfig } from '../config/agent-config.js';
import type { DatasetMeta } from './data-source.js';
import { dataSourceUnavailable } from '../errors.js';

/** The tables (or file stems) of a source that the config selects; a table named in the config must exist. */
export function selectTables(found: readonly string[], config: Readonly<SourceConfig>): string[] {
  if (!config.tables) return [...found];
  const missing = config.tables.filter((t) => !found.includes(t));
  if (missing.length > 0) {
    throw dataSourceUnavailable(
      config.name,
      `${missing.map((t) => JSON.stringify(t)).join(', ')} not found (found: ${found.join(', ') || 'nothing'})`,
    );
  }
  return found.filter((t) => config.tables?.includes(t));
}

/** Dataset metadata for one table or file, with the provider's names, descriptions and tags from the config applied. */
export function describeDataset(
  config: Readonly<SourceConfig>,
  key: string,
  location: string,
  columns: Column[],
  rowCount: number | null,
): DatasetMeta {
  const override = config.datasets?.[key];
  return {
    name: override?.name ?? key,
    source: config.name,
    sourceKind: config.kind,
    location,
    columns: columns.map((c) => {
      const description = override?.columns?.[c.name]?.description;
      return description ? { ...c, description } : c;
    }),
    rowCount,
    description: override?.description ?? '',
    tags: override?.tags ?? config.defaults?.tags ?? [],
    visibility: override?.visibility ?? config.defaults?.visibility ?? 'public',
    ...((override?.policy ?? config.defaults?.policy) ? { policy: override?.policy ?? config.defaults?.policy } : {}),
  };
}
