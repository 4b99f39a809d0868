import { setReadOnly } from '../actions.js';
import type { PrimaryVerdict } from '../decide.js';
import { iso, type ManagerContext } from './context.js';
import { failover } from './failover.js';
import type { MemberState } from './member-state.js';
import { requireLeader } from './leadership.js';
import { publish, raise, record, resolve } from './publishing.js';

// The failover decision: what a verdict on the primary leads to (alerts, cooldown, back-off, a failover).

/** Alerts about the primary, keyed by the member that was primary when raised. */
const PRIMARY_CONDITIONS = [
  'failover-failed',
  'primary-unreachable',
  'primary-down',
  'failover-blocked',
  'failover-impossible',
] as const;

export async function actOnVerdict(ctx: ManagerContext, primary: MemberState, verdict: PrimaryVerdict): Promise<void> {
  const name = primary.config.name;
  const details = {
    confirmations: verdict.confirmations,
    seeing: verdict.seeing,
    unreachable: verdict.unreachable,
    needed: verdict.needed,
    error: primary.probe?.error?.message,
  };
  if (verdict.state === 'alive') {
    if (ctx.failoverRetry.attempts > 0) ctx.failoverRetry = { attempts: 0, nextAt: 0 };
    resolve(ctx, 'failover-failed', name, `primary ${name} answers again`);
    resolve(ctx, 'primary-unreachable', name, `the manager reaches primary ${name} again`);
    resolve(ctx, 'primary-down', name, `primary ${name} answers again`);
    resolve(ctx, 'failover-blocked', name, `primary ${name} answers again`);
    // Alerts about a member that is no longer the primary: the primary changed other than by a
    // failover of ours that ran to its end (one that failed after its publish, a switchover, a
    // failover by another manager). They are keyed by that member; only a healthy primary ends them.
    for (const other of ctx.states.keys()) {
      if (other === name) continue;
      for (const condition of PRIMARY_CONDITIONS)
        resolve(ctx, condition, other, `${other} is no longer the primary; primary ${name} answers`);
    }
    await ensurePrimaryWritable(ctx, primary);
    return;
  }
  if (verdict.state === 'suspect') return;
  if (verdict.state === 'seen-by-replicas') {
    raise(
      ctx,
      'primary-unreachable',
      name,
      'warning',
      `the manager cannot reach primary ${name}, but replicas ${verdict.seeing.join(', ')} still replicate from it: no failover`,
      details,
    );
    return;
  }
  if (verdict.state === 'unconfirmed') {
    raise(
      ctx,
      'primary-down',
      name,
      'critical',
      `primary ${name} is unreachable and no replica sees it, but only ${verdict.confirmations.length} of the ${verdict.needed} replicas needed can confirm it: no automatic failover`,
      details,
    );
    return;
  }
  // Dead.
  raise(
    ctx,
    'primary-down',
    name,
    'critical',
    `primary ${name} is down (confirmed by ${verdict.confirmations.join(', ')})`,
    details,
  );
  if (!ctx.config.failover.auto) {
    raise(
      ctx,
      'failover-blocked',
      name,
      'critical',
      `primary ${name} is down and automatic failover is off: switch over by hand`,
      details,
    );
    return;
  }
  const now = ctx.now();
  if (now < ctx.topology.cooldownUntil) {
    raise(
      ctx,
      'failover-blocked',
      name,
      'critical',
      `primary ${name} is down, but the last failover was at ${iso(ctx.topology.lastFailoverAt) ?? '?'}: automatic failover is blocked until ` +
        `${iso(ctx.topology.cooldownUntil) ?? '?'}; run \`insitu db ack\` to let it proceed`,
      {
        ...details,
        cooldownUntil: iso(ctx.topology.cooldownUntil),
        lastFailoverAt: iso(ctx.topology.lastFailoverAt),
      },
    );
    return;
  }
  // A failover that failed part-way was undone; the next attempt waits (exponential back-off), not every tick.
  if (now < ctx.failoverRetry.nextAt) return;
  await failover(ctx, primary, verdict);
}

/**
 * Acknowledge the last failover: the cooldown ends, so a primary failure (also one that
 * is blocked right now) is failed over automatically again.
 */
export async function acknowledgeFailover(
  ctx: ManagerContext,
  by = 'an administrator',
): Promise<{ cooldownWasActive: boolean; lastFailoverAt: string | null }> {
  await requireLeader(ctx);
  const now = ctx.now();
  const cooldownWasActive = now < ctx.topology.cooldownUntil;
  await publish(ctx, { ...ctx.topology, cooldownUntil: 0, acknowledgedAt: now });
  record(ctx, {
    type: 'ack',
    severity: 'info',
    message: `${by} acknowledged the last failover${cooldownWasActive ? '; automatic failover is allowed again' : ' (no cooldown was active)'}`,
  });
  return { cooldownWasActive, lastFailoverAt: iso(ctx.topology.lastFailoverAt) };
}

/** A primary that answers but is read-only (it started with read_only=1) is made writable. */
export async function ensurePrimaryWritable(ctx: ManagerContext, primary: MemberState): Promise<void> {
  if (primary.probe?.ok !== true || primary.probe.readOnly !== true) return;
  ctx.fence(`make primary ${primary.config.name} writable`);
  await ctx.withMember(primary, (c) => setReadOnly(c, false));
  record(ctx, {
    type: 'primary-writable',
    severity: 'info',
    member: primary.config.name,
    message: `primary ${primary.config.name} was read-only (started with read_only=1); made writable`,
  });
}
