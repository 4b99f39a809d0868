import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import {
  Counter,
  Gauge,
  InsituError,
  createLogger,
  createMetricsRegistry,
  sleep,
  type Logger,
  type Registry,
} from '@insitu/core';
import { createNotifier, type AlertItem, type Notifier, type Severity } from '@insitu/notify';
import {
  binlogGtidsBeyond,
  binlogPosition,
  configureSemiSync,
  currentPosition,
  demoteToReplica,
  detachReplica,
  killClientConnections,
  repoint,
  restartReplication,
  setReadOnly,
  setSlaveNetTimeout,
  stopIoThreadNow,
  waitForGtid,
  type ReplicationSource,
} from './actions.js';
import { fenceMember } from './fence.js';
import { ManagerPeers } from './manager-peers.js';
import type { DbManagerConfig, MemberConfig, ResolvedSecrets } from './config.js';
import type { Coordinator, LeaderObserver, Leadership, Lease, WatchHandle } from './coord-port.js';
import {
  defaultConfirmations,
  judgePrimary,
  mostAdvanced,
  rankCandidates,
  replicationAddress,
  replicatesFrom,
  type Candidate,
  type MemberView,
  type PrimaryVerdict,
} from './decide.js';
import { EventLog, type ManagerEvent } from './events.js';
import {
  compareGtidPositions,
  formatGtidPosition,
  formatGtidRange,
  gtidRangesBeyond,
  parseGtidPosition,
  type GtidPosition,
} from './gtid.js';
import {
  probeMember,
  readReplication,
  type MemberProbe,
  type ReplicationStatus,
  type SemiSyncStatus,
} from './probe.js';
import { runRestartCommand } from './restart.js';
import { connectMember, withMember, type MemberConnection, type MemberEndpoint } from './sql.js';
import {
  coordKeys,
  electionName,
  emptyTopology,
  parseRecord,
  PublishedTopologySchema,
  type ManagerRecord,
  type PendingRejoin,
  type PublishedPrimary,
  type PublishedTopology,
} from './topology.js';

/** One probe outcome kept in a member's history. */
export interface ProbeRecord {
  at: number;
  ok: boolean;
  latencyMs: number;
  error?: string;
}

interface MemberState {
  config: MemberConfig;
  endpoint: MemberEndpoint;
  probe: MemberProbe | undefined;
  history: ProbeRecord[];
  consecutiveFailures: number;
  downSince: number | undefined;
  /** Last change of what the IO thread received (position or heartbeat count). */
  io: { key: string; changedAt: number } | undefined;
  sqlRestartedFor: number | undefined;
  ioRestartedFor: number | undefined;
  cleanSince: number | undefined;
  restart: { attempts: number; nextAt: number; running: boolean };
  /**
   * A repair of ours failed part-way on this member (e.g. a `STOP SLAVE` that outlived our
   * query timeout: the server finishes it later). If its replication is then found stopped
   * without an error, that was us, not an administrator: it is started again.
   */
  interruptedRepair: boolean;
}

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

/** What a switchover did. */
export interface SwitchoverResult {
  from: string;
  to: string;
  /** The old primary's final GTID position, which the new one reached before promotion. */
  gtid: string;
  /** From setting the old primary read-only to the new primary accepting writes. */
  readOnlyMs: number;
  killedConnections: number;
  epoch: number;
}

/** Options of {@link DbManager}. */
export interface DbManagerOptions {
  config: Readonly<DbManagerConfig>;
  secrets: ResolvedSecrets;
  coordinator: Coordinator;
  logger?: Logger;
  /** Default: built from `config.notify`. Closed by {@link DbManager.stop} only when built here. */
  notifier?: Notifier;
  registry?: Registry;
  now?: () => number;
  /** The admin URL others reach this manager at (published in coord). */
  adminUrl?: string;
}

const SPARE_USERS_BASE = ['system user', 'event_scheduler'];

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function maxPosition(a: GtidPosition, b: GtidPosition): GtidPosition {
  const out = new Map(a);
  for (const [domain, gtid] of b) {
    const mine = out.get(domain);
    if (mine === undefined || gtid.seq > mine.seq) out.set(domain, gtid);
  }
  return out;
}

/**
 * The MySQL-Manager: probes every member, keeps the topology and each member's health
 * history, and — while elected — repairs the cluster: replica-confirmed failover,
 * fencing and rejoin of a returning primary (or quarantine when it holds errant
 * transactions), replication restarts, member restarts, semi-sync, switchover on command,
 * a cooldown against flapping. Every change of the cluster is published in coord and
 * fenced on this manager's leadership; every event is logged, kept for `status()`, and
 * alerted through notify when someone must act.
 *
 * Emits `event` (ManagerEvent), `elected` and `deposed`.
 *
 * @example
 * const manager = new DbManager({ config, secrets, coordinator });
 * await manager.start();
 * const status = manager.status();
 * await manager.stop();
 */
