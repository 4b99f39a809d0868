import { hostname } from 'node:os';
import { Counter, Gauge, createLogger, createMetricsRegistry, type Logger, type Registry } from '@insitu/core';
import { createNotifier, type Notifier } from '@insitu/notify';
import type { ReplicationSource } from '../actions.js';
import type { DbManagerConfig, MemberConfig, ResolvedSecrets } from '../config.js';
import type { Coordinator, LeaderObserver, Leadership, Lease } from '../coord-port.js';
import { replicationAddress, type MemberView } from '../decide.js';
import { configInvalid, notLeader } from '../errors.js';
import { EventLog } from '../events.js';
import { ManagerPeers } from '../manager-peers.js';
import { connectMember, withMember, type MemberConnection } from '../sql.js';
import { coordKeys, emptyTopology, type PublishedTopology } from '../topology.js';
import { memberView, newMemberState, type MemberState } from './member-state.js';

/** What the context is built from (the manager's options). */
export interface ManagerContextOptions {
  config: Readonly<DbManagerConfig>;
  secrets: ResolvedSecrets;
  coordinator: Coordinator;
  logger?: Logger;
  notifier?: Notifier;
  registry?: Registry;
  now?: () => number;
  adminUrl?: string;
  /** Emits the manager's events (`event`, `elected`, `deposed`). */
  emit: (name: string, ...args: unknown[]) => void;
}

const SPARE_USERS_BASE = ['system user', 'event_scheduler'];

/** A time as ISO 8601, null for none. */
export function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/**
 * Everything the manager's concerns share: its config and secrets, each member's state,
 * the published topology, leadership, the event log, notifier and metrics, and the few
 * primitives every concern uses (the leadership fence, admin connections, the replication
 * source). The concerns (`leadership.ts`, `failover.ts`, `member-repair.ts`, ...) are
 * functions of it; `../manager.ts` orchestrates them.
 */
export class ManagerContext {
  readonly id: string;
  readonly config: Readonly<DbManagerConfig>;
  readonly secrets: ResolvedSecrets;
  readonly coord: Coordinator;
  readonly logger: Logger;
  readonly notifier: Notifier;
  readonly ownsNotifier: boolean;
  readonly registry: Registry;
  readonly now: () => number;
  readonly keys: ReturnType<typeof coordKeys>;
  readonly states: Map<string, MemberState>;
  readonly events: EventLog;
  readonly abort = new AbortController();
  readonly peers = new ManagerPeers();
  readonly emit: (name: string, ...args: unknown[]) => void;
  readonly metrics: {
    leader: Gauge;
    up: Gauge<'member'>;
    lag: Gauge<'member'>;
    actions: Counter<'type'>;
  };
  adminUrl: string | undefined;
  /** The published topology this manager works from (the leader's, read from coord, or its own). */
  topology: PublishedTopology;
  leadership: Leadership | undefined;
  elected = false;
  observer: LeaderObserver | undefined;
  lease: Lease | undefined;
  /** The primary looked unwell at the last evaluation: probe at `detection.suspectIntervalMs`. */
  suspect = false;
  publishedEventIds: string[] = [];
  /** After a failover that failed part-way: attempts so far and when the next may start. */
  failoverRetry = { attempts: 0, nextAt: 0 };
  /** The alerts last published under `dbmanager/<cluster>/alerts` (JSON), to publish only changes. */
  publishedAlerts: string | undefined;
  /** The alerts' publishes, one after the other (see `publishing.ts`). */
  alertsPublishing: Promise<void> = Promise.resolve();
  /** The primary the manager switched to asynchronous (no replica receiving), and since when none received. */
  semiSyncAlone: { primary: string; since: number; async: boolean } | undefined;

