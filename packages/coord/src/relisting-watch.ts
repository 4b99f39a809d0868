import { Sleeper, type Logger } from '@insitu/core';
import type { Engine, EngineEvent, KvEntry } from './engine.js';
import type { WatchEvent, WatchHandle } from './types.js';

/**
 * A prefix watch that also re-lists periodically. Entries remember their last known
 * mod revision and deletions their revision, so a re-list older than a watch event
 * never undoes it.
 */
export class RelistingWatch implements WatchHandle {
  readonly #known = new Map<string, { value: string; revision: number }>();
  readonly #deleted = new Map<string, number>();
  #closed = false;
  #watch: { close(): Promise<void> } | undefined;
  readonly #sleeper = new Sleeper();

  constructor(
    private readonly engine: Engine,
    private readonly prefix: string,
    private readonly onEvent: (event: WatchEvent) => void,
    private readonly relistMs: number,
    private readonly logger: Logger | undefined,
  ) {}

  async start(): Promise<void> {
    this.#watch = await this.engine.watch(this.prefix, (event) => this.#apply(event));
    let entries: KvEntry[];
    try {
      ({ entries } = await this.engine.range(this.prefix));
    } catch (error) {
      await this.close();
      throw error;
    }
    for (const entry of entries) this.#merge(entry, false);
    void this.#relistLoop();
  }

  #apply(event: EngineEvent): void {
    if (this.#closed) return;
    if (event.type === 'put') {
      const known = this.#known.get(event.key);
      if (known && known.revision >= event.revision) return;
      this.#known.set(event.key, { value: event.value ?? '', revision: event.revision });
      this.#deleted.delete(event.key);
      this.#deliver({ type: 'put', key: event.key, value: event.value ?? '' });
    } else {
      const known = this.#known.get(event.key);
      if (known && known.revision > event.revision) return;
      this.#deleted.set(event.key, event.revision);
      if (!known) return;
      this.#known.delete(event.key);
      this.#deliver({ type: 'delete', key: event.key });
    }
  }

  #merge(entry: KvEntry, emit: boolean): void {
    const known = this.#known.get(entry.key);
    if (known && known.revision >= entry.modRevision) return;
    const deletedAt = this.#deleted.get(entry.key);
    if (deletedAt !== undefined && deletedAt > entry.modRevision) return;
    this.#known.set(entry.key, { value: entry.value, revision: entry.modRevision });
    if (emit && known?.value !== entry.value) this.#deliver({ type: 'put', key: entry.key, value: entry.value });
  }

  #deliver(event: WatchEvent): void {
    try {
      this.onEvent(event);
    } catch (error) {
      this.logger?.warn({ err: error, prefix: this.prefix }, 'watch listener threw');
    }
  }

  async relist(): Promise<void> {
    const { entries, revision } = await this.engine.range(this.prefix);
    if (this.#closed) return;
    const present = new Set<string>();
    for (const entry of entries) {
      present.add(entry.key);
      this.#merge(entry, true);
    }
    for (const [key, known] of [...this.#known]) {
      if (present.has(key) || known.revision > revision) continue;
      this.#known.delete(key);
      this.#deleted.set(key, revision);
      this.#deliver({ type: 'delete', key });
    }
    for (const [key, deletedAt] of [...this.#deleted]) if (deletedAt <= revision) this.#deleted.delete(key);
  }

  async #relistLoop(): Promise<void> {
    while (!this.#closed) {
      await this.#sleeper.sleep(this.relistMs);
      if (this.#closed) return;
      try {
        await this.relist();
      } catch (error) {
        this.logger?.debug({ err: error, prefix: this.prefix }, 're-list failed; will retry');
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sleeper.wake();
    await this.#watch?.close();
  }
}
