import type { AlertItem } from '@insitu/notify';
import { replicatesFrom } from '../decide.js';
import type { ManagerEvent } from '../events.js';
import type { SemiSyncStatus } from '../probe.js';
import type { PublishedTopology } from '../topology.js';
import { iso, type ManagerContext } from './context.js';
import { leaderId } from './leadership.js';

/** A member as `insitu db status` shows it. */
export interface MemberStatus {
  name: string;
  host: string;
  port: number;
  role: 'primary' | 'replica' | 'rejoining' | 'quarantined' | 'down' | 'unknown';
  reachable: boolean;
  readOnly: boolean | null;
  serverId: number | null;
  version: string | null;
  gtid: { binlog: string | null; slave: string | null; current: string | null; received: string | null };
  replication: {
    source: string;
    io: string;
    sql: string;
    lagSeconds: number | null;
    lastIoError: string;
    lastSqlError: string;
  } | null;
  semiSync: SemiSyncStatus | null;
  neverPromote: boolean;
  priority: number;
  lastProbeAt: string | null;
  lastError: string | null;
  consecutiveFailures: number;
  /** Probes kept in the history and how many of them failed. */
  history: { probes: number; failures: number; lastFailureAt: string | null };
}

/** What `insitu db status` shows. */
export interface ClusterStatus {
  cluster: string;
  manager: { id: string; leader: boolean; leaderId: string | null };
  epoch: number;
  primary: string | null;
  promotedAt: string;
  cooldown: { active: boolean; until: string | null; lastFailoverAt: string | null };
  quarantined: PublishedTopology['quarantined'];
  pendingRejoin: PublishedTopology['pendingRejoin'];
  members: MemberStatus[];
  alerts: AlertItem[];
  events: ManagerEvent[];
}

/** Topology, roles, GTID positions, lag, alerts and the last actions. */
export function clusterStatus(ctx: ManagerContext): ClusterStatus {
  const topology = ctx.topology;
  const primary = topology.primary === null ? undefined : ctx.states.get(topology.primary);
  const members = [...ctx.states.values()].map((state): MemberStatus => {
    const probe = state.probe;
    const ok = probe?.ok === true;
    const replication = ok ? probe.replication : undefined;
    const name = state.config.name;
    let role: MemberStatus['role'] = 'unknown';
    if (name === topology.primary) role = 'primary';
    else if (topology.quarantined.some((q) => q.name === name)) role = 'quarantined';
    else if (!ok) role = 'down';
    else if (topology.pendingRejoin.some((p) => p.name === name)) role = 'rejoining';
    else if (primary !== undefined && replicatesFrom(ctx.view(state), primary.config)) role = 'replica';
    const failures = state.history.filter((h) => !h.ok);
    return {
      name,
      host: state.config.host,
      port: state.config.port,
      role,
      reachable: ok,
      readOnly: ok ? (probe.readOnly ?? null) : null,
      serverId: ok ? (probe.serverId ?? null) : null,
      version: ok ? (probe.version ?? null) : null,
      gtid: {
        binlog: ok ? (probe.gtidBinlogPos ?? null) : null,
        slave: ok ? (probe.gtidSlavePos ?? null) : null,
        current: ok ? (probe.gtidCurrentPos ?? null) : null,
        received: replication?.gtidIoPos ?? null,
      },
      replication:
        replication === undefined
          ? null
          : {
              source: `${replication.masterHost}:${replication.masterPort}`,
              io: replication.ioRunning,
              sql: replication.sqlRunning,
              lagSeconds: replication.secondsBehindMaster,
              lastIoError: replication.lastIoError,
              lastSqlError: replication.lastSqlError,
            },
      semiSync: ok ? (probe.semiSync ?? null) : null,
      neverPromote: state.config.neverPromote,
      priority: state.config.priority,
      lastProbeAt: iso(probe?.at),
      lastError: probe?.error?.message ?? null,
      consecutiveFailures: state.consecutiveFailures,
      history: { probes: state.history.length, failures: failures.length, lastFailureAt: iso(failures.at(-1)?.at) },
    };
  });
  return {
    cluster: ctx.config.cluster,
    manager: { id: ctx.id, leader: ctx.isLeading(), leaderId: leaderId(ctx) ?? null },
    epoch: topology.epoch,
    primary: topology.primary,
    promotedAt: topology.promotedAt,
    cooldown: {
      active: ctx.now() < topology.cooldownUntil,
      until: topology.cooldownUntil > 0 ? iso(topology.cooldownUntil) : null,
      lastFailoverAt: iso(topology.lastFailoverAt),
    },
    quarantined: topology.quarantined,
    pendingRejoin: topology.pendingRejoin,
    members,
    alerts: ctx.notifier.active().filter((alert) => alert.cluster === ctx.config.cluster),
    events: ctx.events.list(30),
  };
}
