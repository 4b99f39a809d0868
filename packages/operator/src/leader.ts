import type { Logger, Registry } from '@insitu/core';
import type { Coordinator, Leadership } from '@insitu/coord';
import { OperatorAlerts, type AlertCondition, type PublishedAlerts } from './alerts.js';
import { isPlaced, type StoredSpec } from './cluster-spec.js';
import { DeepConditionGate, type DeepProber, type ProbeTarget } from './deep-probe.js';
import type { EventLog } from './event-log.js';
import { KEYS, placementKey, restartKey } from './keys.js';
import type { NodeConfig } from './node-config.js';
import { place, type NodeView } from './placement.js';
import {
  parseRecord,
  type CommandRecord,
  type NodeRecord,
  type OperatorEvent,
  type PlacementRecord,
  type RestartRequest,
  type Silence,
} from './records.js';

const KEEP_EVENTS = 1000;

/** What the leader reads from coord at each tick. */
interface ClusterView {
  spec: StoredSpec | undefined;
  members: Set<string>;
  records: Map<string, NodeRecord>;
  placements: Map<string, PlacementRecord>;
  silences: Silence[];
  commands: CommandRecord[];
}

/** Options of {@link Leader}. */
export interface LeaderOptions {
  node: string;
  config: Readonly<NodeConfig>;
  coordinator: Coordinator;
  leadership: Leadership;
  events: EventLog;
  logger: Logger;
  registry?: Registry;
  deepProber?: DeepProber;
}

/**
 * The operator's leader, for as long as it leads: every tick it reads the cluster (spec,
 * members, node records, placements, silences, commands) and acts. Every write it makes
 * is fenced (an etcd transaction on its election key's create revision), and it checks
 * `isLeader()` (false from 2/3 of the lease after its last renewal) before each step, so
 * a leader paused past its lease acts on nothing when it wakes: its writes are refused.
 */
export class Leader {
  readonly #options: LeaderOptions;
  readonly #electedAt = Date.now();
  readonly #missingSince = new Map<string, number>();
  readonly #lost = new Set<string>();
  #alerts: OperatorAlerts | undefined;
  #lastPublishedAlerts = '';
  #alertsPublishing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;
  #done: Promise<void>;
  #resolveDone: () => void = () => undefined;
  #command: Promise<void> | undefined;
  #lastDeepProbe = 0;
  #deepConditions: AlertCondition[] = [];
  #deepGate = new DeepConditionGate(1);
  #deepProbing: Promise<void> | undefined;
  #lastView: ClusterView | undefined;

  constructor(options: LeaderOptions) {
    this.#options = options;
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  get token(): number | undefined {
    return this.#options.leadership.token;
  }

  /** Lead until the leadership ends or {@link stop} is called. */
  async run(): Promise<void> {
    const { options } = { options: this.#options };
    const restored = parseRecord<PublishedAlerts>(await options.coordinator.get(KEYS.alerts).catch(() => undefined));
    this.#alerts = new OperatorAlerts({
      config: options.config,
      node: options.node,
      record: (event) => options.events.record(event),
      logger: options.logger,
      ...(restored ? { restored: restored.active } : {}),
      // A message goes out only once the next leader could know of it: before, a leader deposed
      // between a message and its tick's publish left a state without it, and the next leader
      // announced the alert a second time (3+2 bed, node loss of the leader's node).
      commit: (published) => this.#publishAlerts(published),
    });
    this.#deepGate = new DeepConditionGate(
      options.config.timing.deepProbeFailuresBeforeAlert,
      (restored?.active ?? []).map((a) => a.item),
    );
    options.events.record({
      type: 'leader-elected',
      subject: options.node,
      reason: `${options.node} leads the operator (fencing token ${options.leadership.token ?? '?'})`,
      details: { fencingToken: options.leadership.token ?? null },
    });
    const onLost = (reason: Error) => {
      options.events.record({
        type: 'leader-lost',
        subject: options.node,
        reason: `${options.node} stopped leading: ${reason.message}`,
      });
      this.#finish(true);
    };
    options.leadership.on('lost', onLost);
    const loop = () => {
      if (this.#stopped) return;
      this.#ticking = this.#tick()
        .catch((error: unknown) => options.logger.warn({ err: error }, 'leader tick failed'))
        .finally(() => {
          this.#ticking = undefined;
          if (!this.#stopped) this.#timer = setTimeout(loop, options.config.timing.tickMs);
        });
    };
    loop();
    await this.#done;
    options.leadership.off('lost', onLost);
  }

  /** Stop leading (the node shuts down): resign, sending what alerts are pending first. */
  async stop(): Promise<void> {
    this.#finish(false);
    await this.#done;
    await this.#options.leadership.resign().catch(() => undefined);
  }

  #finish(deposed: boolean): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const alerts = this.#alerts;
    void (async () => {
      await this.#ticking?.catch(() => undefined);
      await alerts?.close({ deposed }).catch(() => undefined);
      this.#resolveDone();
    })();
  }

