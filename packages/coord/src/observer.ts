import { EventEmitter } from 'node:events';
import type { GenericCoordinator } from './coordinator.js';
import { lowest } from './election.js';
import type { KvEntry } from './engine.js';
import { RelistingWatch } from './relisting-watch.js';
import type { LeaderObserver } from './types.js';

export class Observer extends EventEmitter implements LeaderObserver {
  #leader: string | undefined;
  #watch: RelistingWatch | undefined;
  readonly #entries = new Map<string, KvEntry>();

  constructor(
    private readonly owner: GenericCoordinator,
    private readonly prefix: string,
  ) {
    super();
  }

  async start(relistMs: number): Promise<void> {
    const watch = new RelistingWatch(
      this.owner.engine,
      this.prefix,
      () => void this.#refresh(),
      relistMs,
      this.owner.logger,
    );
    this.#watch = watch;
    await watch.start();
    await this.#refresh();
  }

  async #refresh(): Promise<void> {
    let entries: KvEntry[];
    try {
      ({ entries } = await this.owner.engine.range(this.prefix));
    } catch (error) {
      this.owner.logger?.debug({ err: error }, 'observer refresh failed; the periodic re-list retries');
      return;
    }
    this.#entries.clear();
    for (const entry of entries) this.#entries.set(entry.key, entry);
    const leader = lowest(entries)?.value;
    if (leader !== this.#leader) {
      this.#leader = leader;
      this.emit('change', leader);
    }
  }

  leader(): string | undefined {
    return this.#leader;
  }

  async close(): Promise<void> {
    await this.#watch?.close();
    this.owner.forgetObserver(this);
  }
}
