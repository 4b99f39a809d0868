import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '@insitu/core';
import type { SourceConfig } from '../config/agent-config.js';

/**
 * Watch the files of SQLite and CSV sources and call `onChange` (debounced) when one
 * changes, so the catalog follows a new CSV file or a new table without waiting for the
 * timer. Database servers are not watched: the timer covers them. Returns a stop function.
 */
export function watchSources(
  sources: readonly SourceConfig[],
  onChange: () => void,
  options: { debounceMs?: number; logger?: Logger } = {},
): () => void {
  const debounceMs = options.debounceMs ?? 2000;
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const source of sources) {
    const path = source.kind === 'sqlite' ? source.path : source.kind === 'csv' ? source.files : undefined;
    if (!path) continue;
    const dir = dirname(path);
    const pattern = basename(path);
    const matches =
      source.kind === 'csv' && /[*?]/.test(pattern)
        ? new RegExp(
            `^${pattern
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '.*')
              .replace(/\?/g, '.')}$`,
          )
        : undefined;
    try {
      const watcher = watch(dir, { persistent: false }, (_event, file) => {
        const name = file?.toString() ?? '';
        // SQLite writes through its -wal and -journal files too.
        if (matches ? matches.test(name) : name === pattern || name.startsWith(`${pattern}-`)) fire();
      });
      watcher.on('error', () => undefined);
      watchers.push(watcher);
    } catch (error) {
      options.logger?.warn(
        { source: source.name, err: (error as Error).message },
        'cannot watch the source for changes; the sync timer still covers it',
      );
    }
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
