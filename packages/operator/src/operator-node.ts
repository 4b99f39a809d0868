import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION, sleep, type Logger, type Registry } from '@insitu/core';
import type { Coordinator, Lease, Leadership, WatchHandle } from '@insitu/coord';
import { isPlaced, type ClusterSpec, type StoredSpec } from './cluster-spec.js';
import type { DeepProber } from './deep-probe.js';
import { EventLog } from './event-log.js';
import { KEYS, memberKey, nodeKey } from './keys.js';
import { Leader } from './leader.js';
import type { NodeConfig } from './node-config.js';
import { parseRecord, type NodeRecord, type PlacementRecord, type RestartRequest } from './records.js';
import { ServiceSupervisor } from './supervisor.js';

/** Options of {@link OperatorNode}. */
export interface OperatorNodeOptions {
  config: Readonly<NodeConfig>;
  coordinator: Coordinator;
  logger: Logger;
  registry?: Registry;
  deepProber?: DeepProber;
  random?: () => number;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));

/**
 * `insitu node`: this management node in the operator. It keeps a node lease and its
 * record in coord, runs this node's platform services as supervised children (every-node
 * services always, placed ones where the leader put them), carries out restarts asked of
 * it, and takes part in the leader election; when elected it runs a {@link Leader}.
 *
 * **Patroni's rule.** When its lease is lost (no keep-alive succeeded for a TTL by its own
 * clock, which runs out before etcd expires the lease), it stops its placed services at
 * once, since the leader may be moving them; every-node services (the server) keep running.
 * It keeps trying for a new lease and, once it has one, runs what the placements say.
 */
export class OperatorNode {
  readonly #options: OperatorNodeOptions;
  readonly events: EventLog;
  readonly #supervisors = new Map<string, ServiceSupervisor>();
  #spec: ClusterSpec | undefined;
  #specDigests = new Map<string, string>();
  #placements = new Map<string, PlacementRecord>();
  #lease: Lease | undefined;
  #watches: WatchHandle[] = [];
  #publishTimer: NodeJS.Timeout | undefined;
  #publishSoon: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #abort = new AbortController();
  #leader: Leader | undefined;
  #leadership: Leadership | undefined;
  #campaign: Promise<void> | undefined;
  #leaseLoop: Promise<void> | undefined;
  #reconciling: Promise<void> = Promise.resolve();
  #startedAt = new Date().toISOString();
  #handledRestarts = new Set<string>();

  constructor(options: OperatorNodeOptions) {
    this.#options = options;
    this.events = new EventLog(options.coordinator, options.config.node, options.logger.child({ subsystem: 'events' }));
  }

  get name(): string {
    return this.#options.config.node;
  }

  /** True while this node leads the operator. */
  isLeader(): boolean {
    return this.#leadership?.isLeader() ?? false;
  }

  /** The supervisor of a service on this node (tests, status). */
  supervisor(service: string): ServiceSupervisor | undefined {
    return this.#supervisors.get(service);
  }

