import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@insitu/core';
import type { ServiceSpec } from './cluster-spec.js';
import type { ServiceCommand } from './node-config.js';
import { httpProbe, tcpProbe, type ProbeResult } from './probe.js';
import type { ExitStatus, ProbeStatus, ServiceState, ServiceStatus } from './records.js';
import { RestartLadder } from './restart-ladder.js';

/** Records an operator event (start, restart, probe failure, failed…). */
export type EventSink = (event: {
  type: string;
  service?: string;
  subject?: string;
  reason: string;
  details?: Record<string, unknown>;
}) => void;

/** Options of {@link ServiceSupervisor}. */
export interface SupervisorOptions {
  name: string;
  command: ServiceCommand;
  spec: ServiceSpec;
  /** Where `<name>.log` (the child's stdout and stderr) goes. */
  logDir: string;
  logger: Logger;
  record: EventSink;
  /** Wrap the command so it dies with this process (`setpriv --pdeathsig KILL`), when available. */
  deathSignalWrapper?: readonly string[];
  /**
   * For a placed service: the node lease's deadline (epoch ms), or undefined without a
   * lease. The command then runs under the lease guard, which kills it when the deadline
   * passes without an extension ({@link ServiceSupervisor.extendLease}).
   */
  leaseDeadline?: () => number | undefined;
  random?: () => number;
}

/** The guard's exit code when it killed the service at the lease deadline. */
const GUARD_FENCED_EXIT = 75;
const LEASE_GUARD = new URL('./lease-guard.js', import.meta.url).pathname;

const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

function signalName(signal: NodeJS.Signals | null): string | null {
  return signal ?? null;
}

/**
 * One platform service on this node as a supervised child process: it starts it, probes it
 * (liveness with a start-up grace, readiness), restarts it on the recovery ladder (at once,
 * then a jittered doubling back-off), kills it when hung (liveness failing while the process
 * lives: SIGTERM, grace, SIGKILL), and fails it when the restart budget runs out. Emits
 * `change` on every state change and `failed` when the budget ran out.
 */
export class ServiceSupervisor extends EventEmitter {
  readonly name: string;
  #command: ServiceCommand;
  #spec: ServiceSpec;
  #ladder: RestartLadder;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #wanted = false;
  #stopping = false;
  #state: ServiceState = 'stopped';
  #since = Date.now();
  #startedAt: number | undefined;
  #healthySince: number | undefined;
  #livenessOkOnce = false;
  #liveness: ProbeStatus | undefined;
  #readiness: ProbeStatus | undefined;
  #restarts = 0;
  #lastExit: ExitStatus | undefined;
  #failed: { at: string; reason: string } | undefined;
  #killReason: string | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #nextStartAt: number | undefined;
  #probeTimers: NodeJS.Timeout[] = [];
  #restartDone: string | undefined;
  #guarded = false;

  constructor(private readonly options: SupervisorOptions) {
    super();
    this.name = options.name;
    this.#command = options.command;
    this.#spec = options.spec;
    this.#ladder = new RestartLadder(options.spec.restart, options.random);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get state(): ServiceState {
    return this.#state;
  }

  /** True once the readiness probe (or, without one, the liveness probe) passed and still does. */
  isReady(): boolean {
    return this.#state === 'ready';
  }

