import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, renameSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { waitFor, type Logger } from '@insitu/core';
import { AGENT_ALIVE_FD, type Launch } from './sandbox.js';

/** How an instance process ended. */
export interface InstanceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One probe: GET /healthz on the app's socket; any answer below 500 means it is serving. */
export function probe(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/healthz', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Bind the instance's listening socket at `path` (a directory only the agent can reach)
 * and return the server holding it. The app gets a copy of the descriptor; the agent
 * connects to `path`, which names that socket and nothing the app could replace.
 */
async function bindListener(path: string): Promise<{ server: Server; fd: number }> {
  const staging = `${path}.bind`;
  rmSync(path, { force: true });
  rmSync(staging, { force: true });
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: staging, backlog: 511 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // libuv unlinks the path it bound when the server closes: the socket file keeps its
  // final name only under another name than the one bound.
  renameSync(staging, path);
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    server.close();
    throw new Error('cannot obtain the descriptor of the listening socket');
  }
  return { server, fd };
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

/** A running application process (the sandbox around it included), with its last output lines. */
export class InstanceProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<InstanceExit>;
  readonly output: string[] = [];
  private exitInfo: InstanceExit | undefined;

  /**
   * Bind the listening socket, start the launch with it on descriptor 3 (the seccomp
   * program on 4, the agent's liveness socket on 5), then close the agent's own copies: from then on only the app accepts.
   * The process leads its own process group, so the whole tree can be signalled.
   */
  static async start(
    launch: Launch,
    logger: Logger,
    onLine?: (stream: 'stdout' | 'stderr', line: string) => void,
  ): Promise<InstanceProcess> {
    const { server, fd } = await bindListener(launch.listenSocket);
    let seccomp: number | undefined;
    try {
      if (launch.seccompFile) seccomp = openSync(launch.seccompFile, 'r');
      return new InstanceProcess(launch, logger, fd, seccomp, onLine);
    } finally {
      server.close();
      if (seccomp !== undefined) closeSync(seccomp);
    }
  }

  private constructor(
    readonly launch: Launch,
    logger: Logger,
    listenFd: number,
    seccompFd: number | undefined,
    onLine?: (stream: 'stdout' | 'stderr', line: string) => void,
  ) {
    this.child = spawn(launch.command, launch.args, {
      env: launch.env,
      stdio: ['ignore', 'pipe', 'pipe', listenFd, seccompFd ?? 'ignore', 'pipe'],
      detached: true,
    });
    // The launcher's watchdog reads its end of this pair until the agent is gone; nothing is ever written.
    (this.child.stdio as ReadonlyArray<Readable | Writable | null | undefined>)[AGENT_ALIVE_FD]?.on(
      'error',
      () => undefined,
    );
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        // Whatever of the tree is left (the sandbox's init, if the launcher went first) goes too.
        signalGroup(this.child.pid, 'SIGKILL');
        resolve(this.exitInfo);
      });
      this.child.once('error', (error) => {
        this.output.push(`spawn failed: ${error.message}`);
        this.exitInfo = { code: 127, signal: null };
        resolve(this.exitInfo);
      });
    });
    for (const [stream, level, name] of [
      [this.child.stdout, 'info', 'stdout'],
      [this.child.stderr, 'warn', 'stderr'],
    ] as const) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        const text = line.length > 2000 ? `${line.slice(0, 2000)}…` : line;
        this.output.push(text);
        if (this.output.length > 50) this.output.shift();
        logger[level]({ pid: this.child.pid, line: text }, 'app output');
        onLine?.(name, text);
      });
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /**
   * Resolves once no process of the group is left (a SIGKILLed process lingers a moment after
   * the launcher's exit), or after `timeoutMs` with false.
   */
  async groupGone(timeoutMs = 2000): Promise<boolean> {
    await this.exited;
    const pid = this.child.pid;
    const alive = () => {
      if (pid === undefined) return false;
      try {
        process.kill(-pid, 0);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    };
    return waitFor(() => !alive(), { timeoutMs, intervalMs: 5 }).then(
      () => true,
      () => false,
    );
  }

  /** SIGTERM to the process group, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs: number): Promise<InstanceExit> {
    if (this.exitInfo) return this.exitInfo;
    signalGroup(this.child.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(this.child.pid, 'SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