  /** Join: wait for coord, take a lease, publish, watch the spec and placements, campaign. */
  async start(): Promise<void> {
    const { coordinator, config, logger } = this.#options;
    // The record first, then the membership: a member without a record is a lost node.
    await this.#takeLease();
    for (let attempt = 0; ; attempt++) {
      try {
        await coordinator.put(memberKey(config.node), JSON.stringify({ node: config.node, joinedAt: this.#startedAt }));
        break;
      } catch (error) {
        if (this.#closed) return;
        if (attempt % 10 === 0) logger.warn({ err: (error as Error).message }, 'coord does not answer yet; retrying');
        await sleep(1000, this.#abort.signal);
      }
    }
    this.events.record({
      type: 'node-started',
      subject: config.node,
      reason: `${config.node} joined (pid ${process.pid}, can run ${Object.keys(config.services).join(', ') || 'nothing'})`,
    });
    this.#watches.push(
      await coordinator.watchPrefix(KEYS.spec, () => this.#reconcileSoon()),
      await coordinator.watchPrefix(KEYS.placements, () => this.#reconcileSoon()),
      await coordinator.watchPrefix(`${KEYS.restarts}${config.node}/`, () => this.#reconcileSoon()),
    );
    await this.#reconcile();
    this.#publishTimer = setInterval(() => void this.#publish(), config.timing.nodeRenewMs);
    this.#campaign = this.#campaignLoop();
  }

  async #takeLease(): Promise<void> {
    const { coordinator, config, logger } = this.#options;
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const lease = await coordinator.grantLease(config.timing.nodeLeaseTtlMs);
        lease.on('lost', (reason) => this.#onLeaseLost(lease, reason));
        lease.on('renewed', (sentAt: number) => {
          for (const [name, supervisor] of this.#supervisors)
            if (this.#isPlacedService(name)) supervisor.extendLease(sentAt + lease.ttlMs);
        });
        this.#lease = lease;
        await this.#publish();
        return;
      } catch (error) {
        if (attempt % 10 === 0) logger.warn({ err: (error as Error).message }, 'cannot get a node lease; retrying');
        await sleep(Math.min(1000, config.timing.nodeRenewMs), this.#abort.signal);
      }
    }
  }

  #onLeaseLost(lease: Lease, reason: Error): void {
    if (this.#lease !== lease || this.#closed) return;
    this.#lease = undefined;
    const placed = [...this.#supervisors.entries()]
      .filter(([name, s]) => this.#isPlacedService(name) && s.pid !== undefined)
      .map(([name]) => name);
    this.events.record({
      type: 'lease-lost',
      subject: this.name,
      reason: `${this.name} lost its node lease (${reason.message})${placed.length > 0 ? `: stopping its placed services ${placed.join(', ')} (the leader may move them)` : ''}; every-node services keep running`,
    });
    this.#reconcileSoon();
    this.#leaseLoop ??= this.#takeLease().finally(() => {
      this.#leaseLoop = undefined;
      this.#reconcileSoon();
    });
  }

  /** The node lease's own deadline: the store cannot expire it before then. */
  #leaseDeadline(): number | undefined {
    const lease = this.#lease;
    return lease?.isAlive() ? lease.lastRenewedAt + lease.ttlMs : undefined;
  }

  #isPlacedService(name: string): boolean {
    const spec = this.#spec?.services[name];
    return spec !== undefined && isPlaced(spec.placement);
  }

  async #campaignLoop(): Promise<void> {
    const { coordinator, config, logger } = this.#options;
    while (!this.#closed) {
      const leadership = coordinator.campaign(KEYS.election, config.node, { ttlMs: config.timing.leaderLeaseTtlMs });
      this.#leadership = leadership;
      try {
        await leadership.whenElected();
      } catch {
        if (this.#closed) return;
        await sleep(config.timing.leaderRetryMs, this.#abort.signal);
        continue;
      }
      if (this.#closed) break;
      const leader = new Leader({
        node: config.node,
        config,
        coordinator,
        leadership,
        events: this.events,
        logger: logger.child({ subsystem: 'leader' }),
        ...(this.#options.registry ? { registry: this.#options.registry } : {}),
        ...(this.#options.deepProber ? { deepProber: this.#options.deepProber } : {}),
      });
      this.#leader = leader;
      await leader.run();
      this.#leader = undefined;
      if (!this.#closed) await sleep(config.timing.leaderRetryMs, this.#abort.signal);
    }
  }

  #reconcileSoon(): void {
    this.#reconciling = this.#reconciling
      .then(() => this.#reconcile())
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'reconcile failed'));
  }

  /** Bring this node's children in line with the spec, the placements and the restart requests. */
  async #reconcile(): Promise<void> {
    if (this.#closed) return;
    const { coordinator, config, logger } = this.#options;
    let stored: StoredSpec | undefined;
    let placements: Map<string, string>;
    let restarts: Map<string, string>;
    try {
      [stored, placements, restarts] = await Promise.all([
        coordinator.get(KEYS.spec).then((text) => parseRecord<StoredSpec>(text)),
        coordinator.list(KEYS.placements),
        coordinator.list(`${KEYS.restarts}${config.node}/`),
      ]);
      this.#spec = stored?.spec;
      this.#placements = new Map();
      for (const [key, value] of placements) {
        const record = parseRecord<PlacementRecord>(value);
        if (record) this.#placements.set(key.slice(KEYS.placements.length), record);
      }
    } catch (error) {
      // Coord unreachable: keep running what runs, except placed services once the lease is gone.
      logger.debug({ err: (error as Error).message }, 'reconcile without coord');
      restarts = new Map();
    }
    const spec = this.#spec;
    const leaseAlive = this.#lease?.isAlive() ?? false;
    for (const [name, supervisor] of this.#supervisors) {
      if (!spec?.services[name] || !config.services[name]) {
        await supervisor.stop(`${name} is no longer in the cluster spec`);
        this.#supervisors.delete(name);
        this.#specDigests.delete(name);
      }
    }
    if (!spec) {
      this.#publishSoonish();
      return;
    }
    for (const [name, serviceSpec] of Object.entries(spec.services)) {
      const command = config.services[name];
      if (!command) continue;
      const wanted = isPlaced(serviceSpec.placement)
        ? leaseAlive && (this.#placements.get(name)?.nodes.includes(config.node) ?? false)
        : true;
      let supervisor = this.#supervisors.get(name);
      const digest = JSON.stringify([serviceSpec, command]);
      if (!supervisor) {
        supervisor = new ServiceSupervisor({
          name,
          command,
          spec: serviceSpec,
          logDir: join(config.dataDir, 'logs'),
          logger: logger.child({ subsystem: 'supervisor' }),
          record: (event) => this.events.record(event),
          ...(SETPRIV ? { deathSignalWrapper: [SETPRIV, '--pdeathsig', 'KILL', '--'] } : {}),
          ...(this.#options.random ? { random: this.#options.random } : {}),
          ...(isPlaced(serviceSpec.placement) ? { leaseDeadline: () => this.#leaseDeadline() } : {}),
        });
        supervisor.on('change', () => this.#publishSoonish());
        this.#supervisors.set(name, supervisor);
        this.#specDigests.set(name, digest);
      } else if (this.#specDigests.get(name) !== digest) {
        this.#specDigests.set(name, digest);
        if (wanted) await supervisor.update(serviceSpec, command);
      }
      const restart = parseRecord<RestartRequest>(restarts.get(`${KEYS.restarts}${config.node}/${name}`));
      if (restart && !this.#handledRestarts.has(restart.id) && supervisor.status().restartDone !== restart.id) {
        this.#handledRestarts.add(restart.id);
        if (wanted) {
          await supervisor.restart(restart.reason, restart.id);
        } else {
          // Not to run here: a restart only clears its failed mark, so the leader may place it here again.
          await supervisor.stop(restart.reason);
          await supervisor.update(serviceSpec, command);
          await supervisor.restart(restart.reason, restart.id);
          await supervisor.stop(`${name} is placed elsewhere`);
        }
        this.#publishSoonish();
        continue;
      }
      if (wanted) supervisor.start();
      else if (supervisor.pid !== undefined || supervisor.state === 'backoff') {
        await supervisor.stop(
          leaseAlive
            ? `${name} is placed on ${this.#placements.get(name)?.nodes.join(', ') || 'no node'}`
            : `${this.name} has no node lease: a placed service stops (Patroni's rule)`,
        );
      }
    }
    this.#publishSoonish();
  }

  #record(): NodeRecord {
    const { config } = this.#options;
    const services: NodeRecord['services'] = {};
    for (const [name, supervisor] of this.#supervisors) {
      const command = config.services[name];
      services[name] = {
        ...supervisor.status(),
        ...(command?.health ? { endpoint: command.health } : {}),
        placed: this.#isPlacedService(name),
      };
    }
    return {
      node: config.node,
      pid: process.pid,
      version: VERSION,
      startedAt: this.#startedAt,
      heartbeatAt: new Date().toISOString(),
      capable: Object.keys(config.services),
      services,
    };
  }

  #publishSoonish(): void {
    if (this.#publishSoon) return;
    this.#publishSoon = setTimeout(() => {
      this.#publishSoon = undefined;
      void this.#publish();
    }, 20);
  }

  async #publish(): Promise<void> {
    const lease = this.#lease;
    if (!lease?.isAlive() || this.#closed) return;
    try {
      await this.#options.coordinator.put(nodeKey(this.name), JSON.stringify(this.#record()), { lease });
    } catch (error) {
      this.#options.logger.debug({ err: (error as Error).message }, 'could not publish the node record');
    }
  }

  /** Leave: stop leading (handing over), stop every service, revoke the lease. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    if (this.#publishTimer) clearInterval(this.#publishTimer);
    if (this.#publishSoon) clearTimeout(this.#publishSoon);
    await this.#leader?.stop();
    await this.#leadership?.resign().catch(() => undefined);
    await this.#campaign?.catch(() => undefined);
    await this.#reconciling.catch(() => undefined);
    await Promise.all([...this.#supervisors.values()].map((s) => s.close()));
    this.events.record({
      type: 'node-stopped',
      subject: this.name,
      reason: `${this.name} left (its services stopped)`,
    });
    await this.events.flush();
    await Promise.all(this.#watches.map((w) => w.close().catch(() => undefined)));
    await this.#lease?.revoke().catch(() => undefined);
  }
}
