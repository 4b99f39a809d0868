import { trackDir, untrackDir } from './cleanup-registry.js';
import { isNonTerminating, type ManagedProcess } from './managed-process.js';
import { removeDir } from './temp-dir.js';

/** How a server is stopped for good: the signal that shuts it down cleanly, and how long it may take. */
export interface StopPolicy {
  signal: NodeJS.Signals;
  graceMs: number;
  /** How long {@link ManagedServer.kill} waits for the exit after a terminating signal. */
  exitWaitMs: number;
}

/**
 * What every private test server (MariaDB, PostgreSQL, etcd) shares: one supervised
 * process, a temp dir that is registered for cleanup and deleted on `stop()`, `kill()` with
 * any signal (SIGSTOP/SIGCONT pause and resume without waiting), and a stop that happens
 * once. Subclasses build their process after `super()` and hand it over with {@link attach}.
 */
export abstract class ManagedServer {
  #process: ManagedProcess | undefined;
  #stopped = false;

  protected constructor(
    /** The server's own temp dir, deleted by {@link stop}. */
    protected readonly serverDir: string,
    private readonly stopPolicy: StopPolicy,
  ) {
    trackDir(serverDir);
  }

  protected attach(process: ManagedProcess): void {
    this.#process = process;
  }

  protected get process(): ManagedProcess {
    if (!this.#process) throw new Error('managed server: no process attached');
    return this.#process;
  }

  /** True once {@link stop} ran: the data is gone and the server cannot start again. */
  protected get stopped(): boolean {
    return this.#stopped;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  get running(): boolean {
    return this.#process?.running ?? false;
  }

  /** Send `signal` (SIGKILL by default) and wait for the exit unless the signal only pauses or resumes. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const process = this.#process;
    if (!process?.running) return;
    if (signal === 'SIGKILL') {
      await process.kill();
      return;
    }
    process.signal(signal);
    if (isNonTerminating(signal)) return;
    await process.waitForExit(this.stopPolicy.exitWaitMs);
  }

  /** Stop cleanly (then forcibly after the grace) and delete the temp dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await this.#process?.stop(this.stopPolicy.signal, this.stopPolicy.graceMs);
    } finally {
      await removeDir(this.serverDir);
      untrackDir(this.serverDir);
    }
  }
}
