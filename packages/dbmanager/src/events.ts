import { newId } from '@insitu/core';
import Type, { type Static } from 'typebox';

/** One thing the manager did or saw, as shown by `insitu db status` and the platform's event log. */
export const ManagerEventSchema = Type.Object({
  id: Type.String(),
  at: Type.String({ description: 'ISO 8601' }),
  cluster: Type.String(),
  /** e.g. `failover`, `switchover`, `rejoin`, `quarantine`, `fence`, `replication-restart`, `member-restart`, `failover-blocked`. */
  type: Type.String(),
  severity: Type.Enum(['info', 'warning', 'critical'] as const),
  member: Type.Optional(Type.String()),
  message: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  /** The manager that recorded it. */
  manager: Type.String(),
});
export type ManagerEvent = Static<typeof ManagerEventSchema>;

/** The last `keep` events, newest last. */
export class EventLog {
  readonly #events: ManagerEvent[] = [];

  constructor(
    private readonly cluster: string,
    private readonly manager: string,
    private readonly keep: number,
    private readonly now: () => number,
  ) {}

  add(
    input: Omit<ManagerEvent, 'id' | 'at' | 'cluster' | 'manager' | 'details'> & { details?: Record<string, unknown> },
  ): ManagerEvent {
    const event: ManagerEvent = {
      id: newId('evt'),
      at: new Date(this.now()).toISOString(),
      cluster: this.cluster,
      manager: this.manager,
      type: input.type,
      severity: input.severity,
      ...(input.member === undefined ? {} : { member: input.member }),
      message: input.message,
      details: { ...input.details },
    };
    this.#events.push(event);
    if (this.#events.length > this.keep) this.#events.splice(0, this.#events.length - this.keep);
    return event;
  }

  /** Newest last; at most `limit`. */
  list(limit = this.keep): ManagerEvent[] {
    return this.#events.slice(-limit);
  }
}
