import type { Writable } from 'node:stream';

/** Where a command reads its environment and writes its output; tests pass their own. */
export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Aborts long-running commands (`server`, `up`): Ctrl-C in the binary. */
  signal?: AbortSignal;
}

/** Fill in the process defaults for what the caller did not give. */
export function resolveIo(io: Partial<CliIo> = {}): CliIo {
  return {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    env: io.env ?? process.env,
    cwd: io.cwd ?? process.cwd(),
    ...(io.signal ? { signal: io.signal } : {}),
  };
}

/** Write a line. */
export function line(stream: Writable, text = ''): void {
  stream.write(`${text}\n`);
}

/** Resolve when `signal` aborts (never, without a signal). */
export function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return new Promise(() => undefined);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
