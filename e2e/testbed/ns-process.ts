import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { waitFor } from '@insitu/core';
import { netnsOf, type Machine } from './network.js';

/**
 * A long-running process inside one machine of the bed (`ip netns exec` execs the program,
 * so the child's PID is the program's). Output goes to a log file and is kept in memory
 * (the last 64 KiB) to wait on.
 */
export class NsProcess {
  child: ChildProcess | undefined;
  output = '';
  private log: WriteStream;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly machine: Machine,
    readonly command: string,
    readonly args: readonly string[],
    readonly env: NodeJS.ProcessEnv,
    logFile: string,
  ) {
    this.log = createWriteStream(logFile, { flags: 'a' });
  }

  start(): this {
    const child = spawn('ip', ['netns', 'exec', netnsOf(this.machine), this.command, ...this.args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const take = (c: Buffer) => {
      this.log.write(c);
      this.output = (this.output + c.toString()).slice(-65_536);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    return this;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        if (!this.running) throw new Error(`${this.name} exited: ${this.output.slice(-2000)}`);
        return this.output.match(pattern) ?? undefined;
      },
      { timeoutMs, what: `${this.name} to print ${pattern}` },
    );
  }

  /** Send a signal; for terminating signals wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child?.kill(signal);
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await this.exited;
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.log.end();
  }
}
