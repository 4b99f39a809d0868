import { sleep } from '@insitu/core';
import { notLeader } from '../errors.js';
import {
  electionName,
  parseRecord,
  PublishedAlertsSchema,
  PublishedTopologySchema,
  type ManagerRecord,
} from '../topology.js';
import type { ManagerContext } from './context.js';
import { LOCAL_CONDITIONS, record } from './publishing.js';

// Leadership: this manager's record in coord, the election, and who leads.

/**
 * Publish this manager's record (how `insitu db` and the server find its admin API) under a
 * lease. A lease lost while the manager runs (the process starved past its TTL, etcd cut
 * off) takes the record with it; it is published again on a fresh lease, retried with
 * back-off until it lands or the manager stops. Without this, a manager that once lost its
 * lease stayed unreachable for good (INSITU_DBMANAGER_NO_LEADER from every admin call).
 */
export async function publishRecord(ctx: ManagerContext): Promise<void> {
  if (ctx.adminUrl === undefined) return;
  await putRecordOnFreshLease(ctx, { id: ctx.id, adminUrl: ctx.adminUrl, startedAt: ctx.now() });
}

async function putRecordOnFreshLease(ctx: ManagerContext, record: ManagerRecord): Promise<void> {
  const signal = ctx.abort.signal;
  const lease = await ctx.coord.grantLease(ctx.config.coord.leaseTtlMs * 2);
  if (signal.aborted) {
    await lease.revoke();
    return;
  }
  ctx.lease = lease;
  lease.on('lost', (reason) => {
    if (signal.aborted || ctx.lease !== lease) return;
    ctx.logger.warn({ err: reason }, "the lease of this manager's record was lost; publishing the record again");
    void republishRecord(ctx, record);
  });
  await ctx.coord.put(ctx.keys.manager(ctx.id), JSON.stringify(record), { lease });
}

async function republishRecord(ctx: ManagerContext, record: ManagerRecord): Promise<void> {
  const signal = ctx.abort.signal;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await putRecordOnFreshLease(ctx, record);
      if (!signal.aborted) ctx.logger.info("this manager's record is published again");
      return;
    } catch (error) {
      ctx.logger.warn({ err: error, attempt }, "cannot publish this manager's record yet; retrying");
      await sleep(Math.min(5000, 250 * 2 ** Math.min(attempt, 5)), signal);
    }
  }
}

export async function loadTopology(ctx: ManagerContext): Promise<void> {
  const text = await ctx.coord.get(ctx.keys.topology);
  const topology = parseRecord(PublishedTopologySchema, text, 'published topology');
  if (topology) ctx.topology = topology;
}

/**
 * Take over the last leader's alerts: those it announced are not announced again, and this
 * manager resolves them when their condition clears. Unreadable state is logged, not fatal:
 * the conditions are raised again from what this manager sees.
 */
export async function takeOverAlerts(ctx: ManagerContext): Promise<void> {
  try {
    const published = parseRecord(PublishedAlertsSchema, await ctx.coord.get(ctx.keys.alerts), 'published alerts');
    if (published === undefined) return;
    ctx.notifier.restore(published.active.filter((alert) => !LOCAL_CONDITIONS.has(alert.item.condition)));
    ctx.publishedAlerts = JSON.stringify(published.active);
  } catch (error) {
    ctx.logger.warn({ err: error }, 'cannot take over the published alerts; raising afresh');
  }
}

export function campaign(ctx: ManagerContext): void {
  if (ctx.abort.signal.aborted) return;
  const leadership = ctx.coord.campaign(electionName(ctx.config.cluster), ctx.id, {
    ttlMs: ctx.config.coord.leaseTtlMs,
  });
  ctx.leadership = leadership;
  leadership.on('elected', (token) => {
    // The last leader's topology is the truth: read it before acting.
    loadTopology(ctx)
      .then(() => takeOverAlerts(ctx))
      .then(() => {
        if (ctx.leadership !== leadership || ctx.abort.signal.aborted) return;
        ctx.elected = true;
        ctx.metrics.leader.set(1);
        record(ctx, {
          type: 'elected',
          severity: 'info',
          message: `manager ${ctx.id} elected (fencing token ${token})`,
          details: { token },
        });
        ctx.emit('elected', token);
      })
      .catch((error: unknown) => {
        ctx.logger.error({ err: error }, 'cannot read the published topology after the election; resigning');
        void leadership.resign().catch(() => undefined);
      });
  });
  leadership.on('lost', (reason) => {
    if (ctx.leadership !== leadership) return;
    ctx.elected = false;
    ctx.metrics.leader.set(0);
    // The next leader takes our alerts over from what we published; we neither repeat nor resolve them.
    const handedOver = ctx.notifier.forget((item) => !LOCAL_CONDITIONS.has(item.condition));
    ctx.publishedAlerts = undefined;
    ctx.logger.warn({ err: reason, handedOver }, 'leadership lost');
    ctx.events.add({
      type: 'deposed',
      severity: 'warning',
      message: `manager ${ctx.id} lost its leadership: ${reason.message}`,
    });
    ctx.emit('deposed', reason);
    setTimeout(() => campaign(ctx), 100).unref();
  });
}

/** Throw `INSITU_DBMANAGER_NOT_LEADER` (naming the leader's URL) unless this manager leads. */
export async function requireLeader(ctx: ManagerContext): Promise<void> {
  if (ctx.isLeading()) return;
  const url = await leaderUrl(ctx);
  throw notLeader(ctx.id, `is not the elected one${url ? `; ask ${url}` : ''}`, {
    leaderId: leaderId(ctx) ?? null,
    leaderUrl: url ?? null,
  });
}

/** The id of the elected manager, if any. */
export function leaderId(ctx: ManagerContext): string | undefined {
  return ctx.observer?.leader();
}

/** The admin URL of the elected manager, read from coord. */
export async function leaderUrl(ctx: ManagerContext): Promise<string | undefined> {
  const leader = leaderId(ctx);
  if (leader === undefined) return undefined;
  if (leader === ctx.id) return ctx.adminUrl;
  const text = await ctx.coord.get(ctx.keys.manager(leader)).catch(() => undefined);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as ManagerRecord).adminUrl;
  } catch {
    return undefined;
  }
}
