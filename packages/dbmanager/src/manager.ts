import { EventEmitter } from 'node:events';
import { sleep, type Logger, type Registry } from '@insitu/core';
import type { Notifier } from '@insitu/notify';
import type { DbManagerConfig, ResolvedSecrets } from './config.js';
import type { Coordinator, WatchHandle } from './coord-port.js';
import type { ManagerEvent } from './events.js';
import { ManagerContext } from './manager/context.js';
import { evaluate } from './manager/evaluate.js';
import { acknowledgeFailover } from './manager/failover-decision.js';
import { campaign, leaderId, leaderUrl, loadTopology, publishRecord } from './manager/leadership.js';
import { restartDeadMembers } from './manager/member-restarts.js';
import { probeAll } from './manager/probing.js';
import { commitAlerts, publishAlerts } from './manager/publishing.js';
import { clusterStatus, type ClusterStatus } from './manager/status.js';
import { switchover, type SwitchoverResult } from './manager/switchover.js';
import { electionName, parseRecord, PublishedTopologySchema, type PublishedTopology } from './topology.js';

export type { ProbeRecord } from './manager/member-state.js';
export type { ClusterStatus, MemberStatus } from './manager/status.js';
export type { SwitchoverResult } from './manager/switchover.js';

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

/**
 * The MySQL-Manager: probes every member, keeps the topology and each member's health
 * history, and — while elected — repairs the cluster: replica-confirmed failover,
 * fencing and rejoin of a returning primary (or quarantine when it holds errant
 * transactions), replication restarts, member restarts, semi-sync, switchover on command,
 * a cooldown against flapping. Every change of the cluster is published in coord and
 * fenced on this manager's leadership; every event is logged, kept for `status()`, and
 * alerted through notify when someone must act.
 *
 * This class only orchestrates: the loop, the lock between the loop and commands, start
 * and stop. Each concern is a module of `./manager/` over a shared {@link ManagerContext}
 * (see the package README's file map).
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
  readonly registry: Registry;
  readonly #ctx: ManagerContext;
  #watch: WatchHandle | undefined;
  #loop: Promise<void> | undefined;
  #lock: Promise<unknown> = Promise.resolve();
  #started = false;
  /** Counts commands that changed roles or replication (switchovers): probes taken across one are stale. */
  #commandChanges = 0;

  constructor(options: DbManagerOptions) {
    super();
    this.#ctx = new ManagerContext({ ...options, emit: (name, ...args) => this.emit(name, ...args) });
    const ctx = this.#ctx;
    // Nothing leaves before the next leader could know of it (see commitAlerts).
    ctx.notifier.setCommit((message) => commitAlerts(ctx, message));
    this.id = this.#ctx.id;
    this.registry = this.#ctx.registry;
  }

  /** Where others reach this manager's admin API (set by the admin server once it listens). */
  setAdminUrl(url: string): void {
    this.#ctx.adminUrl = url;
  }

  /** Start probing, publish this manager's record, and run for leadership. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const ctx = this.#ctx;
    await loadTopology(ctx);
    ctx.peers.seed(await ctx.coord.list(ctx.keys.managers).catch(() => new Map<string, string>()), ctx.keys.managers);
    this.#watch = await ctx.coord.watchPrefix(ctx.keys.prefix, (event) => {
      if (event.key.startsWith(ctx.keys.managers))
        ctx.peers.apply(event.key.slice(ctx.keys.managers.length), event.type);
      if (event.key !== ctx.keys.topology || event.type !== 'put' || ctx.isLeading()) return;
      try {
        const topology = parseRecord(PublishedTopologySchema, event.value, 'published topology');
        if (topology) ctx.topology = topology;
      } catch (error) {
        ctx.logger.warn({ err: error }, 'ignoring an invalid published topology');
      }
    });
    ctx.observer = await ctx.coord.observe(electionName(ctx.config.cluster));
    await publishRecord(ctx);
    campaign(ctx);
    this.#loop = this.#run();
  }

  /** Stop acting and probing; resign so that another manager takes over at once. */
  async stop(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx.abort.signal.aborted) return;
    ctx.abort.abort();
    await this.#loop;
    await this.#lock.catch(() => undefined);
    if (ctx.elected && ctx.leadership?.isLeader() === true) {
      // Hand the alerts over before resigning: send what is pending, publish what is active (fenced).
      await ctx.notifier.flush().catch(() => undefined);
      await publishAlerts(ctx, { stopping: true }).catch((error: unknown) =>
        ctx.logger.warn({ err: error }, 'cannot publish the active alerts in coord'),
      );
    }
    const leadership = ctx.leadership;
    ctx.leadership = undefined;
    ctx.elected = false;
    ctx.metrics.leader.set(0);
    await leadership?.resign().catch(() => undefined);
    await ctx.lease?.revoke().catch(() => undefined);
    await this.#watch?.close().catch(() => undefined);
    await ctx.observer?.close().catch(() => undefined);
    if (ctx.ownsNotifier) await ctx.notifier.close();
  }

  /** True while this manager is elected and its lease is fresh. */
  isLeader(): boolean {
    return this.#ctx.isLeading();
  }

  /** The id of the elected manager, if any. */
  leaderId(): string | undefined {
    return leaderId(this.#ctx);
  }

  /** The admin URL of the elected manager, read from coord. */
  leaderUrl(): Promise<string | undefined> {
    return leaderUrl(this.#ctx);
  }

  /** The recorded events, newest last. */
  events(limit?: number): ManagerEvent[] {
    return this.#ctx.events.list(limit);
  }

  /** The published topology this manager works from. */
  topology(): PublishedTopology {
    return structuredClone(this.#ctx.topology);
  }

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
        return await switchover(this.#ctx, to);
      } finally {
        this.#commandChanges += 1;
      }
    });
  }

  /**
   * Acknowledge the last failover: the cooldown ends, so a primary failure (also one that
   * is blocked right now) is failed over automatically again.
   */
  async ack(by = 'an administrator'): Promise<{ cooldownWasActive: boolean; lastFailoverAt: string | null }> {
    return this.#exclusive(() => acknowledgeFailover(this.#ctx, by));
  }

  /** Topology, roles, GTID positions, lag, alerts and the last actions. */
  status(): ClusterStatus {
    return clusterStatus(this.#ctx);
  }

  /** Run `fn` alone: the loop's repairs and commands (switchover, ack) never interleave. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.catch(() => undefined).then(fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  async #run(): Promise<void> {
    const ctx = this.#ctx;
    const signal = ctx.abort.signal;
    while (!signal.aborted) {
      const started = ctx.now();
      try {
        await this.#tick();
      } catch (error) {
        ctx.logger.error({ err: error }, 'manager tick failed');
      }
      const interval = ctx.suspect ? ctx.config.detection.suspectIntervalMs : ctx.config.probe.intervalMs;
      await sleep(Math.max(0, interval - (ctx.now() - started)), signal);
    }
  }

  async #tick(): Promise<void> {
    const ctx = this.#ctx;
    const changes = this.#commandChanges;
    await probeAll(ctx);
    if (ctx.isLeading()) {
      await this.#exclusive(async () => {
        // A switchover ran while these probes were taken: they show the roles from before it
        // (the old primary writable and replicating from nobody, the others from it), and
        // acting on them would "rejoin" members the switchover just repointed. Probe again.
        if (this.#commandChanges !== changes) return;
        await evaluate(ctx);
        await publishAlerts(ctx).catch((error: unknown) =>
          ctx.logger.warn({ err: error }, 'cannot publish the active alerts in coord'),
        );
      });
    } else {
      ctx.suspect = false;
    }
    // Restarting a local process is this node's business, leader or not.
    await restartDeadMembers(ctx);
  }
}
