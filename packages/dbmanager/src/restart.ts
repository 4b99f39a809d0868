import { execFile } from 'node:child_process';

/** What a restart command did. */
export interface RestartResult {
  ok: boolean;
  error?: string;
  /** The last 2000 characters of its output. */
  output: string;
}

/**
 * Run a member's restart command: an argv array run without a shell (no quoting or
 * injection questions), with a deadline. A command that starts a daemon must return once
 * the daemon runs (e.g. `systemctl start mariadb`, or a wrapper that detaches it).
 */
export function runRestartCommand(argv: readonly string[], timeoutMs: number): Promise<RestartResult> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.resolve({ ok: false, error: 'empty restart command', output: '' });
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.slice(-2000);
        if (error)
          resolve({ ok: false, error: error.killed ? `timed out after ${timeoutMs} ms` : error.message, output });
        else resolve({ ok: true, output });
      },
    );
  });
}
