import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import type { Logger } from '@insitu/core';
import type { Launch } from './sandbox.js';

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

/** A running application process (the sandbox around it included), with its last output lines. */
export class InstanceProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<InstanceExit>;
  readonly output: string[] = [];
  private exitInfo: InstanceExit | undefined;

  constructor(
    readonly launch: Launch,
    logger: Logger,
  ) {
    this.child = spawn(launch.command, launch.args, { env: launch.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      this.child.once('error', (error) => {
        this.output.push(`spawn failed: ${error.message}`);
        this.exitInfo = { code: 127, signal: null };
        resolve(this.exitInfo);
      });
    });
    for (const [stream, level] of [[this.child.stdout, 'info'], [this.child.stderr, 'warn']] as const) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        const text = line.length > 2000 ? `${line.slice(0, 2000)}…` : line;
        this.output.push(text);
        if (this.output.length > 50) this.output.shift();
        logger[level]({ pid: this.child.pid, line: text }, 'app output');
      });
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs: number): Promise<InstanceExit> {
    if (this.exitInfo) return this.exitInfo;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