  /** Publish the alerts to hand over when they changed; one publish at a time, so none lands after a later one. */
  #publishAlerts(published: PublishedAlerts): Promise<void> {
    const run = this.#alertsPublishing.then(async () => {
      const text = JSON.stringify(published.active);
      if (text === this.#lastPublishedAlerts) return;
      await this.#options.leadership.fencedPut(KEYS.alerts, JSON.stringify(published));
      this.#lastPublishedAlerts = text;
    });
    this.#alertsPublishing = run.catch(() => undefined);
    return run;
  }

  #leads(): boolean {
    return !this.#stopped && this.#options.leadership.isLeader();
  }

  async #read(): Promise<ClusterView> {
    const { coordinator } = this.#options;
    const [spec, members, records, placements, silences, commands] = await Promise.all([
      coordinator.get(KEYS.spec),
      coordinator.list(KEYS.members),
      coordinator.list(KEYS.nodes),
      coordinator.list(KEYS.placements),
      coordinator.list(KEYS.silences),
      coordinator.list(KEYS.commands),
    ]);
    const view: ClusterView = {
      spec: parseRecord<StoredSpec>(spec),
      members: new Set([...members.keys()].map((key) => key.slice(KEYS.members.length))),
      records: new Map(),
      placements: new Map(),
      silences: [],
      commands: [],
    };
    for (const [key, value] of records) {
      const record = parseRecord<NodeRecord>(value);
      if (record) view.records.set(key.slice(KEYS.nodes.length), record);
    }
    for (const [key, value] of placements) {
      const record = parseRecord<PlacementRecord>(value);
      if (record) view.placements.set(key.slice(KEYS.placements.length), record);
    }
    for (const value of silences.values()) {
      const silence = parseRecord<Silence>(value);
      if (silence) view.silences.push(silence);
    }
    for (const value of commands.values()) {
      const command = parseRecord<CommandRecord>(value);
      if (command) view.commands.push(command);
    }
    view.commands.sort((a, b) => a.id.localeCompare(b.id));
    return view;
  }

  async #tick(): Promise<void> {
    if (!this.#leads()) return;
    const view = await this.#read();
    this.#lastView = view;
    if (!this.#leads()) return;
    const { events, leadership, config, node } = this.#options;
    const now = Date.now();
    const lostGrace = config.timing.lostGraceMs ?? 2 * config.timing.nodeRenewMs;

    // Node loss: a member without a live record. Right after an election, nodes get a
    // moment to publish (they may have just re-granted their lease after an etcd outage).
    for (const member of view.members) {
      if (view.records.has(member)) this.#missingSince.delete(member);
      else if (!this.#missingSince.has(member)) this.#missingSince.set(member, now);
    }
    for (const member of view.members) {
      const missing = this.#missingSince.get(member);
      const lost = missing !== undefined && now - this.#electedAt >= lostGrace;
      if (lost && !this.#lost.has(member)) {
        this.#lost.add(member);
        events.record({
          type: 'node-lost',
          subject: member,
          reason: `${member} is lost: its lease lapsed (no record for ${Math.round((now - missing) / 1000)} s)`,
        });
      } else if (!lost && this.#lost.has(member)) {
        this.#lost.delete(member);
        events.record({ type: 'node-back', subject: member, reason: `${member} is back: it renewed its lease` });
      }
    }
    for (const lost of [...this.#lost]) if (!view.members.has(lost)) this.#lost.delete(lost);

    const views = new Map<string, NodeView>();
    for (const member of new Set([...view.members, ...view.records.keys()])) {
      views.set(member, { node: member, live: view.records.has(member), record: view.records.get(member) });
    }

    const conditions: AlertCondition[] = [];
    for (const lost of this.#lost) {
      conditions.push({
        condition: 'node-lost',
        subject: lost,
        severity: 'critical',
        summary: `node ${lost} is lost (its lease lapsed)`,
        details: { node: lost },
      });
    }
    for (const [nodeName, record] of view.records) {
      for (const [service, status] of Object.entries(record.services)) {
        if (status.failed) {
          conditions.push({
            condition: 'service-failed',
            subject: `${service}@${nodeName}`,
            severity: 'critical',
            summary: `${service} failed on ${nodeName}: ${status.failed.reason}`,
            details: { node: nodeName, service, since: status.failed.at, lastExit: status.lastExit?.reason ?? null },
          });
        }
      }
    }

    // Placement of `count: N` services.
    const spec = view.spec?.spec;
    if (spec) {
      const load = new Map<string, number>();
      for (const [service, placement] of view.placements) {
        if (spec.services[service] && isPlaced(spec.services[service].placement))
          for (const n of placement.nodes) load.set(n, (load.get(n) ?? 0) + 1);
      }
      for (const [service, serviceSpec] of Object.entries(spec.services)) {
        if (!isPlaced(serviceSpec.placement)) continue;
        const current = view.placements.get(service)?.nodes ?? [];
        const decision = place(service, serviceSpec.placement.count, current, views, load);
        if (decision.changed) {
          if (!this.#leads()) return;
          const record: PlacementRecord = {
            service,
            nodes: decision.nodes,
            leader: node,
            token: leadership.token ?? 0,
            at: new Date().toISOString(),
            reason: decision.reason,
          };
          await leadership.fencedPut(placementKey(service), JSON.stringify(record));
          for (const n of current) load.set(n, Math.max(0, (load.get(n) ?? 0) - 1));
          for (const n of decision.nodes) load.set(n, (load.get(n) ?? 0) + 1);
          events.record({
            type: current.length === 0 ? 'placed' : 'moved',
            service,
            reason: decision.reason,
            details: { from: current, to: decision.nodes, fencingToken: record.token },
          });
        }
        if (decision.short > 0) {
          conditions.push({
            condition: 'placement-unsatisfied',
            subject: service,
            severity: 'critical',
            summary: `${service} runs on ${decision.nodes.length} of ${serviceSpec.placement.count} nodes: too few eligible nodes`,
            details: { service, nodes: decision.nodes, wanted: serviceSpec.placement.count },
          });
        }
      }
      for (const service of view.placements.keys()) {
        if (!spec.services[service] || !isPlaced(spec.services[service].placement)) {
          if (!this.#leads()) return;
          await leadership.fencedDelete(placementKey(service));
          events.record({ type: 'unplaced', service, reason: `${service} is no longer a placed service in the spec` });
        }
      }
    }

    // Commands (restarts), one at a time, beside the ticks.
    const next = view.commands.find((c) => c.state === 'pending' || c.state === 'running');
    if (next && !this.#command && spec) {
      this.#command = this.#runCommand(next).finally(() => (this.#command = undefined));
    }

    // Deep probes, beside the ticks.
    if (
      spec?.deepProbes.enabled &&
      this.#options.deepProber &&
      !this.#deepProbing &&
      now - this.#lastDeepProbe >= config.timing.deepProbeIntervalMs
    ) {
      this.#lastDeepProbe = now;
      const prober = this.#options.deepProber;
      const servers = [...view.records.values()]
        .filter(
          (r) =>
            r.services[spec.deepProbes.service]?.state === 'ready' && r.services[spec.deepProbes.service]?.endpoint,
        )
        .map((r) => ({ node: r.node, url: r.services[spec.deepProbes.service]?.endpoint ?? '' }));
      this.#deepProbing = prober
        .run({ servers, leads: () => this.#leads() })
        .then(async (found) => {
          this.#deepConditions = this.#deepGate.admit(found);
          const target = servers[0];
          if (target && prober.pushEvents) await this.#copyEvents(target, prober.pushEvents.bind(prober));
        })
        .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'deep probes failed to run'))
        .finally(() => (this.#deepProbing = undefined));
    }
    conditions.push(...this.#deepConditions);

    // Silences that ended are removed.
    for (const silence of view.silences) {
      if (Date.parse(silence.endsAt) <= now) {
        if (!this.#leads()) return;
        await leadership.fencedDelete(`${KEYS.silences}${silence.id}`);
        events.record({
          type: 'silence-expired',
          subject: silence.id,
          reason: `silence ${silence.id} (${silence.matchers.map((m) => `${m.label}=${m.value}`).join(',')}) ended`,
        });
      }
    }

    if (!this.#leads()) return;
    this.#alerts?.evaluate(conditions, this.#lost, view.silences);
    const published = this.#alerts?.published(node);
    if (published) await this.#publishAlerts(published);
    await this.#trimEvents();
  }

  async #trimEvents(): Promise<void> {
    const { coordinator, leadership } = this.#options;
    const all = [...(await coordinator.list(KEYS.events)).keys()].sort();
    const cursor = await coordinator.get(KEYS.eventsCursor).catch(() => undefined);
    const excess = all.length - KEEP_EVENTS;
    for (const key of all.slice(0, Math.max(0, excess))) {
      // Keep what the platform database has not copied yet, unless far too many pile up.
      if (cursor !== undefined && key.slice(KEYS.events.length) > cursor && all.length < 5 * KEEP_EVENTS) break;
      if (!this.#leads()) return;
      await leadership.fencedDelete(key);
    }
  }

  /** Copy the events after the cursor into the platform database (through a server), then move the cursor (fenced). */
  async #copyEvents(
    target: ProbeTarget,
    push: (target: ProbeTarget, events: readonly OperatorEvent[]) => Promise<void>,
  ): Promise<void> {
    const { coordinator, leadership } = this.#options;
    const cursor = (await coordinator.get(KEYS.eventsCursor)) ?? '';
    const events = [...(await coordinator.list(KEYS.events)).entries()]
      .filter(([key]) => key.slice(KEYS.events.length) > cursor)
      .sort(([a], [b]) => a.localeCompare(b))
      .slice(0, 500)
      .map(([, value]) => parseRecord<OperatorEvent>(value))
      .filter((e): e is OperatorEvent => e !== undefined);
    const last = events.at(-1);
    if (!last || !this.#leads()) return;
    await push(target, events);
    if (!this.#leads()) return;
    await leadership.fencedPut(KEYS.eventsCursor, last.id);
  }

  async #putCommand(command: CommandRecord): Promise<void> {
    await this.#options.leadership.fencedPut(`${KEYS.commands}${command.id}`, JSON.stringify(command));
  }

  async #waitFor(check: (view: ClusterView) => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.#leads()) return false;
      const view = await this.#read().catch(() => undefined);
      if (view && check(view)) return true;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return false;
  }

  /**
   * `insitu operator restart`: each node that runs the service (or the one named) is asked
   * to restart it (SIGTERM: a server turns its readiness off, drains and exits; then it
   * starts again); with `rolling`, one node at a time, each ready again before the next.
   */
  async #runCommand(input: CommandRecord): Promise<void> {
    const { events, node } = this.#options;
    const command: CommandRecord = structuredClone(input);
    const view = this.#lastView;
    const spec = view?.spec?.spec;
    const serviceSpec = spec?.services[command.service];
    try {
      if (!view || !serviceSpec) throw new Error(`no service ${command.service} in the spec`);
      if (command.steps.length === 0) {
        const runsIt = [...view.records.values()]
          .filter((r) => r.capable.includes(command.service) && r.services[command.service] !== undefined)
          .filter((r) => {
            const status = r.services[command.service];
            return command.node !== undefined || status?.state !== 'stopped' || status.failed !== undefined;
          })
          .map((r) => r.node)
          .filter((n) => command.node === undefined || n === command.node)
          .sort();
        if (runsIt.length === 0)
          throw new Error(
            command.node ? `${command.node} does not run ${command.service}` : `no node runs ${command.service}`,
          );
        command.steps = runsIt.map((n) => ({ node: n, state: 'pending' }));
      }
      command.state = 'running';
      if (!this.#leads()) return;
      await this.#putCommand(command);
      events.record({
        type: 'command-started',
        service: command.service,
        reason: `${command.rolling ? 'rolling ' : ''}restart of ${command.service} on ${command.steps.map((s) => s.node).join(', ')} (asked by ${command.by})`,
      });
      const timeoutMs = serviceSpec.stopGraceMs + serviceSpec.startupGraceMs + 60_000;
      const batches = command.rolling ? command.steps.map((s) => [s]) : [command.steps];
      for (const batch of batches) {
        const pending = batch.filter((s) => s.state !== 'ready');
        if (pending.length === 0) continue;
        for (const step of pending) {
          const request: RestartRequest = {
            id: `${command.id}.${step.node}`,
            reason: `${command.rolling ? 'rolling ' : ''}restart asked by ${command.by} (${command.id})`,
            requestedAt: new Date().toISOString(),
            by: node,
          };
          if (!this.#leads()) return;
          await this.#options.leadership.fencedPut(restartKey(step.node, command.service), JSON.stringify(request));
          step.state = 'restarting';
          step.at = request.requestedAt;
        }
        await this.#putCommand(command);
        const ok = await this.#waitFor(
          (v) =>
            pending.every((step) => {
              const status = v.records.get(step.node)?.services[command.service];
              return (
                status?.restartDone === `${command.id}.${step.node}` &&
                (status.state === 'ready' || status.state === 'stopped')
              );
            }),
          timeoutMs,
        );
        if (!this.#leads()) return;
        if (!ok) {
          for (const step of pending) step.state = 'failed';
          throw new Error(
            `${command.service} was not ready again on ${pending.map((s) => s.node).join(', ')} within ${Math.round(timeoutMs / 1000)} s${command.rolling ? '; the rolling restart stopped there' : ''}`,
          );
        }
        for (const step of pending) {
          step.state = 'ready';
          step.at = new Date().toISOString();
          events.record({
            type: 'restarted',
            service: command.service,
            subject: step.node,
            reason: `${command.service} on ${step.node} is ready again after the ${command.rolling ? 'rolling ' : ''}restart`,
          });
        }
        await this.#putCommand(command);
      }
      command.state = 'done';
      command.finishedAt = new Date().toISOString();
      await this.#putCommand(command);
      events.record({
        type: 'command-done',
        service: command.service,
        reason: `${command.rolling ? 'rolling ' : ''}restart of ${command.service} done`,
      });
    } catch (error) {
      if (!this.#leads()) return;
      command.state = 'failed';
      command.error = (error as Error).message;
      command.finishedAt = new Date().toISOString();
      await this.#putCommand(command).catch(() => undefined);
      events.record({
        type: 'command-failed',
        service: command.service,
        reason: `restart of ${command.service} failed: ${command.error}`,
      });
    }
  }
}
