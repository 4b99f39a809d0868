import { newId, type Logger } from '@insitu/core';
import type { Coordinator } from '@insitu/coord';
import { KEYS } from './keys.js';
import type { OperatorEvent } from './records.js';

const MAX_BUFFER = 2000;

/**
 * The operator's events: each one is logged at once and written to coord under
 * `operator/events/<id>` (ids sort by time). While coord cannot be reached they wait in a
 * bounded buffer (the oldest dropped first, and counted) and are written when it answers
 * again; the leader copies them into the platform database and trims coord.
 */
export class EventLog {
  #pending: OperatorEvent[] = [];
  #dropped = 0;
  #flushing: Promise<void> | undefined;
  #listeners = new Set<(event: OperatorEvent) => void>();

  constructor(
    private readonly coordinator: Coordinator,
    private readonly node: string,
    private readonly logger: Logger,
  ) {}

  /** Record an event: logged now, written to coord as soon as it can be. Returns it. */
  record(input: Omit<OperatorEvent, 'id' | 'at' | 'node'> & { at?: string }): OperatorEvent {
    const event: OperatorEvent = {
      id: newId('evt'),
      at: input.at ?? new Date().toISOString(),
      node: this.node,
      ...input,
    };
    this.logger.info(
      { event: event.type, service: event.service, subject: event.subject, details: event.details },
      event.reason,
    );
    this.#pending.push(event);
    if (this.#pending.length > MAX_BUFFER) {
      this.#pending.shift();
      this.#dropped += 1;
    }
    for (const listener of this.#listeners) listener(event);
    void this.flush();
    return event;
  }

  /** Called with every event this node records (tests, the leader's own view). */
  onEvent(listener: (event: OperatorEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Write what is pending; resolves when done or when coord failed (the rest waits). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const event = this.#pending[0] as OperatorEvent;
      try {
        await this.coordinator.put(`${KEYS.events}${event.id}`, JSON.stringify(event));
      } catch (error) {
        this.logger.debug({ err: (error as Error).message, pending: this.#pending.length }, 'events wait for coord');
        return;
      }
      this.#pending.shift();
    }
    if (this.#dropped > 0) {
      const dropped = this.#dropped;
      this.#dropped = 0;
      this.record({
        type: 'events-dropped',
        reason: `${dropped} events were dropped while coord could not be reached`,
      });
    }
  }

  /** Events not yet in coord. */
  get pending(): number {
    return this.#pending.length;
  }
}
