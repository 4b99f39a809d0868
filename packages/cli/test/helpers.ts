import { PassThrough } from 'node:stream';
import { waitFor } from '@insitu/core';
import { main } from '../src/index.js';

/** Run `main` in-process, capturing output. */
export async function run(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
  signal?: AbortSignal,
  input?: string,
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stdin = new PassThrough();
  stdin.end(input ?? '');
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await main(argv, { stdout, stderr, stdin, env, ...(signal ? { signal } : {}), ...(cwd ? { cwd } : {}) });
  return { code, stdout: out, stderr: err };
}

/** Start a long-running command in-process; returns its live output and a stop function. */
export function start(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const controller = new AbortController();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const output = { stdout: '', stderr: '' };
  stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  const done = main(argv, { stdout, stderr, env, signal: controller.signal });
  return {
    output,
    done,
    async waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
      return waitFor(
        async () => {
          const settled = await Promise.race([done.then((code) => ({ code })), Promise.resolve(undefined)]);
          if (settled) throw new Error(`command ended with ${settled.code}: ${output.stderr}`);
          return output.stdout.match(pattern) ?? undefined;
        },
        { timeoutMs, what: `output matching ${pattern}` },
      );
    },
    async stop(): Promise<number> {
      controller.abort();
      return done;
    },
  };
}