  /** Published status. */
  status(): ServiceStatus {
    const now = Date.now();
    return {
      state: this.#state,
      ...(this.#child?.pid !== undefined && this.#child.exitCode === null ? { pid: this.#child.pid } : {}),
      since: new Date(this.#since).toISOString(),
      ...(this.#startedAt !== undefined && this.#child ? { startedAt: new Date(this.#startedAt).toISOString() } : {}),
      restarts: this.#restarts,
      restartsInWindow: this.#ladder.restartsInWindow(now),
      ...(this.#nextStartAt !== undefined && this.#state === 'backoff'
        ? { nextStartAt: new Date(this.#nextStartAt).toISOString() }
        : {}),
      ...(this.#lastExit ? { lastExit: this.#lastExit } : {}),
      ...(this.#liveness ? { liveness: this.#liveness } : {}),
      ...(this.#readiness ? { readiness: this.#readiness } : {}),
      ...(this.#failed ? { failed: this.#failed } : {}),
      ...(this.#restartDone ? { restartDone: this.#restartDone } : {}),
    };
  }

  /** Tell the lease guard of a running placed service the new lease deadline. */
  extendLease(deadline: number): void {
    if (this.#guarded && this.#child?.stdin?.writable) this.#child.stdin.write(`${deadline}\n`);
  }

  /** Keep it running (start it unless it runs or is failed). */
  start(): void {
    this.#wanted = true;
    if (this.#child || this.#failed || this.#backoffTimer) return;
    this.#spawn('start');
  }

  /**
   * Stop it and keep it stopped: SIGTERM to its process group, SIGKILL after the spec's
   * `stopGraceMs`. Resolves once it exited.
   */
  async stop(reason: string): Promise<void> {
    this.#wanted = false;
    this.#clearBackoff();
    if (!this.#child) {
      if (!this.#failed) this.#setState('stopped');
      return;
    }
    this.options.record({ type: 'stop', service: this.name, reason });
    await this.#terminate();
  }

  /**
   * Restart now, outside the ladder: clears a `failed` mark and the back-off (an
   * administrator's restart, a rolling restart, a new spec). A running process is stopped
   * with SIGTERM first, so a server drains. `requestId` is published as `restartDone`.
   */
  async restart(reason: string, requestId?: string): Promise<void> {
    this.#clearBackoff();
    const wasRunning = this.#child !== undefined;
    if (this.#child) {
      this.options.record({ type: 'restart', service: this.name, reason });
      await this.#terminate();
    }
    this.#failed = undefined;
    this.#ladder.reset();
    if (requestId) this.#restartDone = requestId;
    this.#wanted = true;
    this.#spawn(wasRunning ? 'restart' : 'start', reason);
  }

  /** A new spec or command line: probes and limits change at once; a changed command restarts it. */
  async update(spec: ServiceSpec, command: ServiceCommand): Promise<void> {
    const commandChanged = JSON.stringify(command) !== JSON.stringify(this.#command);
    this.#spec = spec;
    this.#command = command;
    this.#ladder = new RestartLadder(spec.restart, this.options.random);
    const wasFailed = this.#failed !== undefined;
    this.#failed = undefined;
    if (commandChanged && this.#child) await this.restart('its command line changed');
    else if (this.#child) this.#startProbes();
    else if (this.#wanted && (wasFailed || !this.#backoffTimer)) this.start();
  }

  /** Stop for good (the node shuts down). */
  async close(): Promise<void> {
    await this.stop('the node is shutting down');
  }

  #setState(state: ServiceState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#since = Date.now();
    this.emit('change', state);
  }

  #clearBackoff(): void {
    if (this.#backoffTimer) clearTimeout(this.#backoffTimer);
    this.#backoffTimer = undefined;
    this.#nextStartAt = undefined;
  }

  #openLog(): number {
    mkdirSync(this.options.logDir, { recursive: true });
    const path = join(this.options.logDir, `${this.name}.log`);
    try {
      if (statSync(path).size > LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
    } catch {
      // no log yet
    }
    return openSync(path, 'a', 0o640);
  }

  #spawn(why: 'start' | 'restart', reason?: string): void {
    const deadline = this.options.leaseDeadline?.();
    if (this.options.leaseDeadline && (deadline === undefined || deadline <= Date.now() + 100)) {
      // A placed service never starts without a live node lease.
      this.#setState('stopped');
      return;
    }
    const wrapper = this.options.deathSignalWrapper ?? [];
    this.#guarded = deadline !== undefined;
    const argv = this.#guarded
      ? [...wrapper, process.execPath, LEASE_GUARD, String(deadline), ...wrapper, ...this.#command.command]
      : [...wrapper, ...this.#command.command];
    const [file, ...args] = argv as [string, ...string[]];
    const log = this.#openLog();
    let child: ChildProcess;
    try {
      child = spawn(file, args, {
        cwd: this.#command.cwd,
        env: { ...process.env, ...this.#command.env },
        stdio: [this.#guarded ? 'pipe' : 'ignore', log, log],
        // Its own process group: a stop reaches the children it started too.
        detached: true,
      });
    } finally {
      closeSync(log);
    }
    this.#child = child;
    this.#startedAt = Date.now();
    this.#healthySince = this.#spec.liveness ? undefined : this.#startedAt;
    this.#livenessOkOnce = false;
    this.#liveness = undefined;
    this.#readiness = undefined;
    this.#killReason = undefined;
    this.#nextStartAt = undefined;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#onExit(child, code, signalName(signal));
        resolve();
      });
    });
    child.stdin?.on('error', () => undefined);
    child.once('error', (error) => {
      // spawn failures (ENOENT) arrive here, then `exit` with code -2 or never: make sure it counts once.
      this.options.logger.warn({ service: this.name, err: error.message }, 'service could not be started');
      if (child.pid === undefined) {
        this.#onExit(child, null, null, `could not start: ${error.message}`);
      }
    });
    this.#setState('starting');
    this.options.record({
      type: why,
      service: this.name,
      reason: reason ?? (why === 'start' ? 'started' : 'restarted'),
      details: { pid: child.pid ?? null, command: this.#command.command.join(' ') },
    });
    this.options.logger.info({ service: this.name, pid: child.pid }, `${this.name} started`);
    this.#startProbes();
  }

  #stopProbes(): void {
    for (const timer of this.#probeTimers) clearInterval(timer);
    this.#probeTimers = [];
  }

  #startProbes(): void {
    this.#stopProbes();
    const target = this.#command.health ?? this.#command.tcp;
    const spec = this.#spec;
    if (spec.liveness && target) {
      const liveness = spec.liveness;
      const timer = setInterval(
        () => void this.#probe('liveness', liveness.path, liveness.timeoutMs, liveness.failureThreshold),
        liveness.periodMs,
      );
      timer.unref();
      this.#probeTimers.push(timer);
    }
    if (spec.readiness && this.#command.health) {
      const readiness = spec.readiness;
      const timer = setInterval(
        () => void this.#probe('readiness', readiness.path, readiness.timeoutMs, readiness.failureThreshold),
        readiness.periodMs,
      );
      timer.unref();
      this.#probeTimers.push(timer);
    }
    // The first probes run at once: a service that is up is seen ready without waiting a period.
    if (spec.liveness && target)
      void this.#probe('liveness', spec.liveness.path, spec.liveness.timeoutMs, spec.liveness.failureThreshold);
    if (spec.readiness && this.#command.health)
      void this.#probe('readiness', spec.readiness.path, spec.readiness.timeoutMs, spec.readiness.failureThreshold);
    if (!spec.liveness || !target) {
      // Without a liveness probe, a live process is all we can know.
      this.#livenessOkOnce = true;
      if (!spec.readiness || !this.#command.health) this.#refreshRunningState();
    }
  }

  async #run(kind: 'liveness' | 'readiness', path: string, timeoutMs: number): Promise<ProbeResult> {
    if (this.#command.tcp && kind === 'liveness') return tcpProbe(this.#command.tcp, timeoutMs);
    const base = (this.#command.health ?? '').replace(/\/+$/, '');
    return httpProbe(`${base}${path}`, timeoutMs);
  }

  async #probe(kind: 'liveness' | 'readiness', path: string, timeoutMs: number, threshold: number): Promise<void> {
    const child = this.#child;
    if (!child || this.#stopping) return;
    const result = await this.#run(kind, path, timeoutMs);
    if (child !== this.#child || this.#stopping) return;
    const previous = kind === 'liveness' ? this.#liveness : this.#readiness;
    const failures = result.ok ? 0 : (previous?.failures ?? 0) + 1;
    const status: ProbeStatus = {
      ok: result.ok,
      at: new Date(result.at).toISOString(),
      ms: result.ms,
      failures,
      ...(result.error ? { error: result.error } : {}),
    };
    if (kind === 'readiness') {
      this.#readiness = status;
      if (!result.ok && failures === 1 && previous?.ok) {
        this.options.record({
          type: 'probe-failed',
          service: this.name,
          reason: `readiness probe ${path} failed: ${result.error ?? 'not ready'}`,
        });
      }
      this.#refreshRunningState();
      return;
    }
    if (result.ok) {
      this.#livenessOkOnce = true;
      this.#healthySince ??= result.at;
      this.#liveness = status;
      this.#refreshRunningState();
      return;
    }
    const inGrace =
      !this.#livenessOkOnce && this.#startedAt !== undefined && result.at - this.#startedAt < this.#spec.startupGraceMs;
    if (inGrace) {
      // Still starting: failures do not count yet.
      this.#liveness = { ...status, failures: 0 };
      return;
    }
    this.#liveness = status;
    this.#healthySince = undefined;
    this.options.record({
      type: 'probe-failed',
      service: this.name,
      reason: `liveness probe ${this.#command.tcp ? `tcp ${this.#command.tcp}` : path} failed (${failures} of ${threshold}): ${result.error ?? 'failed'}`,
    });
    if (failures >= threshold) {
      this.#killReason = `liveness failed ${failures} times (${result.error ?? 'failed'}) while the process lived: hung`;
      this.options.record({ type: 'hung', service: this.name, reason: `killing ${this.name}: ${this.#killReason}` });
      this.#stopProbes();
      void this.#kill(child);
    } else {
      this.#refreshRunningState();
    }
  }

  #refreshRunningState(): void {
    if (!this.#child || this.#stopping) return;
    if ((this.#liveness?.failures ?? 0) > 0) {
      this.#setState('unhealthy');
      return;
    }
    if (!this.#livenessOkOnce) {
      this.#setState('starting');
      return;
    }
    const hasReadiness = this.#spec.readiness !== undefined && this.#command.health !== undefined;
    this.#setState(!hasReadiness || this.#readiness?.ok ? 'ready' : 'running');
  }

  /** SIGTERM to the process group, SIGKILL after the grace; resolves once it exited. */
  async #kill(child: ChildProcess): Promise<void> {
    const exited = this.#exited;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      }
    };
    signalGroup('SIGTERM');
    const grace = setTimeout(() => {
      this.options.logger.warn(
        { service: this.name, pid: child.pid },
        `${this.name} ignored SIGTERM for ${this.#spec.stopGraceMs} ms: SIGKILL`,
      );
      signalGroup('SIGKILL');
    }, this.#spec.stopGraceMs);
    grace.unref();
    await exited;
    clearTimeout(grace);
  }

  async #terminate(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#stopping = true;
    this.#stopProbes();
    this.#setState('stopping');
    try {
      await this.#kill(child);
    } finally {
      this.#stopping = false;
    }
  }

  #onExit(child: ChildProcess, code: number | null, signal: string | null, startError?: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#stopProbes();
    const now = Date.now();
    const reason =
      startError ??
      (this.#killReason
        ? `killed: ${this.#killReason}`
        : signal
          ? `killed by ${signal}`
          : `exited with code ${code ?? '?'}`);
    this.#lastExit = { at: new Date(now).toISOString(), code, signal, reason };
    if (this.#guarded && code === GUARD_FENCED_EXIT && !this.#stopping) {
      // Killed by its lease guard: the node lost its lease, which is no crash of the service.
      this.#lastExit = { ...this.#lastExit, reason: 'killed by the lease guard: the node lease deadline passed' };
      this.#setState('stopped');
      this.options.record({
        type: 'fenced',
        service: this.name,
        reason: `${this.name} was killed at the node lease deadline (the node could not renew its lease; the leader may start it elsewhere)`,
      });
      return;
    }
    if (this.#stopping) {
      this.#setState(this.#failed ? 'failed' : 'stopped');
      this.options.record({ type: 'exit', service: this.name, reason: `stopped (${reason})` });
      return;
    }
    this.options.logger.warn({ service: this.name, code, signal }, `${this.name} ${reason}`);
    if (!this.#wanted) {
      this.#setState('stopped');
      return;
    }
    const decision = this.#ladder.onExit(now, this.#healthySince);
    if (decision.action === 'fail') {
      this.#failed = {
        at: new Date(now).toISOString(),
        reason: `${reason}; restart budget of ${this.#spec.restart.budget} in ${Math.round(this.#spec.restart.windowMs / 1000)} s used up`,
      };
      this.#setState('failed');
      this.options.record({
        type: 'failed',
        service: this.name,
        reason: `${this.name} failed on this node: ${this.#failed.reason}`,
      });
      this.emit('failed', this.#failed.reason);
      return;
    }
    this.#restarts += 1;
    this.options.record({
      type: 'exit',
      service: this.name,
      reason: `${reason}; restart ${decision.delayMs === 0 ? 'at once' : `in ${decision.delayMs} ms`} (attempt ${decision.attempt})`,
      details: { code, signal, delayMs: decision.delayMs },
    });
    this.#nextStartAt = now + decision.delayMs;
    this.#setState('backoff');
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      if (this.#wanted && !this.#child) this.#spawn('restart', `restarted after: ${reason}`);
    }, decision.delayMs);
  }
}
