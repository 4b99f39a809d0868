import { EventEmitter } from 'node:events';
import { InsituError, Sleeper } from '@insitu/core';
import type { Engine } from './engine.js';
import type { Lease } from './types.js';

/**
 * A lease kept alive by its own loop: a keep-alive every quarter TTL, retried quickly on
 * failure. Lost when the store says the lease is gone or when no keep-alive sent within
 * the last TTL succeeded (by our clock, counted from when the keep-alive was *sent*, so
 * the store's copy cannot outlive our belief).
 */
export class ManagedLease extends EventEmitter implements Lease {
  readonly id: string;
  readonly ttlMs: number;
  /** When the last successful keep-alive (or the grant) was sent. */
  lastRenewedAt: number;
  #alive = true;
  #deadline: NodeJS.Timeout | undefined;
  readonly #sleeper = new Sleeper();
  readonly #engine: Engine;
  readonly #onDone: (lease: ManagedLease) => void;

  constructor(engine: Engine, id: string, ttlMs: number, grantedAt: number, onDone: (lease: ManagedLease) => void) {
    super();
    this.#engine = engine;
    this.id = id;
    this.ttlMs = ttlMs;
    this.lastRenewedAt = grantedAt;
    this.#onDone = onDone;
    this.#arm();
    void this.#loop();
  }

  isAlive(): boolean {
    return this.#alive;
  }

  #arm(): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(
      () => {
        this.lose(
          new InsituError(
            'INSITU_COORD_LEASE_LOST',
            `no keep-alive of lease ${this.id} succeeded within its TTL (${this.ttlMs} ms)`,
          ),
        );
      },
      Math.max(1, this.lastRenewedAt + this.ttlMs - Date.now()),
    );
    this.#deadline.unref();
  }

  async #loop(): Promise<void> {
    await this.#sleeper.sleep(this.ttlMs / 4);
    while (this.#alive) {
      const sentAt = Date.now();
      let retryIn = this.ttlMs / 4;
      try {
        const remaining = await this.#engine.leaseKeepAlive(this.id);
        if (!this.#alive) return;
        if (remaining <= 0) {
          this.lose(new InsituError('INSITU_COORD_LEASE_LOST', `lease ${this.id} expired in the store`));
          return;
        }
        if (sentAt > this.lastRenewedAt) {
          this.lastRenewedAt = sentAt;
          this.#arm();
          this.emit('renewed', sentAt);
        }
      } catch {
        retryIn = Math.min(200, this.ttlMs / 8);
      }
      await this.#sleeper.sleep(retryIn);
    }
  }

  /** Stop keeping it alive (it expires on its own in the store). */
  release(): void {
    if (!this.#alive) return;
    this.#alive = false;
    clearTimeout(this.#deadline);
    this.#sleeper.wake();
    this.#onDone(this);
  }

  lose(reason: Error): void {
    if (!this.#alive) return;
    this.release();
    this.emit('lost', reason);
    // Whatever the store still holds under it must go, so that others need not wait.
    this.#engine.leaseRevoke(this.id).catch(() => undefined);
  }

  async revoke(): Promise<void> {
    const wasAlive = this.#alive;
    this.release();
    if (wasAlive) await this.#engine.leaseRevoke(this.id);
  }
}
