/**
 * @insitu/operator — the DaaS-Operator: `insitu node` on each management machine runs
 * this node's platform services (server, dbmanager, optionally etcd and MariaDB) as
 * supervised children, probes and restarts them on a recovery ladder, and takes part in a
 * fenced leader election; the leader places `count: N` services, moves them off lost or
 * failed nodes, runs deep probes and restarts, and alerts with Alertmanager's semantics.
 *
 * Start with `new OperatorNode({ config: loadNodeConfig({ file }), coordinator, logger }).start()`;
 * the desired state is a cluster spec stored in coord with {@link applySpec}.
 */
export { OperatorNode } from './operator-node.js';
export type { OperatorNodeOptions } from './operator-node.js';
export { Leader } from './leader.js';
export type { LeaderOptions } from './leader.js';
export { ServiceSupervisor } from './supervisor.js';
export type { SupervisorOptions, EventSink } from './supervisor.js';
export { RestartLadder } from './restart-ladder.js';
export type { LadderPolicy, LadderDecision } from './restart-ladder.js';
export { NodeConfigSchema, ServiceCommandSchema, loadNodeConfig } from './node-config.js';
export type { NodeConfig, ServiceCommand } from './node-config.js';
export {
  ClusterSpecSchema,
  ServiceSpecSchema,
  parseClusterSpec,
  validateClusterSpec,
  diffSpecs,
  formatChange,
  specDigest,
  isPlaced,
} from './cluster-spec.js';
export type { ClusterSpec, ServiceSpec, Placement, StoredSpec, SpecChange } from './cluster-spec.js';
export { place, eligible } from './placement.js';
export type { NodeView, PlacementDecision } from './placement.js';
export { OperatorAlerts, ALERT_CLUSTER } from './alerts.js';
export type { AlertCondition, PublishedAlerts } from './alerts.js';
export { parseMatchers, globMatch, silenceMatches, parseDuration, ALERT_LABELS } from './silences.js';
export {
  applySpec,
  clusterStatus,
  listEvents,
  eventMatches,
  requestRestart,
  addSilence,
  listAlerts,
} from './operator-client.js';
export type { ApplyResult, ClusterStatus, EventFilter } from './operator-client.js';
export { EventLog } from './event-log.js';
export { KEYS } from './keys.js';
export { httpProbe, tcpProbe } from './probe.js';
export type { ProbeResult } from './probe.js';
export { createServerDeepProber } from './deep-probe.js';
export type { DeepProber, ProbeTarget, ServerProbeAnswer } from './deep-probe.js';
export { systemdUnit } from './systemd.js';
export type { SystemdUnitOptions } from './systemd.js';
export { parseRecord } from './records.js';
export type {
  NodeRecord,
  ServiceStatus,
  ServiceState,
  ProbeStatus,
  ExitStatus,
  PlacementRecord,
  RestartRequest,
  CommandRecord,
  OperatorEvent,
  Silence,
} from './records.js';
