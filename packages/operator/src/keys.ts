/**
 * The operator's keys in coord (under the coordinator's namespace, `insitu/` by default).
 * Values are JSON. Keys marked *leased* vanish with their writer's lease; *fenced* ones are
 * written only by the leader, in an etcd transaction on its election key.
 */
export const KEYS = {
  /** The applied cluster spec ({@link StoredSpec}); written by `insitu operator apply`. */
  spec: 'operator/spec',
  /** `operator/members/<node>`: every node that ever joined (until removed); a member without a live record is lost. */
  members: 'operator/members/',
  /** `operator/nodes/<node>`: the node's record (leased: vanishes when its lease lapses). */
  nodes: 'operator/nodes/',
  /** `operator/placements/<service>`: nodes of a placed service (fenced). */
  placements: 'operator/placements/',
  /** `operator/restarts/<node>/<service>`: a restart asked of one node (fenced, or by `insitu operator restart`). */
  restarts: 'operator/restarts/',
  /** `operator/commands/<id>`: a command from `insitu operator restart` and its progress (progress fenced). */
  commands: 'operator/commands/',
  /** `operator/events/<id>`: every operator action, newest last (ids sort by time). */
  events: 'operator/events/',
  /** The leader's alert state: active alerts and when each was announced (fenced). */
  alerts: 'operator/alerts',
  /** `operator/silences/<id>`: silences with their expiry. */
  silences: 'operator/silences/',
  /** Events already copied into the platform database (fenced): the id of the last one. */
  eventsCursor: 'operator/events-cursor',
  /** Name of the leader election. */
  election: 'operator',
} as const;

export const nodeKey = (node: string): string => `${KEYS.nodes}${node}`;
export const memberKey = (node: string): string => `${KEYS.members}${node}`;
export const placementKey = (service: string): string => `${KEYS.placements}${service}`;
export const restartKey = (node: string, service: string): string => `${KEYS.restarts}${node}/${service}`;
