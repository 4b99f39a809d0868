import { rmSync } from 'node:fs';
import { constants } from 'node:os';
import { listDescendants, signalAll } from './process-tree.js';

/** Anything that may have a live server process. */
export interface TrackedProcess {
  readonly pid: number | undefined;
}

/*
 * Process-wide on purpose: 'exit' and signal handlers are process-wide, and a test that
 * dies or forgets `stop()` must not leave a database running on the machine. This is the
 * only mutable module state of the package besides the port and template caches.
 */
const processes = new Set<TrackedProcess>();
const dirs = new Set<string>();
let handlersInstalled = false;

const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** SIGKILL every tracked server with its descendants, then delete every tracked directory. */
function cleanUpNow(): void {
  for (const tracked of processes) {
    const pid = tracked.pid;
    if (pid === undefined) continue;
    try {
      signalAll([pid, ...listDescendants(pid)], 'SIGKILL');
    } catch {
      // Nothing more can be done while the process exits.
    }
  }
  processes.clear();
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    } catch {
      // Leave it to the OS's tmp cleaning; the process is exiting.
    }
  }
  dirs.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanUpNow);
  for (const signal of FORWARDED_SIGNALS) {
    const onSignal = (): void => {
      cleanUpNow();
      // We were the only listener, so without us the signal would have ended the
      // process: end it, with the status a shell reports for that signal.
      if (process.listenerCount(signal) === 0) process.exit(128 + constants.signals[signal]);
    };
    process.once(signal, onSignal);
  }
}

/** Kill this process (and its descendants) with SIGKILL if the test process exits first. */
export function trackProcess(tracked: TrackedProcess): void {
  installHandlers();
  processes.add(tracked);
}

/** Forget a process that has exited. */
export function untrackProcess(tracked: TrackedProcess): void {
  processes.delete(tracked);
}

/** Delete this directory if the test process exits before it is removed. */
export function trackDir(dir: string): void {
  installHandlers();
  dirs.add(dir);
}

/** Forget a directory that has been removed. */
export function untrackDir(dir: string): void {
  dirs.delete(dir);
}
