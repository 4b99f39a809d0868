import { assertValid } from '@insitu/core';
import Type, { type Static } from 'typebox';

/**
 * What the elected manager publishes in coord, under `dbmanager/<cluster>/`:
 *
 * - `topology`: {@link PublishedTopology}, the manager's durable memory (which member is
 *   primary, its epoch, the GTID position it was promoted at, who must pass the
 *   errant-transaction check before rejoining, who is quarantined, the cooldown). A
 *   newly elected manager continues from it.
 * - `primary`: {@link PublishedPrimary}, the one key that clients follow (the platform's
 *   store connects to it).
 * - `managers/<id>`: {@link ManagerRecord} under each manager's lease: how to reach its admin API.
 * - `events/<id>`: the last actions, for the platform's event log.
 *
 * Every value is JSON and validated when read: coord is an edge like any other.
 */

/** The election every manager of a cluster campaigns in. */
export function electionName(cluster: string): string {
  return `dbmanager.${cluster}`;
}

/** Coord keys of one cluster. */
export function coordKeys(cluster: string) {
  const prefix = `dbmanager/${cluster}/`;
  return {
    prefix,
    topology: `${prefix}topology`,
    primary: `${prefix}primary`,
    managers: `${prefix}managers/`,
    manager: (id: string) => `${prefix}managers/${id}`,
    events: `${prefix}events/`,
    event: (id: string) => `${prefix}events/${id}`,
    alerts: `${prefix}alerts`,
  };
}

const PendingRejoinSchema = Type.Object({
  name: Type.String(),
  /** GTID position the cluster's history diverged from this member at (the promotion). */
  base: Type.String(),
  reason: Type.Enum(['former-primary', 'missed-failover'] as const),
  since: Type.Number(),
});

const QuarantineSchema = Type.Object({
  name: Type.String(),
  reason: Type.String(),
  errantGtids: Type.Array(Type.String()),
  since: Type.Number(),
});

/** The manager's durable view of the cluster. */
export const PublishedTopologySchema = Type.Object({
  cluster: Type.String(),
  /** Grows by one with every promotion. */
  epoch: Type.Integer({ minimum: 0 }),
  primary: Type.Union([Type.String(), Type.Null()]),
  /** The primary's GTID position when it was promoted. */
  promotedAt: Type.String(),
  pendingRejoin: Type.Array(PendingRejoinSchema),
  quarantined: Type.Array(QuarantineSchema),
  lastFailoverAt: Type.Optional(Type.Number()),
  /** No automatic failover before this time (epoch ms) unless acknowledged. */
  cooldownUntil: Type.Number(),
  acknowledgedAt: Type.Optional(Type.Number()),
  updatedAt: Type.Number(),
  updatedBy: Type.String(),
});
export type PublishedTopology = Static<typeof PublishedTopologySchema>;
export type PendingRejoin = Static<typeof PendingRejoinSchema>;
export type Quarantine = Static<typeof QuarantineSchema>;

/** Where clients write: the current primary. */
export const PublishedPrimarySchema = Type.Object({
  member: Type.String(),
  host: Type.String(),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  epoch: Type.Integer({ minimum: 0 }),
});
export type PublishedPrimary = Static<typeof PublishedPrimarySchema>;

/** How to reach one manager's admin API. */
export const ManagerRecordSchema = Type.Object({
  id: Type.String(),
  adminUrl: Type.String(),
  startedAt: Type.Number(),
});
export type ManagerRecord = Static<typeof ManagerRecordSchema>;

const SeveritySchema = Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')]);

/**
 * `dbmanager/<cluster>/alerts`: the elected manager's active alerts (`Notifier.snapshot()`),
 * published (fenced) so that the next elected manager takes them over: an alert announced
 * by one leader is neither announced again nor left unresolved by the next.
 */
export const PublishedAlertsSchema = Type.Object({
  manager: Type.String(),
  at: Type.Number(),
  active: Type.Array(
    Type.Object({
      item: Type.Object({
        key: Type.String(),
        cluster: Type.String(),
        condition: Type.String(),
        subject: Type.String(),
        severity: SeveritySchema,
        state: Type.Union([
          Type.Literal('firing'),
          Type.Literal('repeat'),
          Type.Literal('resolved'),
          Type.Literal('notice'),
        ]),
        summary: Type.String(),
        details: Type.Record(Type.String(), Type.Unknown()),
        firstSeenAt: Type.String(),
        lastSeenAt: Type.String(),
        count: Type.Integer({ minimum: 0 }),
        resolvedAt: Type.Optional(Type.String()),
      }),
      notifiedAt: Type.Optional(Type.Number()),
    }),
  ),
});
export type PublishedAlerts = Static<typeof PublishedAlertsSchema>;

/** Parse and validate a JSON value read from coord. */
export function parseRecord<S extends Type.TSchema>(
  schema: S,
  text: string | undefined,
  what: string,
): Static<S> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${what} in coord is not JSON`);
  }
  return assertValid(schema, value, { what });
}

/** A topology before anything is known. */
export function emptyTopology(cluster: string, by: string, now: number): PublishedTopology {
  return {
    cluster,
    epoch: 0,
    primary: null,
    promotedAt: '',
    pendingRejoin: [],
    quarantined: [],
    cooldownUntil: 0,
    updatedAt: now,
    updatedBy: by,
  };
}
