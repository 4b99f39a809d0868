import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AppManifest, Logger } from '@insitu/core';
import type { Cgroups, InstanceCgroups } from './cgroups.js';
import { InstanceProcess, probe, type InstanceExit } from './instance.js';
import { OutputLog } from './output-log.js';
import type { LaunchSpec } from './sandbox.js';
import { buildLaunch } from './sandbox.js';

/** When to restart, and when to call it a crash loop. */
export interface RestartPolicy {
  /** First restart delay; doubles with every crash in a row, up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** An instance that served this long resets the doubling. */
  resetAfterMs: number;
  /** This many crashes within `crashLoopWindowMs` make the instance "crash-looping" (it is still retried at the backoff). */
  crashLoopThreshold: number;
  crashLoopWindowMs: number;
  /** How long a new instance may take to answer its first health check. */
  startTimeoutMs: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  /** Health checks failed in a row before a running instance is killed and restarted. */
  unhealthyThreshold: number;
  stopGraceMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialBackoffMs: 1000,
  maxBackoffMs: 60_000,
  resetAfterMs: 60_000,
  crashLoopThreshold: 5,
  crashLoopWindowMs: 5 * 60_000,
  startTimeoutMs: 30_000,
  healthIntervalMs: 5000,
  healthTimeoutMs: 2000,
  unhealthyThreshold: 3,
  stopGraceMs: 3000,
};

export type InstanceState = 'starting' | 'running' | 'backoff' | 'crash-looping' | 'stopped';

/** One instance as the status report shows it. */
export interface InstanceStatus {
  id: string;
  state: InstanceState;
  pid?: number;
  restarts: number;
  startedAt?: string;
  lastExit?: { code: number | null; signal: string | null; reason: string; at: string; output: string[] };
}

/** An instance the balancer may send requests to. */
export interface ReadyInstance {
  id: string;
  socketPath: string;
  inflight: number;
  /** Work connections piping to it (see `Agent.workTarget`). */
  pipes: number;
  /**
   * Aborted once its process has exited: work connections still open to it close. (They
   * are not cut when it merely stops being ready: a stopping instance finishes the
   * requests it has, and its own closing ends their connections.)
   */
  gone: AbortController;
}

interface Slot {
  id: string;
  state: InstanceState;
  restarts: number;
  crashes: number[];
  consecutive: number;
  proc?: InstanceProcess;
  startedAt?: number;
  readyAt?: number;
  lastExit?: InstanceStatus['lastExit'];
  ready?: ReadyInstance;
  stop: AbortController;
  done?: Promise<void>;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function describeExit(exit: InstanceExit, oom: boolean, unhealthy: boolean): string {
  if (unhealthy) return 'stopped after failing its health checks';
  if (oom) return 'killed by the memory limit';
  if (exit.signal) return exit.signal === 'SIGXCPU' ? 'CPU time limit reached' : `killed by ${exit.signal}`;
  if (exit.code === 128 + 24) return 'CPU time limit reached (SIGXCPU)';
  if (exit.code === 128 + 9) return 'killed (SIGKILL): memory, CPU time or proc limit';
  if (exit.code === 127) return 'could not be started (command not found)';
  return `exited with code ${String(exit.code)}`;
}

/** What a runner needs. */
export interface DeploymentRunnerOptions {
  id: string;
  manifest: AppManifest;
  launch: Omit<LaunchSpec, 'listenSocket' | 'cgroups' | 'manifest'>;
  /** Host directory (only the agent can reach it) for this deployment's instance sockets. */
  runDir: string;
  cgroups: Cgroups;
  /** Names of instance cgroups start with this (the agent's own prefix, so it can sweep its leftovers). */
  cgroupPrefix?: string;
  policy: RestartPolicy;
  logger: Logger;
  onChange: () => void;
}

/**
 * Keeps N instances of one application version alive: starts each in its sandbox, waits
 * for its first health check, probes it while it runs, and restarts it after a crash or
 * failed probes with capped exponential backoff. Crash loops are reported, not given up on.
 */
export class DeploymentRunner {
  private readonly slots = new Map<string, Slot>();
  private nextSlot = 0;
  private stopping = false;

