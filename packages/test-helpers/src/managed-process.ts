import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { waitFor } from '@insitu/core';
import { childEnv } from './child-env.js';
import { trackProcess, untrackProcess } from './cleanup-registry.js';
import { isGone, listDescendants, signalAll } from './process-tree.js';

/** How to start a server process. */
export interface ProcessSpec {
  /** Used in error messages, e.g. `mariadbd 3`. */
  name: string;
  command: string;
  args: readonly string[];
  /** stdout and stderr are appended here. */
  logFile: string;
  cwd?: string;
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * `setpriv`'s absolute path: when set, the server gets PR_SET_PDEATHSIG=SIGKILL, so
   * it dies even when the test process is SIGKILLed and no exit handler runs.
   */
  setpriv?: string;
}

/** How the last run ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Signals after which a process normally keeps existing. */
const NON_TERMINATING: ReadonlySet<string> = new Set([
  'SIGSTOP',
  'SIGCONT',
  'SIGTSTP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGWINCH',
  'SIGURG',
  'SIGCHLD',
]);

/** True for signals such as SIGSTOP after which one should not wait for an exit. */
export function isNonTerminating(signal: NodeJS.Signals): boolean {
  return NON_TERMINATING.has(signal);
}

/**
 * One long-running server process that can be started again after it died: spawned in
 * its own session (terminal signals do not reach it), output to a log file, tracked so
 * it is SIGKILLed when the test process exits, and unref'd so a forgotten server never
 * keeps the test process alive.
 */
export class ManagedProcess {
  readonly spec: ProcessSpec;
  #child: ChildProcess | undefined;
  #exited: Promise<ProcessExit> = Promise.resolve({ code: null, signal: null });
  #running = false;
  #exitController = new AbortController();
  #lastExit: ProcessExit | undefined;

  constructor(spec: ProcessSpec) {
    this.spec = spec;
  }

  /** PID of the running process, `undefined` when it is not running. */
  get pid(): number | undefined {
    return this.#running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Aborts (with a descriptive reason) when the current run exits: stops readiness polling early. */
  get exitSignal(): AbortSignal {
    return this.#exitController.signal;
  }

  /** Spawn the process. Throws if it is already running. */
  start(): void {
    if (this.#running) throw new Error(`${this.spec.name} is already running (pid ${String(this.pid)})`);
    const { spec } = this;
    const command = spec.setpriv ?? spec.command;
    const args =
      spec.setpriv === undefined ? [...spec.args] : ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args];
    const log = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: spec.env ?? childEnv(),
        ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
        ...(spec.uid === undefined ? {} : { uid: spec.uid }),
        ...(spec.gid === undefined ? {} : { gid: spec.gid }),
      });
    } finally {
      closeSync(log);
    }
    child.unref();
    const controller = new AbortController();
    this.#child = child;
    this.#exitController = controller;
    this.#running = true;
    trackProcess(this);
    this.#exited = new Promise<ProcessExit>((resolve) => {
      const finish = (exit: ProcessExit): void => {
        if (this.#child === child) {
          this.#running = false;
          this.#lastExit = exit;
          untrackProcess(this);
        }
        const how =
          exit.error?.message ?? (exit.signal === null ? `status ${String(exit.code)}` : `signal ${exit.signal}`);
        controller.abort(new Error(`${spec.name} exited (${how}). End of ${spec.logFile}:\n${this.logTail()}`));
        resolve(exit);
      };
      child.once('exit', (code, signal) => {
        finish({ code, signal });
      });
      child.once('error', (error) => {
        finish({ code: null, signal: null, error });
      });
    });
  }

  /** How the previous run ended, if one did. */
  get lastExit(): ProcessExit | undefined {
    return this.#lastExit;
  }

  /** Send `signal` to the main process only (no waiting). */
  signal(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid !== undefined) signalAll([pid], signal);
  }

  /**
   * Resolve when the current run has exited; reject after `timeoutMs`. The child is
   * ref'd meanwhile so the event loop stays alive for the wait.
   */
  async waitForExit(timeoutMs: number): Promise<ProcessExit> {
    const child = this.#child;
    if (!this.#running || child === undefined) return this.#exited;
    child.ref();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#exited,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => {
            reject(new Error(`${this.spec.name} did not exit within ${timeoutMs} ms`));
          }, timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      child.unref();
    }
  }

  /** SIGKILL the process and all its descendants; resolve once every one of them is gone. */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    const pids = [pid, ...listDescendants(pid)];
    signalAll(pids, 'SIGKILL');
    await this.waitForExit(30_000);
    await waitFor(() => pids.every(isGone), {
      timeoutMs: 30_000,
      intervalMs: 10,
      what: `${this.spec.name} and its children to exit`,
    });
  }

  /**
   * Ask the process to exit with `signal`; after `graceMs` (or if it exits leaving
   * children behind) SIGKILL whatever is left.
   */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    const descendants = listDescendants(pid);
    signalAll([pid], signal);
    // A SIGSTOPped server would ignore the request until continued.
    signalAll([pid], 'SIGCONT');
    try {
      await this.waitForExit(graceMs);
    } catch {
      await this.kill();
      return;
    }
    const leftovers = [...descendants, ...descendants.flatMap((child) => listDescendants(child))].filter(
      (child) => !isGone(child),
    );
    if (leftovers.length === 0) return;
    try {
      await waitFor(() => leftovers.every(isGone), { timeoutMs: graceMs, intervalMs: 10, what: 'children to exit' });
    } catch {
      signalAll(leftovers, 'SIGKILL');
      await waitFor(() => leftovers.every(isGone), { timeoutMs: 30_000, intervalMs: 10, what: 'children to exit' });
    }
  }

  /** The last few kilobytes of the log, for error messages. */
  logTail(bytes = 3000): string {
    try {
      const size = statSync(this.spec.logFile).size;
      const length = Math.min(bytes, size);
      const buffer = Buffer.alloc(length);
      const fd = openSync(this.spec.logFile, 'r');
      try {
        readSync(fd, buffer, 0, length, size - length);
      } finally {
        closeSync(fd);
      }
      return buffer.toString('utf8');
    } catch {
      return '(no log)';
    }
  }
}
