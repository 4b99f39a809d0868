/**
 * The dbmanagers of a cluster as seen through their records in coord
 * (`dbmanager/<cluster>/managers/<id>`, each under its manager's lease): a record that
 * disappears is a manager that stopped or lost its lease. `lost()` names the managers
 * missing since the most this manager has seen alive at once, so that the elected one can
 * say the pair is down to one (`manager-lost`).
 */
export class ManagerPeers {
  readonly #alive = new Set<string>();
  readonly #gone: string[] = [];
  #peak = 0;

  /** Start from a listing of the managers prefix. */
  seed(records: ReadonlyMap<string, string>, prefix: string): void {
    for (const key of records.keys()) this.apply(key.startsWith(prefix) ? key.slice(prefix.length) : key, 'put');
  }

  /** A watch event on one manager's record. */
  apply(id: string, type: 'put' | 'delete'): void {
    if (id === '') return;
    if (type === 'put') {
      this.#alive.add(id);
      const index = this.#gone.indexOf(id);
      if (index !== -1) this.#gone.splice(index, 1);
      this.#peak = Math.max(this.#peak, this.#alive.size);
    } else if (this.#alive.delete(id)) {
      this.#gone.push(id);
    }
  }

  alive(): string[] {
    return [...this.#alive].sort();
  }

  peak(): number {
    return this.#peak;
  }

  /** Managers that went away while fewer are alive than the peak; empty once as many run again. */
  lost(): string[] {
    if (this.#alive.size >= this.#peak) {
      this.#gone.length = 0;
      return [];
    }
    return this.#gone.slice(-(this.#peak - this.#alive.size));
  }
}