  constructor(options: ManagerContextOptions) {
    this.config = options.config;
    this.secrets = options.secrets;
    this.coord = options.coordinator;
    this.now = options.now ?? Date.now;
    this.emit = options.emit;
    this.id =
      options.config.managerId ??
      `${hostname()
        .replace(/[^a-zA-Z0-9._-]/g, '-')
        .slice(0, 40)}-${process.pid}`;
    this.logger = (options.logger ?? createLogger({ name: 'dbmanager', level: options.config.log.level })).child({
      manager: this.id,
      cluster: options.config.cluster,
    });
    this.registry = options.registry ?? createMetricsRegistry({ component: 'dbmanager' });
    this.ownsNotifier = options.notifier === undefined;
    this.notifier =
      options.notifier ?? createNotifier(options.config.notify, { logger: this.logger, registry: this.registry });
    this.keys = coordKeys(options.config.cluster);
    this.adminUrl = options.adminUrl;
    this.topology = emptyTopology(options.config.cluster, this.id, this.now());
    this.events = new EventLog(options.config.cluster, this.id, options.config.events.keep, this.now);
    this.states = new Map(
      options.config.members.map((member) => {
        const login = options.secrets.members.get(member.name);
        if (login === undefined) throw configInvalid(`no login for member ${member.name}`);
        return [member.name, newMemberState(member, login)];
      }),
    );
    this.metrics = {
      leader: new Gauge({
        name: 'insitu_dbmanager_leader',
        help: '1 while this manager is the elected one',
        registers: [this.registry],
      }),
      up: new Gauge({
        name: 'insitu_dbmanager_member_up',
        help: '1 when the last probe of the member succeeded',
        labelNames: ['member'] as const,
        registers: [this.registry],
      }),
      lag: new Gauge({
        name: 'insitu_dbmanager_replica_lag_seconds',
        help: 'Seconds_Behind_Master of each replica',
        labelNames: ['member'] as const,
        registers: [this.registry],
      }),
      actions: new Counter({
        name: 'insitu_dbmanager_actions_total',
        help: 'Events recorded by the manager, by type (failover, switchover, rejoin, ...)',
        labelNames: ['type'] as const,
        registers: [this.registry],
      }),
    };
  }

  /** True while this manager is elected and its lease is fresh. */
  isLeading(): boolean {
    return this.elected && this.leadership?.isLeader() === true && !this.abort.signal.aborted;
  }

  /** Throw unless still the leader: called before every change to the cluster. */
  fence(step: string): void {
    if (!this.isLeading()) {
      throw notLeader(this.id, `is no longer the leader; not doing: ${step}`);
    }
  }

  /** The member as the decisions in `decide.ts` see it now. */
  view(state: MemberState): MemberView {
    return memberView(state, this.now());
  }

  /** Where and how replicas replicate from `primary`. */
  source(primary: MemberConfig): ReplicationSource {
    const address = replicationAddress(primary);
    return {
      host: address.host,
      port: address.port,
      user: this.secrets.replication.user,
      password: this.secrets.replication.password,
      heartbeatPeriodSeconds: this.config.replication.heartbeatPeriodSeconds,
      connectRetrySeconds: this.config.replication.connectRetrySeconds,
    };
  }

  /**
   * An admin connection for an action. Its statements may wait longer than a probe's:
   * `STOP SLAVE` waits for an IO thread blocked on a silent primary, up to slave_net_timeout.
   */
  withMember<T>(state: MemberState, fn: (connection: MemberConnection) => Promise<T>): Promise<T> {
    return withMember(state.endpoint, this.#actionTimeouts(), fn);
  }

  /** An admin connection the caller closes (see {@link withMember}). */
  connect(state: MemberState): Promise<MemberConnection> {
    return connectMember(state.endpoint, this.#actionTimeouts());
  }

  #actionTimeouts(): { connectTimeoutMs: number; queryTimeoutMs: number } {
    const queryTimeoutMs = Math.max(
      this.config.probe.queryTimeoutMs,
      (this.config.replication.slaveNetTimeoutSeconds + 2) * 1000,
    );
    return { connectTimeoutMs: this.config.probe.connectTimeoutMs, queryTimeoutMs };
  }

  /** Users whose connections a fence or switchover leaves alone: system threads, replication, the managers. */
  spareUsers(): string[] {
    return [
      ...SPARE_USERS_BASE,
      this.secrets.replication.user,
      ...new Set([...this.secrets.members.values()].map((login) => login.user)),
    ];
  }
}
