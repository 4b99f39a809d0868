import { runRestartCommand } from '../restart.js';
import type { ManagerContext } from './context.js';
import { raise, record, resolve } from './publishing.js';

// Member restarts: run a dead member's restart command, with back-off; on every node, leader or not.

export async function restartDeadMembers(ctx: ManagerContext): Promise<void> {
  const now = ctx.now();
  for (const state of ctx.states.values()) {
    const command = state.config.restartCommand;
    const probe = state.probe;
    if (command === undefined || probe === undefined || probe.ok || probe.error?.refused !== true) continue;
    if (
      state.restart.running ||
      state.downSince === undefined ||
      now - state.downSince < ctx.config.repair.restartAfterMs ||
      now < state.restart.nextAt
    )
      continue;
    state.restart.running = true;
    state.restart.attempts += 1;
    const attempt = state.restart.attempts;
    const delay = Math.min(
      ctx.config.repair.restartBackoffMaxMs,
      ctx.config.repair.restartBackoffMs * 2 ** (attempt - 1),
    );
    state.restart.nextAt = now + delay;
    const name = state.config.name;
    try {
      const result = await runRestartCommand(command, ctx.config.repair.restartTimeoutMs);
      record(ctx, {
        type: 'member-restart',
        severity: 'warning',
        member: name,
        message: `${name} refused connections for ${now - state.downSince} ms; ran its restart command (attempt ${attempt}): ${result.ok ? 'exited 0' : result.error}`,
        details: { attempt, command, ok: result.ok, output: result.output },
      });
      if (attempt >= ctx.config.repair.restartAttemptsBeforeAlert) {
        raise(
          ctx,
          'member-restart-failed',
          name,
          'critical',
          `${name} is still down after ${attempt} restart attempts${result.ok ? '' : `: ${result.error}`}`,
          { attempts: attempt, command },
        );
      }
    } finally {
      state.restart.running = false;
    }
  }
  for (const state of ctx.states.values()) {
    if (state.probe?.ok === true)
      resolve(ctx, 'member-restart-failed', state.config.name, `${state.config.name} answers again`);
  }
}