  /** What its instances wrote, for `insitu app logs` (see {@link OutputLog}). */
  readonly output = new OutputLog();

  constructor(private readonly options: DeploymentRunnerOptions) {}

  get manifest(): AppManifest {
    return this.options.manifest;
  }

  /** Grow or shrink to `replicas` instances. */
  async scale(replicas: number): Promise<void> {
    if (this.stopping) return;
    const slots = [...this.slots.values()];
    while (slots.length < replicas) {
      const slot: Slot = {
        id: `i${this.nextSlot++}`,
        state: 'starting',
        restarts: 0,
        crashes: [],
        consecutive: 0,
        stop: new AbortController(),
      };
      this.slots.set(slot.id, slot);
      slots.push(slot);
      slot.done = this.run(slot);
    }
    const extra = slots.slice(replicas);
    await Promise.all(extra.map((slot) => this.stopSlot(slot)));
  }

  private async stopSlot(slot: Slot): Promise<void> {
    slot.stop.abort();
    await slot.done;
    this.slots.delete(slot.id);
    this.options.onChange();
  }

  private set(slot: Slot, state: InstanceState): void {
    if (slot.state === state) return;
    slot.state = state;
    this.options.onChange();
  }

  private async run(slot: Slot): Promise<void> {
    const { policy, logger } = this.options;
    const log = logger.child({ instance: slot.id });
    const runDir = join(this.options.runDir, slot.id);
    while (!slot.stop.signal.aborted) {
      this.set(slot, 'starting');
      await rm(runDir, { recursive: true, force: true });
      await mkdir(runDir, { recursive: true, mode: 0o700 });
      let cgroups: InstanceCgroups | undefined;
      let exit: InstanceExit;
      let unhealthy = false;
      let proc: InstanceProcess | undefined;
      let ready: ReadyInstance | undefined;
      try {
        const limits = this.options.manifest.limits;
        const cgroupName = `${this.options.cgroupPrefix ?? 'insitu-'}${this.options.id.replace(/[^A-Za-z0-9_.-]/g, '_')}-${slot.id}`;
        cgroups = await this.options.cgroups.create(cgroupName, {
          memoryBytes: limits.memoryMb * 1024 * 1024,
          processes: limits.processes,
        });
        const launch = buildLaunch({
          ...this.options.launch,
          manifest: this.options.manifest,
          listenSocket: join(runDir, 'app.sock'),
          cgroups,
        });
        const output = this.output;
        proc = await InstanceProcess.start(launch, log, (stream, line) =>
          output.push({ at: new Date().toISOString(), instance: slot.id, stream, line }),
        );
        slot.proc = proc;
        slot.startedAt = Date.now();
        slot.readyAt = undefined;
        this.options.onChange();
        log.info({ pid: proc.pid }, 'instance started');
        // First health check: poll until it answers, exits, or the start timeout passes.
        const deadline = Date.now() + policy.startTimeoutMs;
        let healthy = false;
        while (proc.running && !slot.stop.signal.aborted && Date.now() < deadline) {
          if (await probe(launch.listenSocket, policy.healthTimeoutMs)) {
            healthy = true;
            break;
          }
          await Promise.race([abortableDelay(50, slot.stop.signal), proc.exited]);
        }
        if (healthy && proc.running && !slot.stop.signal.aborted) {
          slot.readyAt = Date.now();
          slot.ready = ready = {
            id: `${this.options.id}/${slot.id}`,
            socketPath: launch.listenSocket,
            inflight: 0,
            pipes: 0,
            gone: new AbortController(),
          };
          this.set(slot, 'running');
          log.info({ pid: proc.pid, ms: slot.readyAt - (slot.startedAt ?? slot.readyAt) }, 'instance ready');
          let failures = 0;
          while (proc.running && !slot.stop.signal.aborted) {
            await Promise.race([abortableDelay(policy.healthIntervalMs, slot.stop.signal), proc.exited]);
            if (!proc.running || slot.stop.signal.aborted) break;
            if (await probe(launch.listenSocket, policy.healthTimeoutMs)) failures = 0;
            else if (++failures >= policy.unhealthyThreshold) {
              unhealthy = true;
              log.warn({ failures }, 'instance failed its health checks; restarting it');
              await proc.stop(policy.stopGraceMs);
            }
          }
        } else if (proc.running && !slot.stop.signal.aborted) {
          unhealthy = true;
          log.warn(
            { startTimeoutMs: policy.startTimeoutMs },
            'instance did not answer its health check in time; restarting it',
          );
        }
        slot.ready = undefined;
        this.options.onChange();
        exit = proc.running ? await proc.stop(policy.stopGraceMs) : await proc.exited;
        ready?.gone.abort();
      } catch (error) {
        slot.ready = undefined;
        if (proc?.running) await proc.stop(policy.stopGraceMs);
        ready?.gone.abort();
        exit = { code: null, signal: null };
        log.error({ err: error }, 'cannot start instance');
        proc?.output.push(`cannot start: ${(error as Error).message}`);
      }
      const oom = (await cgroups?.oomKilled().catch(() => false)) ?? false;
      // Nothing of the instance may outlive it: whatever is left in its cgroups is killed.
      await cgroups?.kill();
      await cgroups?.remove();
      slot.proc = undefined;
      if (slot.stop.signal.aborted) break;
      const now = Date.now();
      const reason = describeExit(exit, oom, unhealthy);
      slot.lastExit = {
        code: exit.code,
        signal: exit.signal,
        reason,
        at: new Date(now).toISOString(),
        output: (proc?.output ?? []).slice(-10),
      };
      slot.restarts++;
      slot.consecutive =
        slot.readyAt !== undefined && now - slot.readyAt >= policy.resetAfterMs ? 1 : slot.consecutive + 1;
      slot.crashes = [...slot.crashes.filter((t) => now - t < policy.crashLoopWindowMs), now];
      const looping = slot.crashes.length >= policy.crashLoopThreshold;
      const delay = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** (slot.consecutive - 1));
      log.warn(
        { reason, restarts: slot.restarts, delayMs: delay, crashLoop: looping },
        'instance ended; restarting after a delay',
      );
      this.set(slot, looping ? 'crash-looping' : 'backoff');
      this.options.onChange();
      await abortableDelay(delay, slot.stop.signal);
    }
    this.set(slot, 'stopped');
    await rm(runDir, { recursive: true, force: true });
  }

  /** Instances that passed their health check and have not ended since. */
  ready(): ReadyInstance[] {
    return [...this.slots.values()].flatMap((s) => (s.state === 'running' && s.ready ? [s.ready] : []));
  }

  /** Mark an instance as failed right now (e.g. its socket refused a request); its probe loop restarts it. */
  instanceFailed(id: string): void {
    for (const slot of this.slots.values()) {
      if (slot.ready?.id === id && slot.proc) {
        slot.ready = undefined;
        void slot.proc.stop(this.options.policy.stopGraceMs);
      }
    }
  }

  instances(): InstanceStatus[] {
    return [...this.slots.values()].map((s) => ({
      id: s.id,
      state: s.state,
      ...(s.proc?.pid !== undefined ? { pid: s.proc.pid } : {}),
      restarts: s.restarts,
      ...(s.startedAt !== undefined ? { startedAt: new Date(s.startedAt).toISOString() } : {}),
      ...(s.lastExit ? { lastExit: s.lastExit } : {}),
    }));
  }

  /** Stop every instance and wait for them to be gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.slots.values()].map((slot) => this.stopSlot(slot)));
  }
}
