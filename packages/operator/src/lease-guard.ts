#!/usr/bin/env node
// The lease guard: runs a placed service's command and SIGKILLs it when the node's lease
// deadline passes without an extension. `insitu node` writes each new deadline (epoch ms,
// one per line) to the guard's stdin after every lease renewal. A frozen node (SIGSTOP)
// stops extending it, so its placed services die by the time etcd can expire the lease
// and the leader can start them elsewhere: never two copies. A closed stdin (the node
// died) kills the service at once.
// argv: <initial deadline ms> <command> [args…]. Exit: the service's own code or signal;
// 75 when the guard killed it at the deadline.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export const GUARD_FENCED_EXIT = 75;

const [deadlineText = '0', file, ...args] = process.argv.slice(2);
if (!file) {
  process.stderr.write('lease-guard: usage: lease-guard DEADLINE_MS COMMAND [ARGS...]\n');
  process.exit(64);
}
let deadline = Number(deadlineText);
const child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit'] });
let fenced = false;
const fence = (why: string) => {
  if (fenced) return;
  fenced = true;
  process.stderr.write(`lease-guard: ${why}; killing ${file} (pid ${child.pid ?? '?'})\n`);
  child.kill('SIGKILL');
};
let timer: NodeJS.Timeout | undefined;
const arm = () => {
  if (timer) clearTimeout(timer);
  timer = setTimeout(
    () => fence(`the node lease deadline ${new Date(deadline).toISOString()} passed without renewal`),
    Math.max(0, deadline - Date.now()),
  );
};
arm();
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const next = Number(line.trim());
    if (Number.isFinite(next) && next > deadline) {
      deadline = next;
      arm();
    }
  })
  .on('close', () => fence('the node process is gone (stdin closed)'));
// Signals to the process group reach the service directly; the guard waits for it and mirrors its end.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
child.on('error', (error) => {
  process.stderr.write(`lease-guard: cannot start ${file}: ${error.message}\n`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  if (timer) clearTimeout(timer);
  if (fenced) process.exit(GUARD_FENCED_EXIT);
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code ?? 1);
});
