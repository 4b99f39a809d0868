import { InsituError } from '@insitu/core';
import {
  binlogPosition,
  configureSemiSync,
  currentPosition,
  demoteToReplica,
  detachReplica,
  repoint,
  setReadOnly,
  waitForGtid,
} from '../actions.js';
import { replicatesFrom } from '../decide.js';
import { fenceMember } from '../fence.js';
import { probeMember, type ReplicationStatus } from '../probe.js';
import type { ManagerContext } from './context.js';
import { requireLeader } from './leadership.js';
import { absorb } from './probing.js';
import { publish, record } from './publishing.js';

/** What a switchover did. */
export interface SwitchoverResult {
  from: string;
  to: string;
  /** The old primary's final GTID position, which the new one reached before promotion. */
  gtid: string;
  /** From setting the old primary read-only to the new primary accepting writes. */
  readOnlyMs: number;
  killedConnections: number;
  epoch: number;
}

export async function switchover(ctx: ManagerContext, to: string): Promise<SwitchoverResult> {
  await requireLeader(ctx);
  const target = ctx.states.get(to);
  if (target === undefined) {
    throw new InsituError(
      'INSITU_DBMANAGER_MEMBER_NOT_FOUND',
      `no member ${to}; members: ${[...ctx.states.keys()].join(', ')}`,
    );
  }
  const primaryName = ctx.topology.primary;
  const primary = primaryName === null ? undefined : ctx.states.get(primaryName);
  if (primary === undefined) throw refuse(ctx, to, 'no primary is known yet');
  if (primary === target) throw refuse(ctx, to, `${to} is already the primary`);
  const options = {
    connectTimeoutMs: ctx.config.probe.connectTimeoutMs,
    queryTimeoutMs: ctx.config.probe.queryTimeoutMs,
  };
  const [primaryProbe, targetProbe] = await Promise.all([
    probeMember(primary.endpoint, options, ctx.now),
    probeMember(target.endpoint, options, ctx.now),
  ]);
  absorb(ctx, primary, primaryProbe);
  absorb(ctx, target, targetProbe);
  if (!primaryProbe.ok)
    throw refuse(
      ctx,
      to,
      `primary ${primary.config.name} is unreachable (${primaryProbe.error?.message ?? '?'}); a failover handles that`,
    );
  if (!targetProbe.ok) throw refuse(ctx, to, `${to} is unreachable: ${targetProbe.error?.message ?? '?'}`);
  if (target.config.neverPromote) throw refuse(ctx, to, `${to} is marked neverPromote`);
  if (ctx.topology.quarantined.some((q) => q.name === to)) throw refuse(ctx, to, `${to} is quarantined`);
  if (ctx.topology.pendingRejoin.some((p) => p.name === to)) throw refuse(ctx, to, `${to} has not rejoined yet`);
  if (!replicatesFrom(ctx.view(target), primary.config))
    throw refuse(ctx, to, `${to} does not replicate from primary ${primary.config.name}`);
  const replication = targetProbe.replication as ReplicationStatus;
  if (replication.ioRunning !== 'Yes' || replication.sqlRunning !== 'Yes') {
    throw refuse(
      ctx,
      to,
      `replication on ${to} is not running (IO ${replication.ioRunning}, SQL ${replication.sqlRunning}${replication.lastSqlError ? `: ${replication.lastSqlError}` : ''}${replication.lastIoError ? `: ${replication.lastIoError}` : ''})`,
    );
  }
  if (
    replication.secondsBehindMaster === null ||
    replication.secondsBehindMaster > ctx.config.switchover.maxLagSeconds
  ) {
    throw refuse(
      ctx,
      to,
      `${to} is ${replication.secondsBehindMaster ?? 'an unknown number of'} s behind (at most ${ctx.config.switchover.maxLagSeconds} s allowed)`,
    );
  }

  const from = primary.config.name;
  ctx.fence(`switch over to ${to}`);
  record(ctx, {
    type: 'switchover-started',
    severity: 'info',
    member: to,
    message: `switchover ${from} → ${to} started`,
  });
  const started = ctx.now();
  // The verified fence (kill clients, read_only=1 while killing again, read it back): a plain
  // `SET read_only=1` waits behind commits in progress and says nothing about whether it held.
  const fenced = await fenceMember(() => ctx.connect(primary), ctx.spareUsers(), {
    deadlineMs: ctx.config.switchover.lockWaitTimeoutSeconds * 1000,
  });
  if (!fenced.readOnly) {
    await ctx.withMember(primary, (c) => setReadOnly(c, false)).catch(() => undefined);
    const reason = fenced.error ?? 'read_only is still 0';
    record(ctx, {
      type: 'switchover-failed',
      severity: 'warning',
      member: to,
      message: `switchover ${from} → ${to} rolled back: ${from} could not be made read-only (${reason})`,
    });
    throw new InsituError(
      'INSITU_DBMANAGER_SWITCHOVER_FAILED',
      `${from} could not be made read-only (${reason}); nothing changed, ${from} stays the primary`,
      { details: { rolledBack: true, killed: fenced.killed } },
    );
  }
  const killed = fenced.killed;
  const gtid = await ctx.withMember(primary, (c) => binlogPosition(c));
  let caughtUp = false;
  try {
    caughtUp = await ctx.withMember(target, (c) => waitForGtid(c, gtid, ctx.config.switchover.catchUpTimeoutMs));
  } catch (error) {
    ctx.logger.warn({ err: error }, 'switchover: waiting for the target failed');
  }
  if (!caughtUp) {
    await ctx.withMember(primary, (c) => setReadOnly(c, false)).catch(() => undefined);
    record(ctx, {
      type: 'switchover-failed',
      severity: 'warning',
      member: to,
      message: `switchover ${from} → ${to} rolled back: ${to} did not reach ${gtid} within ${ctx.config.switchover.catchUpTimeoutMs} ms`,
    });
    throw new InsituError(
      'INSITU_DBMANAGER_SWITCHOVER_FAILED',
      `${to} did not reach ${gtid} within ${ctx.config.switchover.catchUpTimeoutMs} ms; ${from} is writable again`,
      {
        details: { rolledBack: true, gtid },
      },
    );
  }
  ctx.fence(`promote ${to}`);
  const promotedAt = await ctx.withMember(target, async (c) => {
    await detachReplica(c);
    return currentPosition(c);
  });
  await publish(ctx, {
    ...ctx.topology,
    epoch: ctx.topology.epoch + 1,
    primary: to,
    promotedAt,
    pendingRejoin: ctx.topology.pendingRejoin.filter((p) => p.name !== to && p.name !== from),
  });
  await ctx.withMember(target, async (c) => {
    if (ctx.config.semiSync.enabled) await configureSemiSync(c, ctx.config.semiSync.timeoutMs, 'primary', false);
    await setReadOnly(c, false);
  });
  const readOnlyMs = ctx.now() - started;
  const source = ctx.source(target.config);
  await ctx
    .withMember(primary, (c) => demoteToReplica(c, source))
    .catch((error: unknown) => {
      ctx.logger.warn({ err: error }, 'switchover: demoting the old primary failed; the next probe retries');
    });
  await Promise.all(
    [...ctx.states.values()]
      .filter(
        (s) => s !== primary && s !== target && s.probe?.ok === true && replicatesFrom(ctx.view(s), primary.config),
      )
      .map((s) => ctx.withMember(s, (c) => repoint(c, source)).catch(() => undefined)),
  );
  const result: SwitchoverResult = {
    from,
    to,
    gtid,
    readOnlyMs,
    killedConnections: killed,
    epoch: ctx.topology.epoch,
  };
  record(ctx, {
    type: 'switchover',
    severity: 'info',
    member: to,
    message: `switchover ${from} → ${to} done; writes refused for ${readOnlyMs} ms`,
    details: { ...result },
  });
  return result;
}

function refuse(ctx: ManagerContext, to: string, reason: string): InsituError {
  record(ctx, {
    type: 'switchover-refused',
    severity: 'info',
    member: to,
    message: `switchover to ${to} refused: ${reason}`,
  });
  return new InsituError('INSITU_DBMANAGER_SWITCHOVER_REFUSED', `switchover to ${to} refused: ${reason}`, {
    details: { reason },
  });
}
