import type { Coordinator, WatchHandle } from './coord-port.js';
import { coordKeys, parseRecord, PublishedPrimarySchema, type PublishedPrimary } from './topology.js';

/** The primary's address as clients need it. */
export interface PrimaryAddress {
  host: string;
  port: number;
}

/**
 * The primary that the elected manager publishes, as an observable: what
 * `openStore({ kind: 'mysql', primary })` follows so that the platform writes to the new
 * primary after a failover without a restart.
 */
export interface PrimaryFollower {
  current(): PrimaryAddress | undefined;
  onChange(listener: (address: PrimaryAddress) => void): () => void;
  /** The full published record (member name and epoch). */
  record(): PublishedPrimary | undefined;
  close(): Promise<void>;
}

/**
 * Follow `dbmanager/<cluster>/primary` in coord. Resolves once the current value has
 * been read (it may be undefined while no manager has published one).
 */
export async function followPrimary(
  coordinator: Coordinator,
  cluster: string,
  options: { onError?: (error: Error) => void } = {},
): Promise<PrimaryFollower> {
  const key = coordKeys(cluster).primary;
  const listeners = new Set<(address: PrimaryAddress) => void>();
  let record: PublishedPrimary | undefined;
  const apply = (text: string | undefined) => {
    let next: PublishedPrimary | undefined;
    try {
      next = parseRecord(PublishedPrimarySchema, text, 'published primary');
    } catch (error) {
      options.onError?.(error as Error);
      return;
    }
    if (next === undefined) return;
    // A stale write (lower epoch) delivered late by a re-list never moves clients back.
    if (record !== undefined && next.epoch < record.epoch) return;
    const changed = record === undefined || record.host !== next.host || record.port !== next.port;
    record = next;
    if (changed) for (const listener of listeners) listener({ host: next.host, port: next.port });
  };
  const watch: WatchHandle = await coordinator.watchPrefix(key, (event) => {
    if (event.key === key && event.type === 'put') apply(event.value);
  });
  apply(await coordinator.get(key));
  return {
    current: () => (record === undefined ? undefined : { host: record.host, port: record.port }),
    record: () => record,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => watch.close(),
  };
}
