import { Gauge, type Registry } from '@insitu/core';

/** What `/readyz` says about one dependency. */
export interface DependencyState {
  /** `ok`: answered now; `degraded`: not answering, still within its grace window; `down`: past it. */
  state: 'ok' | 'degraded' | 'down';
  /** Milliseconds since it last answered (absent when it answered now). */
  downForMs?: number;
  graceMs: number;
  error?: string;
}

export interface ReadinessVerdict {
  ready: boolean;
  dependencies: Record<string, DependencyState>;
}

interface Dependency {
  probe: () => Promise<unknown>;
  graceMs: number;
  /** When it last answered; undefined: never since this node started. */
  lastOkAt: number | undefined;
  inFlight: Promise<void> | undefined;
  lastError: string | undefined;
  /** Start of the first check since the last answer that got no answer in time (the outage's start as this node saw it). */
  failingSince: number | undefined;
}

/**
 * Node-local readiness. Each `/readyz` probes the node's dependencies (the platform
 * database through this node's store handle, the coordination store through this node's
 * session), bounded by `probeTimeoutMs`, one probe per dependency in flight at a time.
 * A dependency that stops answering keeps the node ready for its grace window (reported
 * as `degraded` in the body and in `insitu_readiness_dependency_up`); past it the node is
 * unready. A node that never reached a dependency since it started is unready: it cannot
 * have a usable handle. The DESIGN note in the README says why.
 */
export class Readiness {
  readonly #dependencies = new Map<string, Dependency>();
  readonly #up: Gauge;
  readonly #downSeconds: Gauge;
  readonly #ready: Gauge;

  constructor(
    dependencies: Record<string, { probe: () => Promise<unknown>; graceMs: number }>,
    private readonly options: { probeTimeoutMs: number; now: () => number; registry: Registry },
  ) {
    for (const [name, { probe, graceMs }] of Object.entries(dependencies))
      this.#dependencies.set(name, {
        probe,
        graceMs,
        lastOkAt: undefined,
        inFlight: undefined,
        lastError: undefined,
        failingSince: undefined,
      });
    const registers = [options.registry];
    this.#up = new Gauge({
      name: 'insitu_readiness_dependency_up',
      help: 'A dependency of this node answered its last readiness probe (1) or not (0)',
      labelNames: ['dependency'],
      registers,
    });
    this.#downSeconds = new Gauge({
      name: 'insitu_readiness_dependency_down_seconds',
      help: 'Seconds since a dependency last answered a readiness probe (0 while it answers)',
      labelNames: ['dependency'],
      registers,
    });
    this.#ready = new Gauge({
      name: 'insitu_ready',
      help: 'This node answered its last /readyz as ready (1) or not (0)',
      registers,
    });
  }

  #probe(dependency: Dependency): Promise<void> {
    dependency.inFlight ??= dependency
      .probe()
      .then(
        () => {
          dependency.lastOkAt = this.options.now();
          dependency.lastError = undefined;
        },
        (error: unknown) => {
          dependency.lastError = (error as Error).message?.slice(0, 200) ?? String(error);
        },
      )
      .finally(() => {
        dependency.inFlight = undefined;
      });
    return dependency.inFlight;
  }

  /** Probe every dependency (at most `probeTimeoutMs`) and judge this node. */
  async check(): Promise<ReadinessVerdict> {
    const entries = [...this.#dependencies.entries()];
    const started = this.options.now();
    await Promise.all(
      entries.map(async ([, dependency]) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, this.options.probeTimeoutMs);
        });
        await Promise.race([this.#probe(dependency), timeout]);
        clearTimeout(timer);
      }),
    );
    const now = this.options.now();
    const dependencies: Record<string, DependencyState> = {};
    for (const [name, dependency] of entries) {
      const answeredNow = dependency.lastOkAt !== undefined && dependency.lastOkAt >= started;
      let state: DependencyState;
      if (answeredNow) {
        dependency.failingSince = undefined;
        state = { state: 'ok', graceMs: dependency.graceMs };
      } else {
        // Counted from the first unanswered check, not from the last answer: checks may be
        // far apart (no balancer polling), and a quiet gap is not an outage.
        dependency.failingSince ??= started;
        const downForMs = dependency.lastOkAt === undefined ? undefined : now - dependency.failingSince;
        const within = downForMs !== undefined && dependency.graceMs > 0 && downForMs <= dependency.graceMs;
        state = {
          state: within ? 'degraded' : 'down',
          ...(downForMs !== undefined ? { downForMs } : {}),
          graceMs: dependency.graceMs,
          error: dependency.lastError ?? `no answer within ${this.options.probeTimeoutMs} ms`,
        };
      }
      dependencies[name] = state;
      this.#up.set({ dependency: name }, state.state === 'ok' ? 1 : 0);
      this.#downSeconds.set({ dependency: name }, state.downForMs === undefined ? 0 : state.downForMs / 1000);
    }
    const ready = Object.values(dependencies).every((d) => d.state !== 'down');
    this.#ready.set(ready ? 1 : 0);
    return { ready, dependencies };
  }
}