export class DbManager extends EventEmitter {
  readonly id: string;
  readonly #config: Readonly<DbManagerConfig>;
  readonly #secrets: ResolvedSecrets;
  readonly #coord: Coordinator;
  readonly #logger: Logger;
  readonly #notifier: Notifier;
  readonly #ownsNotifier: boolean;
  readonly #now: () => number;
  readonly #keys: ReturnType<typeof coordKeys>;
  readonly #states: Map<string, MemberState>;
  readonly #events: EventLog;
  readonly #abort = new AbortController();
  readonly #metrics: {
    leader: Gauge;
    up: Gauge<'member'>;
    lag: Gauge<'member'>;
    actions: Counter<'type'>;
  };
  readonly registry: Registry;
  #adminUrl: string | undefined;
  #topology: PublishedTopology;
  #leadership: Leadership | undefined;
  #elected = false;
  #observer: LeaderObserver | undefined;
  #watch: WatchHandle | undefined;
  #lease: Lease | undefined;
  #loop: Promise<void> | undefined;
  #lock: Promise<unknown> = Promise.resolve();
  #suspect = false;
  #publishedEventIds: string[] = [];
  #started = false;
  /** After a failover that failed part-way: attempts so far and when the next may start. */
  #failoverRetry = { attempts: 0, nextAt: 0 };
  /** The primary the manager switched to asynchronous (no replica receiving), and since when none received. */
  #semiSyncAlone: { primary: string; since: number; async: boolean } | undefined;
  /** Counts commands that changed roles or replication (switchovers): probes taken across one are stale. */
  #commandChanges = 0;
  readonly #peers = new ManagerPeers();

  constructor(options: DbManagerOptions) {
    super();
    this.#config = options.config;
    this.#secrets = options.secrets;
    this.#coord = options.coordinator;
    this.#now = options.now ?? Date.now;
    this.id =
      options.config.managerId ??
      `${hostname()
        .replace(/[^a-zA-Z0-9._-]/g, '-')
        .slice(0, 40)}-${process.pid}`;
    this.#logger = (options.logger ?? createLogger({ name: 'dbmanager', level: options.config.log.level })).child({
      manager: this.id,
      cluster: options.config.cluster,
    });
    this.registry = options.registry ?? createMetricsRegistry({ component: 'dbmanager' });
    this.#ownsNotifier = options.notifier === undefined;
    this.#notifier =
      options.notifier ?? createNotifier(options.config.notify, { logger: this.#logger, registry: this.registry });
    this.#keys = coordKeys(options.config.cluster);
    this.#adminUrl = options.adminUrl;
    this.#topology = emptyTopology(options.config.cluster, this.id, this.#now());
    this.#events = new EventLog(options.config.cluster, this.id, options.config.events.keep, this.#now);
    this.#states = new Map(
      options.config.members.map((member) => {
        const login = options.secrets.members.get(member.name);
        if (login === undefined) throw new InsituError('INSITU_CONFIG_INVALID', `no login for member ${member.name}`);
        const state: MemberState = {
          config: member,
          endpoint: { name: member.name, host: member.host, port: member.port, login },
          probe: undefined,
          history: [],
          consecutiveFailures: 0,
          downSince: undefined,
          io: undefined,
          sqlRestartedFor: undefined,
          ioRestartedFor: undefined,
          cleanSince: undefined,
          restart: { attempts: 0, nextAt: 0, running: false },
          interruptedRepair: false,
        };
        return [member.name, state];
      }),
    );
    this.#metrics = {
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

  /** Where others reach this manager's admin API (set by the admin server once it listens). */
  setAdminUrl(url: string): void {
    this.#adminUrl = url;
  }

  /** Start probing, publish this manager's record, and run for leadership. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#loadTopology();
    this.#peers.seed(
      await this.#coord.list(this.#keys.managers).catch(() => new Map<string, string>()),
      this.#keys.managers,
    );
    this.#watch = await this.#coord.watchPrefix(this.#keys.prefix, (event) => {
      if (event.key.startsWith(this.#keys.managers))
        this.#peers.apply(event.key.slice(this.#keys.managers.length), event.type);
      if (event.key !== this.#keys.topology || event.type !== 'put' || this.#isLeading()) return;
      try {
        const topology = parseRecord(PublishedTopologySchema, event.value, 'published topology');
        if (topology) this.#topology = topology;
      } catch (error) {
        this.#logger.warn({ err: error }, 'ignoring an invalid published topology');
      }
    });
    this.#observer = await this.#coord.observe(electionName(this.#config.cluster));
    await this.#publishRecord();
    this.#campaign();
    this.#loop = this.#run();
  }

  /** Stop acting and probing; resign so that another manager takes over at once. */
  async stop(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    await this.#loop;
    await this.#lock.catch(() => undefined);
    const leadership = this.#leadership;
    this.#leadership = undefined;
    this.#elected = false;
    this.#metrics.leader.set(0);
    await leadership?.resign().catch(() => undefined);
    await this.#lease?.revoke().catch(() => undefined);
    await this.#watch?.close().catch(() => undefined);
    await this.#observer?.close().catch(() => undefined);
    if (this.#ownsNotifier) await this.#notifier.close();
  }

  /** True while this manager is elected and its lease is fresh. */
  isLeader(): boolean {
    return this.#isLeading();
  }

  /** The id of the elected manager, if any. */
  leaderId(): string | undefined {
    return this.#observer?.leader();
  }

  /** The admin URL of the elected manager, read from coord. */
  async leaderUrl(): Promise<string | undefined> {
    const leader = this.leaderId();
    if (leader === undefined) return undefined;
    if (leader === this.id) return this.#adminUrl;
    const text = await this.#coord.get(this.#keys.manager(leader)).catch(() => undefined);
    try {
      return text === undefined ? undefined : (JSON.parse(text) as ManagerRecord).adminUrl;
    } catch {
      return undefined;
    }
  }

  /** The recorded events, newest last. */
  events(limit?: number): ManagerEvent[] {
    return this.#events.list(limit);
  }

  /** The published topology this manager works from. */
  topology(): PublishedTopology {
    return structuredClone(this.#topology);
  }

  async #publishRecord(): Promise<void> {
    if (this.#adminUrl === undefined) return;
    this.#lease = await this.#coord.grantLease(this.#config.coord.leaseTtlMs * 2);
    const record: ManagerRecord = { id: this.id, adminUrl: this.#adminUrl, startedAt: this.#now() };
    await this.#coord.put(this.#keys.manager(this.id), JSON.stringify(record), { lease: this.#lease });
  }

  async #loadTopology(): Promise<void> {
    const text = await this.#coord.get(this.#keys.topology);
    const topology = parseRecord(PublishedTopologySchema, text, 'published topology');
    if (topology) this.#topology = topology;
  }

  #campaign(): void {
    if (this.#abort.signal.aborted) return;
    const leadership = this.#coord.campaign(electionName(this.#config.cluster), this.id, {
      ttlMs: this.#config.coord.leaseTtlMs,
    });
    this.#leadership = leadership;
    leadership.on('elected', (token) => {
      // The last leader's topology is the truth: read it before acting.
      this.#loadTopology()
        .then(() => {
          if (this.#leadership !== leadership || this.#abort.signal.aborted) return;
          this.#elected = true;
          this.#metrics.leader.set(1);
          this.#record({
            type: 'elected',
            severity: 'info',
            message: `manager ${this.id} elected (fencing token ${token})`,
            details: { token },
          });
          this.emit('elected', token);
        })
        .catch((error: unknown) => {
          this.#logger.error({ err: error }, 'cannot read the published topology after the election; resigning');
          void leadership.resign().catch(() => undefined);
        });
    });
    leadership.on('lost', (reason) => {
      if (this.#leadership !== leadership) return;
      this.#elected = false;
      this.#metrics.leader.set(0);
      this.#logger.warn({ err: reason }, 'leadership lost');
      this.#events.add({
        type: 'deposed',
        severity: 'warning',
        message: `manager ${this.id} lost its leadership: ${reason.message}`,
      });
      this.emit('deposed', reason);
      setTimeout(() => this.#campaign(), 100).unref();
    });
  }

  #isLeading(): boolean {
    return this.#elected && this.#leadership?.isLeader() === true && !this.#abort.signal.aborted;
  }

  /** Throw unless still the leader: called before every change to the cluster. */
  #fence(step: string): void {
    if (!this.#isLeading()) {
      throw new InsituError(
        'INSITU_DBMANAGER_NOT_LEADER',
        `manager ${this.id} is no longer the leader; not doing: ${step}`,
      );
    }
  }

  /** Run `fn` alone: the loop's repairs and commands (switchover, ack) never interleave. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.catch(() => undefined).then(fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const started = this.#now();
      try {
        await this.#tick();
      } catch (error) {
        this.#logger.error({ err: error }, 'manager tick failed');
      }
      const interval = this.#suspect ? this.#config.detection.suspectIntervalMs : this.#config.probe.intervalMs;
      await sleep(Math.max(0, interval - (this.#now() - started)), signal);
    }
  }

  async #probeAll(): Promise<void> {
    const options = {
      connectTimeoutMs: this.#config.probe.connectTimeoutMs,
      queryTimeoutMs: this.#config.probe.queryTimeoutMs,
    };
    const probes = await Promise.all(
      [...this.#states.values()].map((state) => probeMember(state.endpoint, options, this.#now)),
    );
    let index = 0;
    for (const state of this.#states.values()) {
      const probe = probes[index++];
      if (probe !== undefined) this.#absorb(state, probe);
    }
  }

  #absorb(state: MemberState, probe: MemberProbe): void {
    const now = probe.at;
    state.probe = probe;
    state.history.push({
      at: probe.at,
      ok: probe.ok,
      latencyMs: probe.latencyMs,
      ...(probe.error ? { error: probe.error.message } : {}),
    });
    if (state.history.length > this.#config.probe.historySize)
      state.history.splice(0, state.history.length - this.#config.probe.historySize);
    if (probe.ok) {
      state.consecutiveFailures = 0;
      state.downSince = undefined;
      state.restart.attempts = 0;
      const replication = probe.replication;
      if (replication) {
        const key = `${replication.masterHost}:${replication.masterPort}/${replication.masterLogFile}:${replication.readMasterLogPos}/${replication.receivedHeartbeats}/${replication.ioRunning}`;
        if (state.io?.key !== key) state.io = { key, changedAt: now };
      } else {
        state.io = undefined;
      }
    } else {
      state.consecutiveFailures += 1;
      state.downSince ??= now;
    }
    this.#metrics.up.set({ member: state.config.name }, probe.ok ? 1 : 0);
    const lag = probe.replication?.secondsBehindMaster;
    if (lag !== undefined && lag !== null) this.#metrics.lag.set({ member: state.config.name }, lag);
  }

  #view(state: MemberState): MemberView {
    return {
      name: state.config.name,
      config: state.config,
      probe: state.probe,
      consecutiveFailures: state.consecutiveFailures,
      ioSilentMs: state.io === undefined ? undefined : this.#now() - state.io.changedAt,
    };
  }

  async #tick(): Promise<void> {
    const changes = this.#commandChanges;
    await this.#probeAll();
    if (this.#isLeading()) {
      await this.#exclusive(async () => {
        // A switchover ran while these probes were taken: they show the roles from before it
        // (the old primary writable and replicating from nobody, the others from it), and
        // acting on them would "rejoin" members the switchover just repointed. Probe again.
        if (this.#commandChanges !== changes) return;
        await this.#evaluate();
      });
    } else {
      this.#suspect = false;
    }
    // Restarting a local process is this node's business, leader or not.
    await this.#restartDeadMembers();
  }

  // ---------------------------------------------------------------- evaluation

  async #evaluate(): Promise<void> {
    if (!this.#isLeading()) return;
    this.#checkPeers();
    const topology = this.#topology;
    if (topology.primary === null) {
      await this.#bootstrap();
      return;
    }
    const primary = this.#states.get(topology.primary);
    if (primary === undefined) {
      this.#raise(
        'topology-unknown',
        '',
        'critical',
        `the published primary ${topology.primary} is not in this manager's config`,
        {},
      );
      return;
    }
    const others = [...this.#states.values()].filter((state) => state !== primary);
    const replicasOfPrimary = others.filter((state) => replicatesFrom(this.#view(state), primary.config));
    const verdict = judgePrimary(
      this.#view(primary),
      replicasOfPrimary.map((state) => this.#view(state)),
      {
        failuresBeforeDown: this.#config.detection.failuresBeforeDown,
        replicaSilenceMs: this.#config.detection.replicaSilenceMs,
        minConfirmations: this.#config.detection.minConfirmations ?? defaultConfirmations(this.#states.size),
      },
    );
    this.#suspect = verdict.state !== 'alive';
    for (const state of this.#states.values()) {
      if (state.probe?.ok !== true) continue;
      if (state.probe.gtidStrictMode === false) {
        this.#raise(
          'gtid-strict-mode-off',
          state.config.name,
          'warning',
          `gtid_strict_mode is OFF on ${state.config.name}: diverged histories cannot be detected reliably; set it ON in its my.cnf`,
          {},
        );
      } else {
        this.#resolve('gtid-strict-mode-off', state.config.name, `gtid_strict_mode is ON on ${state.config.name}`);
      }
    }
    await this.#actOnVerdict(primary, verdict);
    if (verdict.state === 'dead' || verdict.state === 'suspect') return;
    for (const state of others) {
      try {
        await this.#tendMember(state, primary, verdict.state === 'alive');
      } catch (error) {
        if (error instanceof InsituError && error.code === 'INSITU_DBMANAGER_NOT_LEADER') return;
        state.interruptedRepair = true;
        this.#logger.warn(
          { err: error, member: state.config.name },
          'repair of a member failed; retrying on the next probe',
        );
      }
    }
    if (verdict.state === 'alive') await this.#checkPrimarySemiSync(primary);
  }

  /** Fewer managers alive than this one has seen at once: `manager-lost` (the pair is down to one). */
  #checkPeers(): void {
    const lost = this.#peers.lost();
    if (lost.length > 0) {
      this.#raise(
        'manager-lost',
        '',
        'critical',
        `${lost.length} dbmanager(s) of ${this.#peers.peak()} stopped publishing their record: ${lost.join(', ')}; ${this.#peers.alive().length} left (${this.#peers.alive().join(', ')})`,
        {
          lost,
          alive: this.#peers.alive(),
        },
      );
    } else {
      this.#resolve('manager-lost', '', `${this.#peers.alive().length} dbmanagers alive again`);
    }
  }

  async #actOnVerdict(primary: MemberState, verdict: PrimaryVerdict): Promise<void> {
    const name = primary.config.name;
    const details = {
      confirmations: verdict.confirmations,
      seeing: verdict.seeing,
      unreachable: verdict.unreachable,
      needed: verdict.needed,
      error: primary.probe?.error?.message,
    };
    if (verdict.state === 'alive') {
      if (this.#failoverRetry.attempts > 0) this.#failoverRetry = { attempts: 0, nextAt: 0 };
      this.#resolve('failover-failed', name, `primary ${name} answers again`);
      this.#resolve('primary-unreachable', name, `the manager reaches primary ${name} again`);
      this.#resolve('primary-down', name, `primary ${name} answers again`);
      this.#resolve('failover-blocked', name, `primary ${name} answers again`);
      await this.#ensurePrimaryWritable(primary);
      return;
    }
    if (verdict.state === 'suspect') return;
    if (verdict.state === 'seen-by-replicas') {
      this.#raise(
        'primary-unreachable',
        name,
        'warning',
        `the manager cannot reach primary ${name}, but replicas ${verdict.seeing.join(', ')} still replicate from it: no failover`,
        details,
      );
      return;
    }
    if (verdict.state === 'unconfirmed') {
      this.#raise(
        'primary-down',
        name,
        'critical',
        `primary ${name} is unreachable and no replica sees it, but only ${verdict.confirmations.length} of the ${verdict.needed} replicas needed can confirm it: no automatic failover`,
        details,
      );
      return;
    }
    // Dead.
    this.#raise(
      'primary-down',
      name,
      'critical',
      `primary ${name} is down (confirmed by ${verdict.confirmations.join(', ')})`,
      details,
    );
    if (!this.#config.failover.auto) {
      this.#raise(
        'failover-blocked',
        name,
        'critical',
        `primary ${name} is down and automatic failover is off: switch over by hand`,
        details,
      );
      return;
    }
    const now = this.#now();
    if (now < this.#topology.cooldownUntil) {
      this.#raise(
        'failover-blocked',
        name,
        'critical',
        `primary ${name} is down, but the last failover was at ${iso(this.#topology.lastFailoverAt) ?? '?'}: automatic failover is blocked until ` +
          `${iso(this.#topology.cooldownUntil) ?? '?'}; run \`insitu db ack\` to let it proceed`,
        {
          ...details,
          cooldownUntil: iso(this.#topology.cooldownUntil),
          lastFailoverAt: iso(this.#topology.lastFailoverAt),
        },
      );
      return;
    }
    // A failover that failed part-way was undone; the next attempt waits (exponential back-off), not every tick.
    if (now < this.#failoverRetry.nextAt) return;
    await this.#failover(primary, verdict);
  }

  async #ensurePrimaryWritable(primary: MemberState): Promise<void> {
    if (primary.probe?.ok !== true || primary.probe.readOnly !== true) return;
    this.#fence(`make primary ${primary.config.name} writable`);
    await this.#withMember(primary, (c) => setReadOnly(c, false));
    this.#record({
      type: 'primary-writable',
      severity: 'info',
      member: primary.config.name,
      message: `primary ${primary.config.name} was read-only (started with read_only=1); made writable`,
    });
  }

  async #bootstrap(): Promise<void> {
    const states = [...this.#states.values()];
    const reachable = states.filter((state) => state.probe?.ok === true);
    if (reachable.length === 0) {
      this.#raise('topology-unknown', '', 'critical', 'no member is reachable: cannot tell the primary', {});
      return;
    }
    const sources = reachable.filter((state) => state.probe?.replication === undefined);
    const fits = sources.filter((source) =>
      reachable.every((other) => other === source || replicatesFrom(this.#view(other), source.config)),
    );
    let primary: MemberState | undefined = fits.length === 1 ? fits[0] : undefined;
    if (primary === undefined && sources.length === 1 && reachable.length === states.length) primary = sources[0];
    if (primary === undefined) {
      this.#raise(
        'topology-unknown',
        '',
        'critical',
        'cannot tell the primary: expected exactly one member that replicates from nobody and that the others replicate from',
        {
          sources: sources.map((state) => state.config.name),
        },
      );
      return;
    }
    this.#resolve('topology-unknown', '', `primary is ${primary.config.name}`);
    this.#fence('publish the discovered topology');
    await this.#publish({
      ...this.#topology,
      epoch: Math.max(1, this.#topology.epoch),
      primary: primary.config.name,
      promotedAt: primary.probe?.gtidCurrentPos ?? '',
    });
    this.#record({
      type: 'discovered',
      severity: 'info',
      member: primary.config.name,
      message: `discovered primary ${primary.config.name}`,
      details: { members: states.map((s) => s.config.name) },
    });
    await this.#ensurePrimaryWritable(primary);
  }

  // ---------------------------------------------------------------- failover

  #source(primary: MemberConfig): ReplicationSource {
    const address = replicationAddress(primary);
    return {
      host: address.host,
      port: address.port,
      user: this.#secrets.replication.user,
      password: this.#secrets.replication.password,
      heartbeatPeriodSeconds: this.#config.replication.heartbeatPeriodSeconds,
      connectRetrySeconds: this.#config.replication.connectRetrySeconds,
    };
  }

  /**
   * An admin connection for an action. Its statements may wait longer than a probe's:
   * `STOP SLAVE` waits for an IO thread blocked on a silent primary, up to slave_net_timeout.
   */
  #withMember<T>(state: MemberState, fn: (connection: MemberConnection) => Promise<T>): Promise<T> {
    const queryTimeoutMs = Math.max(
      this.#config.probe.queryTimeoutMs,
      (this.#config.replication.slaveNetTimeoutSeconds + 2) * 1000,
    );
    return withMember(state.endpoint, { connectTimeoutMs: this.#config.probe.connectTimeoutMs, queryTimeoutMs }, fn);
  }

  #connect(state: MemberState): Promise<MemberConnection> {
    const queryTimeoutMs = Math.max(
      this.#config.probe.queryTimeoutMs,
      (this.#config.replication.slaveNetTimeoutSeconds + 2) * 1000,
    );
    return connectMember(state.endpoint, { connectTimeoutMs: this.#config.probe.connectTimeoutMs, queryTimeoutMs });
  }

  async #failover(primary: MemberState, verdict: PrimaryVerdict): Promise<void> {
    const started = this.#now();
    const mark = (step: string) => this.#logger.debug({ step, ms: this.#now() - started }, 'failover step');
    const old = primary.config.name;
    this.#fence(`fail over from ${old}`);
    this.#record({
      type: 'failover-started',
      severity: 'warning',
      member: old,
      message: `primary ${old} is down (confirmed by ${verdict.confirmations.join(', ')}); failing over`,
      details: { confirmations: verdict.confirmations },
    });
    const replicas = verdict.confirmations
      .map((name) => this.#states.get(name))
      .filter((s): s is MemberState => s !== undefined);
    let promoted:
      | {
          chosen: MemberState;
          promotedAt: string;
          candidates: Candidate[];
          excluded: ReturnType<typeof rankCandidates>['excluded'];
        }
      | undefined;
    try {
      promoted = await this.#detachAndPublish(primary, replicas, mark);
    } catch (error) {
      if (error instanceof InsituError && error.code === 'INSITU_DBMANAGER_NOT_LEADER') {
        // Deposed mid-way: the new leader owns the cluster now; it must not find us undoing its work.
        this.#logger.warn({ err: error }, 'failover interrupted: no longer the leader');
        return;
      }
      await this.#failoverFailed(primary, replicas, error);
      return;
    }
    if (promoted === undefined) {
      // Refused (no candidate, relay log not applied): alerted by the step; undone like a failure, retried with back-off.
      await this.#undoFailover(primary, replicas);
      this.#scheduleFailoverRetry();
      return;
    }
    const { chosen: chosenState, promotedAt, candidates, excluded } = promoted;
    const chosen = { name: chosenState.config.name };
    // Semi-sync primary side on before the others connect: they then register as semi-sync replicas, and the
    // new primary's first commits (after read_only=0 below) find one acknowledging.
    if (this.#config.semiSync.enabled) {
      await this.#withMember(chosenState, (c) =>
        configureSemiSync(c, this.#config.semiSync.timeoutMs, 'primary', false),
      ).catch((error: unknown) => {
        this.#logger.warn(
          { err: error, member: chosen.name },
          'semi-sync on the new primary failed; the next probe retries',
        );
      });
    }
    // The others follow first, so that the new primary's first commits find a semi-sync replica.
    const followers = candidates.filter((c) => c.name !== chosen.name);
    const repointed: string[] = [];
    await Promise.all(
      followers.map(async (follower) => {
        const state = this.#states.get(follower.name);
        if (state === undefined) return;
        try {
          await this.#withMember(state, (c) => repoint(c, this.#source(chosenState.config)));
          repointed.push(follower.name);
        } catch (error) {
          this.#logger.warn(
            { err: error, member: follower.name },
            'repointing after failover failed; the next probe retries',
          );
        }
      }),
    );
    mark('repointed');
    this.#fence(`make ${chosen.name} writable`);
    await this.#withMember(chosenState, (c) => setReadOnly(c, false));
    const writableAfterMs = this.#now() - started;
    this.#failoverRetry = { attempts: 0, nextAt: 0 };

    this.#resolve('primary-down', old, `failed over to ${chosen.name}`);
    this.#resolve('failover-blocked', old, `failed over to ${chosen.name}`);
    this.#resolve('failover-impossible', old, `failed over to ${chosen.name}`);
    this.#resolve('failover-failed', old, `failed over to ${chosen.name}`);
    const message = `failover: ${old} → ${chosen.name} (writable after ${writableAfterMs} ms, at ${promotedAt || 'empty GTID position'})`;
    this.#record({
      type: 'failover',
      severity: 'critical',
      member: chosen.name,
      message,
      details: {
        from: old,
        to: chosen.name,
        promotedAt,
        epoch: this.#topology.epoch,
        writableAfterMs,
        confirmations: verdict.confirmations,
        excluded,
        repointed,
      },
    });
    this.#notifier.event({
      cluster: this.#config.cluster,
      condition: 'failover',
      subject: chosen.name,
      severity: 'critical',
      summary: message,
      details: { from: old, to: chosen.name, promotedAt, excluded },
    });
    this.#suspect = false;
  }

  /**
   * The steps of a failover that change replicas before anything is published: freeze
   * what every replica received, choose, catch up, apply, detach the candidate, publish
   * (fenced). Undefined when it refuses (alerted here); throws on an error part-way —
   * the caller undoes.
   */
  async #detachAndPublish(
    primary: MemberState,
    replicas: readonly MemberState[],
    mark: (step: string) => void,
  ): Promise<
    | {
        chosen: MemberState;
        promotedAt: string;
        candidates: Candidate[];
        excluded: ReturnType<typeof rankCandidates>['excluded'];
      }
    | undefined
  > {
    const old = primary.config.name;
    const read = await Promise.all(
      replicas.map(async (state): Promise<Candidate | undefined> => {
        try {
          return await this.#withMember(state, async (c) => {
            await stopIoThreadNow(c);
            const replication = await readReplication(c);
            const applied = await c.one<{ p: string }>('SELECT @@gtid_slave_pos AS p');
            return {
              name: state.config.name,
              config: state.config,
              received: replication?.gtidIoPos ?? '',
              applied: String(applied?.p ?? ''),
              canApply: !(
                replication !== undefined &&
                replication.sqlRunning !== 'Yes' &&
                replication.lastSqlErrno !== 0
              ),
            };
          });
        } catch (error) {
          this.#logger.warn({ err: error, member: state.config.name }, 'replica unreadable during failover');
          return undefined;
        }
      }),
    );
    const candidates = read.filter((c): c is Candidate => c !== undefined);
    mark('positions read');
    const { ranked, excluded } = rankCandidates(candidates);
    const chosen = ranked[0];
    if (chosen === undefined) {
      this.#raise('failover-impossible', old, 'critical', `primary ${old} is down and no replica can be promoted`, {
        excluded,
        candidates: candidates.map((c) => c.name),
      });
      return undefined;
    }
    const chosenState = this.#states.get(chosen.name);
    if (chosenState === undefined) return undefined;
    let target = chosen.received || chosen.applied;
    const donor = mostAdvanced(candidates);
    if (
      donor !== undefined &&
      donor.name !== chosen.name &&
      compareGtidPositions(parseGtidPosition(donor.received || donor.applied), parseGtidPosition(target)) > 0
    ) {
      target = await this.#catchUp(chosenState, donor, target);
    }
    const applied = await this.#withMember(chosenState, (c) =>
      waitForGtid(c, target, this.#config.failover.applyTimeoutMs),
    );
    mark('relay log applied');
    if (!applied) {
      this.#raise(
        'failover-impossible',
        old,
        'critical',
        `candidate ${chosen.name} did not apply its relay log up to ${target} within ${this.#config.failover.applyTimeoutMs} ms; not promoting`,
        { target },
      );
      return undefined;
    }

    this.#fence(`promote ${chosen.name}`);
    const promotedAt = await this.#withMember(chosenState, async (c) => {
      await detachReplica(c);
      return currentPosition(c);
    });
    mark('detached');
    const now = this.#now();
    const missed = [...this.#states.values()]
      .filter((s) => s !== primary && s !== chosenState && !candidates.some((c) => c.name === s.config.name))
      .map((s): PendingRejoin => ({ name: s.config.name, base: promotedAt, reason: 'missed-failover', since: now }));
    const pendingRejoin = [
      ...this.#topology.pendingRejoin.filter(
        (p) => p.name !== old && p.name !== chosen.name && !missed.some((m) => m.name === p.name),
      ),
      { name: old, base: promotedAt, reason: 'former-primary' as const, since: now },
      ...missed,
    ];
    // Published (fenced) before the new primary takes writes: a deposed manager stops here.
    await this.#publish({
      ...this.#topology,
      epoch: this.#topology.epoch + 1,
      primary: chosen.name,
      promotedAt,
      pendingRejoin,
      quarantined: this.#topology.quarantined.filter((q) => q.name !== chosen.name),
      lastFailoverAt: now,
      cooldownUntil: now + this.#config.failover.cooldownMs,
    });
    mark('published');
    return { chosen: chosenState, promotedAt, candidates, excluded };
  }

  /**
   * Put every replica the failover touched back as it was: replicating from the old
   * primary (IO thread running again, nothing detached; `MASTER_USE_GTID=slave_pos`
   * resumes from what each applied). Returns the members it could not restore.
   */
  async #undoFailover(primary: MemberState, replicas: readonly MemberState[]): Promise<string[]> {
    const source = this.#source(primary.config);
    const failed: string[] = [];
    await Promise.all(
      replicas.map(async (state) => {
        try {
          await this.#withMember(state, (c) => repoint(c, source));
        } catch (error) {
          failed.push(state.config.name);
          this.#logger.error({ err: error, member: state.config.name }, 'cannot undo the failover on this replica');
        }
      }),
    );
    return failed;
  }

  #scheduleFailoverRetry(): number {
    const attempts = this.#failoverRetry.attempts + 1;
    const delay = Math.min(
      this.#config.failover.retryBackoffMaxMs,
      this.#config.failover.retryBackoffMs * 2 ** (attempts - 1),
    );
    this.#failoverRetry = { attempts, nextAt: this.#now() + delay };
    return delay;
  }

  async #failoverFailed(primary: MemberState, replicas: readonly MemberState[], error: unknown): Promise<void> {
    const old = primary.config.name;
    const reason = (error as Error).message ?? String(error);
    const notRestored = await this.#undoFailover(primary, replicas);
    const delay = this.#scheduleFailoverRetry();
    const undone =
      notRestored.length === 0
        ? `undone: ${replicas.map((s) => s.config.name).join(', ')} replicate from ${old} again`
        : `could not undo on ${notRestored.join(', ')}`;
    this.#record({
      type: 'failover-attempt-failed',
      severity: 'critical',
      member: old,
      message: `failover from ${old} failed (attempt ${this.#failoverRetry.attempts}): ${reason}; ${undone}; next attempt in ${delay} ms`,
      details: { reason, notRestored, attempt: this.#failoverRetry.attempts, retryInMs: delay },
    });
    this.#raise(
      'failover-failed',
      old,
      'critical',
      `failover from ${old} failed: ${reason}; ${undone}; retrying with back-off`,
      { reason, notRestored, attempt: this.#failoverRetry.attempts },
    );
  }

  /** The chosen replica is behind another (never-promote, or with a broken SQL thread): fetch the difference from it first. */
  async #catchUp(chosen: MemberState, donor: Candidate, target: string): Promise<string> {
    const donorState = this.#states.get(donor.name);
    const donorTarget = donor.received || donor.applied;
    if (donorState === undefined) return target;
    try {
      // Whatever the donor received must be in its binlog (log_slave_updates) before others can read it.
      const donorApplied = await this.#withMember(donorState, (c) =>
        waitForGtid(c, donorTarget, this.#config.failover.applyTimeoutMs),
      );
      if (!donorApplied) throw new Error(`${donor.name} did not apply its own relay log`);
      this.#fence(`catch ${chosen.config.name} up from ${donor.name}`);
      const reached = await this.#withMember(chosen, async (c) => {
        await repoint(c, this.#source(donorState.config));
        const ok = await waitForGtid(c, donorTarget, this.#config.failover.applyTimeoutMs);
        await c.query('STOP SLAVE');
        return ok;
      });
      if (!reached) throw new Error(`${chosen.config.name} did not reach ${donorTarget}`);
      this.#record({
        type: 'catch-up',
        severity: 'info',
        member: chosen.config.name,
        message: `${chosen.config.name} caught up from ${donor.name} to ${donorTarget} before its promotion`,
      });
      return donorTarget;
    } catch (error) {
      this.#raise(
        'failover-data-loss',
        chosen.config.name,
        'critical',
        `${chosen.config.name} could not catch up from the more advanced ${donor.name}: transactions up to ${donorTarget} may be missing on the new primary`,
        {
          error: (error as Error).message,
        },
      );
      return target;
    }
  }

  // ---------------------------------------------------------------- members other than the primary

  async #tendMember(state: MemberState, primary: MemberState, primaryAlive: boolean): Promise<void> {
    const name = state.config.name;
    const probe = state.probe;
    if (probe?.ok !== true) {
      if (state.consecutiveFailures >= this.#config.detection.failuresBeforeDown) {
        this.#raise(
          'member-down',
          name,
          'warning',
          `${name} is unreachable: ${probe?.error?.message ?? 'no probe yet'}`,
          { since: iso(state.downSince) },
        );
      }
      return;
    }
    this.#resolve('member-down', name, `${name} answers again`);
    const quarantine = this.#topology.quarantined.find((q) => q.name === name);
    if (probe.readOnly === false) {
      this.#fence(`fence ${name}`);
      const { killed } = await fenceMember(() => this.#connect(state), this.#spareUsers(), {
        deadlineMs: this.#config.probe.queryTimeoutMs,
      });
      const expected = quarantine !== undefined || this.#topology.pendingRejoin.some((p) => p.name === name);
      this.#record({
        type: 'fence',
        severity: expected ? 'warning' : 'critical',
        member: name,
        message: `${name} was writable but is not the primary: set read_only=1 and killed ${killed} client connection(s)`,
        details: { killed },
      });
      if (!expected)
        this.#notifier.event({
          cluster: this.#config.cluster,
          condition: 'unexpected-writable',
          subject: name,
          severity: 'critical',
          summary: `${name} was writable beside primary ${primary.config.name}; fenced`,
          details: { killed },
        });
      return;
    }
    if (quarantine !== undefined) {
      await this.#checkQuarantine(state, primary);
      return;
    }
    if (!primaryAlive) return;
    const pending = this.#topology.pendingRejoin.find((p) => p.name === name);
    if (pending !== undefined || !replicatesFrom(this.#view(state), primary.config)) {
      await this.#rejoin(state, primary, pending);
      return;
    }
    await this.#tendReplica(state, primary);
    await this.#tuneMember(state, primary);
  }

  #spareUsers(): string[] {
    return [
      ...SPARE_USERS_BASE,
      this.#secrets.replication.user,
      ...new Set([...this.#secrets.members.values()].map((login) => login.user)),
    ];
  }

  /**
   * GTIDs `state` holds beyond the primary's position (or beyond a fixed `base`, for a
   * former primary): exact from its binlog when it can be read, else as ranges.
   *
   * Both positions are read fresh, the member's first and the primary's after it: a
   * primary position from an older probe than the member's would make transactions the
   * member replicated since then look errant (seen under load after a switchover).
   */
  async #errantGtids(state: MemberState, from: { primary: MemberState } | { base: GtidPosition }): Promise<string[]> {
    let mine: GtidPosition;
    try {
      const [binlog, applied] = await this.#withMember(state, async (c) => [
        await binlogPosition(c),
        String((await c.one<{ p: string }>('SELECT @@gtid_slave_pos AS p'))?.p ?? ''),
      ]);
      mine = maxPosition(parseGtidPosition(binlog), parseGtidPosition(applied));
    } catch {
      mine = maxPosition(parseGtidPosition(state.probe?.gtidBinlogPos), parseGtidPosition(state.probe?.gtidSlavePos));
    }
    const base =
      'base' in from
        ? from.base
        : parseGtidPosition(
            await this.#withMember(from.primary, (c) => currentPosition(c)).catch(
              () => from.primary.probe?.gtidCurrentPos ?? '',
            ),
          );
    const ranges = gtidRangesBeyond(mine, base);
    if (ranges.length === 0) return [];
    try {
      const exact = await this.#withMember(state, (c) => binlogGtidsBeyond(c, base));
      if (exact.length > 0) return exact;
    } catch (error) {
      this.#logger.warn(
        { err: error, member: state.config.name },
        'cannot list errant GTIDs from the binlog; reporting ranges',
      );
    }
    return ranges.map(formatGtidRange);
  }

  async #rejoin(state: MemberState, primary: MemberState, pending: PendingRejoin | undefined): Promise<void> {
    const name = state.config.name;
    const primaryPosition = parseGtidPosition(primary.probe?.gtidCurrentPos);
    const errant = await this.#errantGtids(
      state,
      pending === undefined ? { primary } : { base: parseGtidPosition(pending.base) },
    );
    if (errant.length > 0) {
      await this.#quarantine(state, `${name} holds transactions that primary ${primary.config.name} never had`, errant);
      return;
    }
    this.#fence(`rejoin ${name}`);
    const source = this.#source(primary.config);
    const wasPrimary = pending?.reason === 'former-primary' || state.probe?.replication === undefined;
    await this.#withMember(state, (c) => (wasPrimary ? demoteToReplica(c, source) : repoint(c, source)));
    if (pending !== undefined) {
      await this.#publish({
        ...this.#topology,
        pendingRejoin: this.#topology.pendingRejoin.filter((p) => p.name !== name),
      });
    }
    this.#record({
      type: 'rejoin',
      severity: 'info',
      member: name,
      message: `${name} rejoined as a replica of ${primary.config.name}${wasPrimary ? ' (MASTER_DEMOTE_TO_SLAVE=1)' : ''}`,
      details: {
        base: pending?.base ?? formatGtidPosition(primaryPosition),
        reason: pending?.reason ?? 'not replicating from the primary',
      },
    });
  }

  async #quarantine(state: MemberState, reason: string, errantGtids: string[]): Promise<void> {
    const name = state.config.name;
    this.#fence(`quarantine ${name}`);
    // Read-only already; stop replication so that it cannot fail over and over or pass the errant GTIDs on.
    await this.#withMember(state, async (c) => {
      await setReadOnly(c, true);
      await c.query('STOP SLAVE');
    }).catch(() => undefined);
    await this.#publish({
      ...this.#topology,
      pendingRejoin: this.#topology.pendingRejoin.filter((p) => p.name !== name),
      quarantined: [
        ...this.#topology.quarantined.filter((q) => q.name !== name),
        { name, reason, errantGtids, since: this.#now() },
      ],
    });
    const summary = `${name} quarantined: it holds ${errantGtids.length} errant transaction(s) ${errantGtids.join(', ')}; it stays read-only and out of replication until they are removed (rebuild it from the primary)`;
    this.#raise('errant-transactions', name, 'critical', summary, { errantGtids, reason });
    this.#record({
      type: 'quarantine',
      severity: 'critical',
      member: name,
      message: summary,
      details: { errantGtids, reason },
    });
  }

  /** A quarantined member leaves quarantine only when it no longer holds errant GTIDs (an administrator rebuilt it). */
  async #checkQuarantine(state: MemberState, primary: MemberState): Promise<void> {
    const name = state.config.name;
    const errant = await this.#errantGtids(state, { primary });
    const quarantine = this.#topology.quarantined.find((q) => q.name === name);
    const stillErrant =
      errant.length > 0 ||
      (quarantine !== undefined && quarantine.errantGtids.some((gtid) => this.#holdsGtid(state, gtid)));
    if (stillErrant) {
      this.#raise(
        'errant-transactions',
        name,
        'critical',
        `${name} quarantined: it holds errant transaction(s) ${(quarantine?.errantGtids ?? errant).join(', ')}`,
        {
          errantGtids: quarantine?.errantGtids ?? errant,
        },
      );
      return;
    }
    this.#fence(`release ${name} from quarantine`);
    await this.#publish({ ...this.#topology, quarantined: this.#topology.quarantined.filter((q) => q.name !== name) });
    this.#resolve('errant-transactions', name, `${name} no longer holds errant transactions; rejoining`);
    this.#record({
      type: 'quarantine-released',
      severity: 'info',
      member: name,
      message: `${name} no longer holds errant transactions; it rejoins`,
    });
    await this.#rejoin(state, primary, undefined);
  }

  /** Does the member's binlog position still show this GTID's server at or beyond its sequence? */
  #holdsGtid(state: MemberState, gtid: string): boolean {
    const errant = parseGtidPosition(gtid.split('..')[0]).values().next().value;
    if (errant === undefined) return false;
    const mine = parseGtidPosition(state.probe?.gtidBinlogPos).get(errant.domain);
    return mine !== undefined && mine.seq >= errant.seq && mine.server === errant.server;
  }

  async #tendReplica(state: MemberState, primary: MemberState): Promise<void> {
    const name = state.config.name;
    const replication = state.probe?.replication;
    if (replication === undefined) return;
    const now = this.#now();
    if (replication.sqlRunning !== 'Yes' && replication.lastSqlErrno !== 0) {
      state.cleanSince = undefined;
      const error = `error ${replication.lastSqlErrno}: ${replication.lastSqlError}`;
      if (state.sqlRestartedFor === undefined) {
        this.#fence(`restart replication on ${name}`);
        await this.#withMember(state, (c) => restartReplication(c));
        state.sqlRestartedFor = replication.lastSqlErrno;
        this.#record({
          type: 'replication-restart',
          severity: 'warning',
          member: name,
          message: `replication SQL thread of ${name} stopped (${error}); restarted it once`,
          details: { error: replication.lastSqlError, errno: replication.lastSqlErrno },
        });
        return;
      }
      this.#raise(
        'replica-sql-error',
        name,
        'critical',
        `replication SQL thread of ${name} stopped again after one restart: ${error}`,
        {
          error: replication.lastSqlError,
          errno: replication.lastSqlErrno,
          gtidSlavePos: state.probe?.gtidSlavePos,
        },
      );
      return;
    }
    if (replication.ioRunning !== 'Yes' && replication.lastIoErrno !== 0) {
      state.cleanSince = undefined;
      const error = `error ${replication.lastIoErrno}: ${replication.lastIoError}`;
      if (replication.lastIoErrno === 1236) {
        const errant = await this.#errantGtids(state, { primary });
        await this.#quarantine(
          state,
          `the primary refused to serve it: ${error}`,
          errant.length > 0 ? errant : [state.probe?.gtidSlavePos ?? '?'],
        );
        return;
      }
      if ((this.#view(state).ioSilentMs ?? 0) < this.#config.detection.replicaSilenceMs) return;
      if (state.ioRestartedFor === undefined) {
        this.#fence(`restart replication on ${name}`);
        await this.#withMember(state, (c) => restartReplication(c));
        state.ioRestartedFor = replication.lastIoErrno;
        this.#record({
          type: 'replication-restart',
          severity: 'warning',
          member: name,
          message: `replication IO thread of ${name} failed (${error}); restarted it once`,
          details: { error: replication.lastIoError, errno: replication.lastIoErrno },
        });
        return;
      }
      this.#raise(
        'replica-io-error',
        name,
        'critical',
        `replication IO thread of ${name} cannot receive from ${primary.config.name}: ${error}`,
        { error: replication.lastIoError, errno: replication.lastIoErrno },
      );
      return;
    }
    if (replication.ioRunning === 'No' || replication.sqlRunning === 'No') {
      state.cleanSince = undefined;
      if (state.interruptedRepair) {
        // Stopped by our own repair that failed part-way, not by an administrator: a replica
        // left stopped is no witness, and would hold up the next failover.
        this.#fence(`start replication on ${name}`);
        state.interruptedRepair = false;
        await this.#withMember(state, (c) => c.query('START SLAVE'));
        this.#record({
          type: 'replication-restart',
          severity: 'warning',
          member: name,
          message: `replication on ${name} was left stopped by an interrupted repair (IO ${replication.ioRunning}, SQL ${replication.sqlRunning}); started it again`,
        });
        return;
      }
      this.#raise(
        'replication-stopped',
        name,
        'warning',
        `replication on ${name} was stopped without an error (by an administrator?): IO ${replication.ioRunning}, SQL ${replication.sqlRunning}`,
        {},
      );
      return;
    }
    if (replication.ioRunning === 'Yes' && replication.sqlRunning === 'Yes') {
      state.interruptedRepair = false;
      this.#resolve('replica-sql-error', name, `replication on ${name} runs again`);
      this.#resolve('replica-io-error', name, `replication on ${name} runs again`);
      this.#resolve('replication-stopped', name, `replication on ${name} runs again`);
      state.cleanSince ??= now;
      if (now - state.cleanSince >= this.#config.repair.errorMemoryMs) {
        state.sqlRestartedFor = undefined;
        state.ioRestartedFor = undefined;
      }
      const lag = replication.secondsBehindMaster;
      if (lag !== null && lag > this.#config.repair.lagWarningSeconds) {
        this.#raise('replica-lag', name, 'warning', `${name} is ${lag} s behind ${primary.config.name}`, {
          lagSeconds: lag,
        });
      } else {
        this.#resolve('replica-lag', name, `${name} caught up`);
      }
    }
  }

  /** Replica timing and semi-sync settings as configured. */
  async #tuneMember(state: MemberState, primary: MemberState): Promise<void> {
    const probe = state.probe;
    const replication = probe?.replication;
    if (
      probe === undefined ||
      replication === undefined ||
      replication.ioRunning !== 'Yes' ||
      replication.sqlRunning !== 'Yes'
    )
      return;
    const wantSemiSync = this.#config.semiSync.enabled && this.#semiSyncDrift(probe.semiSync, 'replica');
    const wantNetTimeout = probe.slaveNetTimeout !== this.#config.replication.slaveNetTimeoutSeconds;
    const wantTiming =
      Math.abs(replication.heartbeatPeriod - this.#config.replication.heartbeatPeriodSeconds) > 0.001 ||
      replication.connectRetry !== this.#config.replication.connectRetrySeconds;
    if (!wantSemiSync && !wantNetTimeout && !wantTiming) return;
    this.#fence(`tune ${state.config.name}`);
    await this.#withMember(state, async (c) => {
      if (wantNetTimeout) await setSlaveNetTimeout(c, this.#config.replication.slaveNetTimeoutSeconds);
      if (wantSemiSync)
        await configureSemiSync(
          c,
          this.#config.semiSync.timeoutMs,
          'replica',
          !wantTiming && probe.semiSync?.slaveEnabled !== true,
        );
      if (wantTiming) await repoint(c, this.#source(primary.config));
    });
    this.#record({
      type: 'tuned',
      severity: 'info',
      member: state.config.name,
      message: `configured ${[wantSemiSync ? 'AFTER_SYNC semi-sync' : '', wantNetTimeout ? 'slave_net_timeout' : '', wantTiming ? 'heartbeat and connect retry' : ''].filter(Boolean).join(', ')} on ${state.config.name}`,
    });
  }

  #semiSyncDrift(semiSync: SemiSyncStatus | undefined, role: 'primary' | 'replica' | 'async-primary'): boolean {
    if (semiSync === undefined) return true;
    return (
      semiSync.masterEnabled !== (role === 'primary') ||
      !semiSync.slaveEnabled ||
      semiSync.waitPoint !== 'AFTER_SYNC' ||
      semiSync.timeoutMs !== this.#config.semiSync.timeoutMs
    );
  }

  /**
   * The primary side of semi-sync. The server never falls back to asynchronous on its own
   * (`rpl_semi_sync_master_timeout` very large by default): a primary cut off from its
   * replicas must not acknowledge a commit they never received. Only the manager, seeing
   * the primary alive and no replica of it receiving for `semiSync.asyncWhenAloneMs`,
   * switches it to asynchronous (when configured), and back once one receives again.
   */
  async #checkPrimarySemiSync(primary: MemberState): Promise<void> {
    const probe = primary.probe;
    if (!this.#config.semiSync.enabled || probe?.ok !== true) return;
    const name = primary.config.name;
    const now = this.#now();
    const receiving = [...this.#states.values()].filter(
      (state) =>
        state !== primary &&
        state.probe?.ok === true &&
        replicatesFrom(this.#view(state), primary.config) &&
        state.probe.replication?.ioRunning === 'Yes',
    );
    if (this.#semiSyncAlone?.primary !== name) this.#semiSyncAlone = undefined;
    const aloneAfter = this.#config.semiSync.asyncWhenAloneMs;
    let alone = this.#semiSyncAlone;
    if (receiving.length === 0) {
      alone ??= { primary: name, since: now, async: false };
      if (aloneAfter !== undefined && !alone.async && now - alone.since >= aloneAfter) {
        this.#fence(`switch ${name} to asynchronous replication`);
        await this.#withMember(primary, (c) =>
          configureSemiSync(c, this.#config.semiSync.timeoutMs, 'async-primary', false),
        );
        alone = { ...alone, async: true };
        this.#semiSyncAlone = alone;
        this.#raise(
          'semi-sync-off',
          name,
          'warning',
          `primary ${name} switched to asynchronous replication by the manager: no replica received from it for ${now - alone.since} ms (semiSync.asyncWhenAloneMs ${aloneAfter}); its commits are not protected until a replica receives again`,
          {
            aloneSinceMs: now - alone.since,
          },
        );
        return;
      }
      this.#semiSyncAlone = alone;
    } else if (alone !== undefined) {
      this.#semiSyncAlone = undefined;
      if (alone.async) {
        this.#fence(`switch ${name} back to semi-synchronous replication`);
        await this.#withMember(primary, (c) => configureSemiSync(c, this.#config.semiSync.timeoutMs, 'primary', false));
        this.#record({
          type: 'tuned',
          severity: 'info',
          member: name,
          message: `primary ${name} back to AFTER_SYNC semi-sync: ${receiving.map((s) => s.config.name).join(', ')} receive(s) again`,
        });
        return;
      }
    }
    const role = this.#semiSyncAlone?.async === true ? 'async-primary' : 'primary';
    const wantNetTimeout = probe.slaveNetTimeout !== this.#config.replication.slaveNetTimeoutSeconds;
    if (this.#semiSyncDrift(probe.semiSync, role) || wantNetTimeout) {
      this.#fence(`configure semi-sync on ${name}`);
      await this.#withMember(primary, async (c) => {
        await configureSemiSync(c, this.#config.semiSync.timeoutMs, role, false);
        await setSlaveNetTimeout(c, this.#config.replication.slaveNetTimeoutSeconds);
      });
      this.#record({
        type: 'tuned',
        severity: 'info',
        member: name,
        message: `configured AFTER_SYNC semi-sync on primary ${name}`,
      });
      return;
    }
    const semiSync = probe.semiSync;
    if (role === 'async-primary') return;
    if (semiSync !== undefined && semiSync.masterEnabled && !semiSync.masterStatus) {
      this.#raise(
        'semi-sync-off',
        name,
        'warning',
        `primary ${name} fell back to asynchronous replication: a commit waited ${this.#config.semiSync.timeoutMs} ms without a replica's acknowledgement (${semiSync.masterClients} semi-sync replica(s) connected)`,
        {
          semiSyncClients: semiSync.masterClients,
          unacknowledgedCommits: semiSync.masterNoTx,
        },
      );
    } else {
      this.#resolve('semi-sync-off', name, `primary ${name} replicates semi-synchronously again`);
    }
  }

  // ---------------------------------------------------------------- member restarts

  async #restartDeadMembers(): Promise<void> {
    const now = this.#now();
    for (const state of this.#states.values()) {
      const command = state.config.restartCommand;
      const probe = state.probe;
      if (command === undefined || probe === undefined || probe.ok || probe.error?.refused !== true) continue;
      if (
        state.restart.running ||
        state.downSince === undefined ||
        now - state.downSince < this.#config.repair.restartAfterMs ||
        now < state.restart.nextAt
      )
        continue;
      state.restart.running = true;
      state.restart.attempts += 1;
      const attempt = state.restart.attempts;
      const delay = Math.min(
        this.#config.repair.restartBackoffMaxMs,
        this.#config.repair.restartBackoffMs * 2 ** (attempt - 1),
      );
      state.restart.nextAt = now + delay;
      const name = state.config.name;
      try {
        const result = await runRestartCommand(command, this.#config.repair.restartTimeoutMs);
        this.#record({
          type: 'member-restart',
          severity: 'warning',
          member: name,
          message: `${name} refused connections for ${now - state.downSince} ms; ran its restart command (attempt ${attempt}): ${result.ok ? 'exited 0' : result.error}`,
          details: { attempt, command, ok: result.ok, output: result.output },
        });
        if (attempt >= this.#config.repair.restartAttemptsBeforeAlert) {
          this.#raise(
            'member-restart-failed',
            name,
            'critical',
            `${name} is still down after ${attempt} restart attempts${result.ok ? '' : `: ${result.error}`}`,
            { attempts: attempt, command },
          );
        }
      } finally {
        state.restart.running = false;
      }
    }
    for (const state of this.#states.values()) {
      if (state.probe?.ok === true)
        this.#resolve('member-restart-failed', state.config.name, `${state.config.name} answers again`);
    }
  }

  // ---------------------------------------------------------------- commands

  /**
   * Planned switchover to `to`: refuse unless it is a healthy replica of the primary; then
   * set the primary read-only, kill remaining writer connections, wait for the target to
   * reach the primary's last GTID, promote it, publish, and repoint the others (the old
   * primary becomes a replica). No transaction is lost: the target has all of them before
   * it takes writes.
   */
  async switchover(to: string): Promise<SwitchoverResult> {
    return this.#exclusive(async () => {
      // What a tick probed before or during it is stale once it changed roles (see #tick).
      this.#commandChanges += 1;
      try {
        return await this.#switchover(to);
      } finally {
        this.#commandChanges += 1;
      }
    });
  }

  async #switchover(to: string): Promise<SwitchoverResult> {
    await this.#requireLeader();
    const target = this.#states.get(to);
    if (target === undefined) {
      throw new InsituError(
        'INSITU_DBMANAGER_MEMBER_NOT_FOUND',
        `no member ${to}; members: ${[...this.#states.keys()].join(', ')}`,
      );
    }
    const primaryName = this.#topology.primary;
    const primary = primaryName === null ? undefined : this.#states.get(primaryName);
    if (primary === undefined) throw this.#refuse(to, 'no primary is known yet');
    if (primary === target) throw this.#refuse(to, `${to} is already the primary`);
    const options = {
      connectTimeoutMs: this.#config.probe.connectTimeoutMs,
      queryTimeoutMs: this.#config.probe.queryTimeoutMs,
    };
    const [primaryProbe, targetProbe] = await Promise.all([
      probeMember(primary.endpoint, options, this.#now),
      probeMember(target.endpoint, options, this.#now),
    ]);
    this.#absorb(primary, primaryProbe);
    this.#absorb(target, targetProbe);
    if (!primaryProbe.ok)
      throw this.#refuse(
        to,
        `primary ${primary.config.name} is unreachable (${primaryProbe.error?.message ?? '?'}); a failover handles that`,
      );
    if (!targetProbe.ok) throw this.#refuse(to, `${to} is unreachable: ${targetProbe.error?.message ?? '?'}`);
    if (target.config.neverPromote) throw this.#refuse(to, `${to} is marked neverPromote`);
    if (this.#topology.quarantined.some((q) => q.name === to)) throw this.#refuse(to, `${to} is quarantined`);
    if (this.#topology.pendingRejoin.some((p) => p.name === to)) throw this.#refuse(to, `${to} has not rejoined yet`);
    if (!replicatesFrom(this.#view(target), primary.config))
      throw this.#refuse(to, `${to} does not replicate from primary ${primary.config.name}`);
    const replication = targetProbe.replication as ReplicationStatus;
    if (replication.ioRunning !== 'Yes' || replication.sqlRunning !== 'Yes') {
      throw this.#refuse(
        to,
        `replication on ${to} is not running (IO ${replication.ioRunning}, SQL ${replication.sqlRunning}${replication.lastSqlError ? `: ${replication.lastSqlError}` : ''}${replication.lastIoError ? `: ${replication.lastIoError}` : ''})`,
      );
    }
    if (
      replication.secondsBehindMaster === null ||
      replication.secondsBehindMaster > this.#config.switchover.maxLagSeconds
    ) {
      throw this.#refuse(
        to,
        `${to} is ${replication.secondsBehindMaster ?? 'an unknown number of'} s behind (at most ${this.#config.switchover.maxLagSeconds} s allowed)`,
      );
    }

    const from = primary.config.name;
    this.#fence(`switch over to ${to}`);
    this.#record({
      type: 'switchover-started',
      severity: 'info',
      member: to,
      message: `switchover ${from} → ${to} started`,
    });
    const started = this.#now();
    const { gtid, killed } = await this.#withMember(primary, async (c) => {
      await c.query('SET SESSION lock_wait_timeout = ?', [this.#config.switchover.lockWaitTimeoutSeconds]);
      await setReadOnly(c, true);
      const killedConnections = await killClientConnections(c, this.#spareUsers());
      return { gtid: await binlogPosition(c), killed: killedConnections };
    });
    let caughtUp = false;
    try {
      caughtUp = await this.#withMember(target, (c) => waitForGtid(c, gtid, this.#config.switchover.catchUpTimeoutMs));
    } catch (error) {
      this.#logger.warn({ err: error }, 'switchover: waiting for the target failed');
    }
    if (!caughtUp) {
      await this.#withMember(primary, (c) => setReadOnly(c, false)).catch(() => undefined);
      this.#record({
        type: 'switchover-failed',
        severity: 'warning',
        member: to,
        message: `switchover ${from} → ${to} rolled back: ${to} did not reach ${gtid} within ${this.#config.switchover.catchUpTimeoutMs} ms`,
      });
      throw new InsituError(
        'INSITU_DBMANAGER_SWITCHOVER_FAILED',
        `${to} did not reach ${gtid} within ${this.#config.switchover.catchUpTimeoutMs} ms; ${from} is writable again`,
        {
          details: { rolledBack: true, gtid },
        },
      );
    }
    this.#fence(`promote ${to}`);
    const promotedAt = await this.#withMember(target, async (c) => {
      await detachReplica(c);
      return currentPosition(c);
    });
    await this.#publish({
      ...this.#topology,
      epoch: this.#topology.epoch + 1,
      primary: to,
      promotedAt,
      pendingRejoin: this.#topology.pendingRejoin.filter((p) => p.name !== to && p.name !== from),
    });
    await this.#withMember(target, async (c) => {
      if (this.#config.semiSync.enabled) await configureSemiSync(c, this.#config.semiSync.timeoutMs, 'primary', false);
      await setReadOnly(c, false);
    });
    const readOnlyMs = this.#now() - started;
    const source = this.#source(target.config);
    await this.#withMember(primary, (c) => demoteToReplica(c, source)).catch((error: unknown) => {
      this.#logger.warn({ err: error }, 'switchover: demoting the old primary failed; the next probe retries');
    });
    await Promise.all(
      [...this.#states.values()]
        .filter(
          (s) => s !== primary && s !== target && s.probe?.ok === true && replicatesFrom(this.#view(s), primary.config),
        )
        .map((s) => this.#withMember(s, (c) => repoint(c, source)).catch(() => undefined)),
    );
    const result: SwitchoverResult = {
      from,
      to,
      gtid,
      readOnlyMs,
      killedConnections: killed,
      epoch: this.#topology.epoch,
    };
    this.#record({
      type: 'switchover',
      severity: 'info',
      member: to,
      message: `switchover ${from} → ${to} done; writes refused for ${readOnlyMs} ms`,
      details: { ...result },
    });
    return result;
  }

  #refuse(to: string, reason: string): InsituError {
    this.#record({
      type: 'switchover-refused',
      severity: 'info',
      member: to,
      message: `switchover to ${to} refused: ${reason}`,
    });
    return new InsituError('INSITU_DBMANAGER_SWITCHOVER_REFUSED', `switchover to ${to} refused: ${reason}`, {
      details: { reason },
    });
  }

  async #requireLeader(): Promise<void> {
    if (this.#isLeading()) return;
    const leaderUrl = await this.leaderUrl();
    throw new InsituError(
      'INSITU_DBMANAGER_NOT_LEADER',
      `manager ${this.id} is not the elected one${leaderUrl ? `; ask ${leaderUrl}` : ''}`,
      {
        details: { leaderId: this.leaderId() ?? null, leaderUrl: leaderUrl ?? null },
      },
    );
  }

  /**
   * Acknowledge the last failover: the cooldown ends, so a primary failure (also one that
   * is blocked right now) is failed over automatically again.
   */
  async ack(by = 'an administrator'): Promise<{ cooldownWasActive: boolean; lastFailoverAt: string | null }> {
    return this.#exclusive(async () => {
      await this.#requireLeader();
      const now = this.#now();
      const cooldownWasActive = now < this.#topology.cooldownUntil;
      await this.#publish({ ...this.#topology, cooldownUntil: 0, acknowledgedAt: now });
      this.#record({
        type: 'ack',
        severity: 'info',
        message: `${by} acknowledged the last failover${cooldownWasActive ? '; automatic failover is allowed again' : ' (no cooldown was active)'}`,
      });
      return { cooldownWasActive, lastFailoverAt: iso(this.#topology.lastFailoverAt) };
    });
  }

  /** Topology, roles, GTID positions, lag, alerts and the last actions. */
  status(): ClusterStatus {
    const topology = this.#topology;
    const primary = topology.primary === null ? undefined : this.#states.get(topology.primary);
    const members = [...this.#states.values()].map((state): MemberStatus => {
      const probe = state.probe;
      const ok = probe?.ok === true;
      const replication = ok ? probe.replication : undefined;
      const name = state.config.name;
      let role: MemberStatus['role'] = 'unknown';
      if (name === topology.primary) role = 'primary';
      else if (topology.quarantined.some((q) => q.name === name)) role = 'quarantined';
      else if (!ok) role = 'down';
      else if (topology.pendingRejoin.some((p) => p.name === name)) role = 'rejoining';
      else if (primary !== undefined && replicatesFrom(this.#view(state), primary.config)) role = 'replica';
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
      cluster: this.#config.cluster,
      manager: { id: this.id, leader: this.#isLeading(), leaderId: this.leaderId() ?? null },
      epoch: topology.epoch,
      primary: topology.primary,
      promotedAt: topology.promotedAt,
      cooldown: {
        active: this.#now() < topology.cooldownUntil,
        until: topology.cooldownUntil > 0 ? iso(topology.cooldownUntil) : null,
        lastFailoverAt: iso(topology.lastFailoverAt),
      },
      quarantined: topology.quarantined,
      pendingRejoin: topology.pendingRejoin,
      members,
      alerts: this.#notifier.active().filter((alert) => alert.cluster === this.#config.cluster),
      events: this.#events.list(30),
    };
  }

  // ---------------------------------------------------------------- publishing, events, alerts

  async #publish(next: PublishedTopology): Promise<void> {
    const leadership = this.#leadership;
    if (leadership === undefined || !this.#isLeading()) {
      throw new InsituError(
        'INSITU_DBMANAGER_NOT_LEADER',
        `manager ${this.id} is no longer the leader; not publishing`,
      );
    }
    const topology: PublishedTopology = { ...next, updatedAt: this.#now(), updatedBy: this.id };
    await leadership.fencedPut(this.#keys.topology, JSON.stringify(topology));
    const primary = topology.primary === null ? undefined : this.#states.get(topology.primary);
    if (primary !== undefined) {
      const record: PublishedPrimary = {
        member: primary.config.name,
        host: primary.config.host,
        port: primary.config.port,
        epoch: topology.epoch,
      };
      await leadership.fencedPut(this.#keys.primary, JSON.stringify(record));
    }
    this.#topology = topology;
  }

  #record(input: Parameters<EventLog['add']>[0]): void {
    const event = this.#events.add(input);
    this.#metrics.actions.inc({ type: event.type });
    const level = event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
    this.#logger[level]({ event: event.type, member: event.member, details: event.details }, event.message);
    this.emit('event', event);
    const leadership = this.#leadership;
    if (leadership !== undefined && this.#isLeading()) {
      leadership
        .fencedPut(this.#keys.event(event.id), JSON.stringify(event))
        .then(async () => {
          this.#publishedEventIds.push(event.id);
          while (this.#publishedEventIds.length > this.#config.events.keep) {
            const oldest = this.#publishedEventIds.shift();
            if (oldest !== undefined) await leadership.fencedDelete(this.#keys.event(oldest));
          }
        })
        .catch((error: unknown) => this.#logger.warn({ err: error }, 'cannot publish an event in coord'));
    }
  }

  /** Raise an alert; the first raise (and each repeat) is also an event. */
  #raise(
    condition: string,
    subject: string,
    severity: Severity,
    summary: string,
    details: Record<string, unknown>,
  ): void {
    const sent = this.#notifier.raise({
      cluster: this.#config.cluster,
      condition,
      subject,
      severity,
      summary,
      details,
    });
    if (sent)
      this.#record({ type: condition, severity, ...(subject ? { member: subject } : {}), message: summary, details });
  }

  #resolve(condition: string, subject: string, summary: string): void {
    if (this.#notifier.resolve({ cluster: this.#config.cluster, condition, subject }, summary)) {
      this.#record({
        type: `${condition}-resolved`,
        severity: 'info',
        ...(subject ? { member: subject } : {}),
        message: summary,
      });
    }
  }
}
