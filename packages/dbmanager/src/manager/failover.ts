import {
  appliedPosition,
  configureSemiSync,
  currentPosition,
  detachReplica,
  repoint,
  setReadOnly,
  stopIoThreadNow,
  stopReplication,
  waitForGtid,
} from '../actions.js';
import { mostAdvanced, rankCandidates, type Candidate, type PrimaryVerdict } from '../decide.js';
import { compareGtidPositions, parseGtidPosition } from '../gtid.js';
import { readReplication } from '../probe.js';
import type { PendingRejoin } from '../topology.js';
import { isNotLeader } from '../errors.js';
import type { ManagerContext } from './context.js';
import type { MemberState } from './member-state.js';
import { publish, raise, record, resolve } from './publishing.js';

// Failover execution: freeze, choose, catch up, promote, publish, repoint; undone and retried when it fails part-way.

export async function failover(ctx: ManagerContext, primary: MemberState, verdict: PrimaryVerdict): Promise<void> {
  const started = ctx.now();
  const mark = (step: string) => ctx.logger.debug({ step, ms: ctx.now() - started }, 'failover step');
  const old = primary.config.name;
  ctx.fence(`fail over from ${old}`);
  record(ctx, {
    type: 'failover-started',
    severity: 'warning',
    member: old,
    message: `primary ${old} is down (confirmed by ${verdict.confirmations.join(', ')}); failing over`,
    details: { confirmations: verdict.confirmations },
  });
  const replicas = verdict.confirmations
    .map((name) => ctx.states.get(name))
    .filter((s): s is MemberState => s !== undefined);
  let promoted:
    | {
        chosen: MemberState;
        promotedAt: string;
        candidates: Candidate[];
        excluded: ReturnType<typeof rankCandidates>['excluded'];
      }
    | undefined;
  try {
    promoted = await detachAndPublish(ctx, primary, replicas, mark);
  } catch (error) {
    if (isNotLeader(error) || !ctx.isLeading()) {
      // Deposed mid-way, before the publish. The replicas are frozen (IO threads stopped, the
      // candidate perhaps detached): put back, or the next leader finds no witness (a stopped IO
      // thread is an administrator's) and cannot fail over. No alert, no retry of ours: the next
      // leader fails over, and it took our announced primary-down over (it is not sent twice).
      const notRestored = await undoFailover(ctx, primary, replicas);
      ctx.logger.warn({ err: error, notRestored }, 'failover interrupted: no longer the leader; replicas put back');
      record(ctx, {
        type: 'failover-interrupted',
        severity: 'warning',
        member: old,
        message: `failover from ${old} interrupted: ${ctx.id} is no longer the leader; the next leader fails over`,
        details: { reason: (error as Error).message ?? String(error), notRestored },
      });
      return;
    }
    await failoverFailed(ctx, primary, replicas, error);
    return;
  }
  if (promoted === undefined) {
    // Refused (no candidate, relay log not applied): alerted by the step; undone like a failure, retried with back-off.
    await undoFailover(ctx, primary, replicas);
    scheduleFailoverRetry(ctx);
    return;
  }
  const { chosen: chosenState, promotedAt, candidates, excluded } = promoted;
  const chosen = { name: chosenState.config.name };
  // Semi-sync primary side on before the others connect: they then register as semi-sync replicas, and the
  // new primary's first commits (after read_only=0 below) find one acknowledging.
  if (ctx.config.semiSync.enabled) {
    await ctx
      .withMember(chosenState, (c) => configureSemiSync(c, ctx.config.semiSync.timeoutMs, 'primary', false))
      .catch((error: unknown) => {
        ctx.logger.warn(
          { err: error, member: chosen.name },
          'semi-sync on the new primary failed; the next probe retries',
        );
      });
  }
  // The others follow first, so that the new primary's first commits find a semi-sync replica.
  const followers = candidates.filter((c) => c.name !== chosen.name);
  const repointed: string[] = [];
  await Promise.all(
    followers.map(async (follower) => {
      const state = ctx.states.get(follower.name);
      if (state === undefined) return;
      try {
        await ctx.withMember(state, (c) => repoint(c, ctx.source(chosenState.config)));
        repointed.push(follower.name);
      } catch (error) {
        ctx.logger.warn(
          { err: error, member: follower.name },
          'repointing after failover failed; the next probe retries',
        );
      }
    }),
  );
  mark('repointed');
  ctx.fence(`make ${chosen.name} writable`);
  await ctx.withMember(chosenState, (c) => setReadOnly(c, false));
  const writableAfterMs = ctx.now() - started;
  ctx.failoverRetry = { attempts: 0, nextAt: 0 };

  resolve(ctx, 'primary-down', old, `failed over to ${chosen.name}`);
  resolve(ctx, 'failover-blocked', old, `failed over to ${chosen.name}`);
  resolve(ctx, 'failover-impossible', old, `failed over to ${chosen.name}`);
  resolve(ctx, 'failover-failed', old, `failed over to ${chosen.name}`);
  const message = `failover: ${old} → ${chosen.name} (writable after ${writableAfterMs} ms, at ${promotedAt || 'empty GTID position'})`;
  record(ctx, {
    type: 'failover',
    severity: 'critical',
    member: chosen.name,
    message,
    details: {
      from: old,
      to: chosen.name,
      promotedAt,
      epoch: ctx.topology.epoch,
      writableAfterMs,
      confirmations: verdict.confirmations,
      excluded,
      repointed,
    },
  });
  ctx.notifier.event({
    cluster: ctx.config.cluster,
    condition: 'failover',
    subject: chosen.name,
    severity: 'critical',
    summary: message,
    details: { from: old, to: chosen.name, promotedAt, excluded },
  });
  ctx.suspect = false;
}

/**
 * The steps of a failover that change replicas before anything is published: freeze
 * what every replica received, choose, catch up, apply, detach the candidate, publish
 * (fenced). Undefined when it refuses (alerted here); throws on an error part-way —
 * the caller undoes.
 */
async function detachAndPublish(
  ctx: ManagerContext,
  primary: MemberState,
  replicas: readonly MemberState[],
  mark: (step: string) => void,
): Promise<
  | {
      chosen: MemberState;
      promotedAt: string;
      candidates: Candidate[];
      excluded: ReturnType<typeof rankCandidates>['excluded'];
    }
  | undefined
> {
  const old = primary.config.name;
  const read = await Promise.all(
    replicas.map(async (state): Promise<Candidate | undefined> => {
      try {
        return await ctx.withMember(state, async (c) => {
          await stopIoThreadNow(c);
          const replication = await readReplication(c);
          const applied = await appliedPosition(c);
          return {
            name: state.config.name,
            config: state.config,
            received: replication?.gtidIoPos ?? '',
            applied,
            canApply: !(
              replication !== undefined &&
              replication.sqlRunning !== 'Yes' &&
              replication.lastSqlErrno !== 0
            ),
          };
        });
      } catch (error) {
        ctx.logger.warn({ err: error, member: state.config.name }, 'replica unreadable during failover');
        return undefined;
      }
    }),
  );
  const candidates = read.filter((c): c is Candidate => c !== undefined);
  mark('positions read');
  const { ranked, excluded } = rankCandidates(candidates);
  const chosen = ranked[0];
  if (chosen === undefined) {
    raise(ctx, 'failover-impossible', old, 'critical', `primary ${old} is down and no replica can be promoted`, {
      excluded,
      candidates: candidates.map((c) => c.name),
    });
    return undefined;
  }
  const chosenState = ctx.states.get(chosen.name);
  if (chosenState === undefined) return undefined;
  let target = chosen.received || chosen.applied;
  const donor = mostAdvanced(candidates);
  if (
    donor !== undefined &&
    donor.name !== chosen.name &&
    compareGtidPositions(parseGtidPosition(donor.received || donor.applied), parseGtidPosition(target)) > 0
  ) {
    target = await catchUp(ctx, chosenState, donor, target);
  }
  const applied = await ctx.withMember(chosenState, (c) => waitForGtid(c, target, ctx.config.failover.applyTimeoutMs));
  mark('relay log applied');
  if (!applied) {
    raise(
      ctx,
      'failover-impossible',
      old,
      'critical',
      `candidate ${chosen.name} did not apply its relay log up to ${target} within ${ctx.config.failover.applyTimeoutMs} ms; not promoting`,
      { target },
    );
    return undefined;
  }

  ctx.fence(`promote ${chosen.name}`);
  const promotedAt = await ctx.withMember(chosenState, async (c) => {
    await detachReplica(c);
    return currentPosition(c);
  });
  mark('detached');
  const now = ctx.now();
  const missed = [...ctx.states.values()]
    .filter((s) => s !== primary && s !== chosenState && !candidates.some((c) => c.name === s.config.name))
    .map((s): PendingRejoin => ({ name: s.config.name, base: promotedAt, reason: 'missed-failover', since: now }));
  const pendingRejoin = [
    ...ctx.topology.pendingRejoin.filter(
      (p) => p.name !== old && p.name !== chosen.name && !missed.some((m) => m.name === p.name),
    ),
    { name: old, base: promotedAt, reason: 'former-primary' as const, since: now },
    ...missed,
  ];
  // Published (fenced) before the new primary takes writes: a deposed manager stops here.
  await publish(ctx, {
    ...ctx.topology,
    epoch: ctx.topology.epoch + 1,
    primary: chosen.name,
    promotedAt,
    pendingRejoin,
    quarantined: ctx.topology.quarantined.filter((q) => q.name !== chosen.name),
    lastFailoverAt: now,
    cooldownUntil: now + ctx.config.failover.cooldownMs,
  });
  mark('published');
  return { chosen: chosenState, promotedAt, candidates, excluded };
}

/**
 * Put every replica the failover touched back as it was: replicating from the old
 * primary (IO thread running again, nothing detached; `MASTER_USE_GTID=slave_pos`
 * resumes from what each applied). Returns the members it could not restore.
 */
async function undoFailover(
  ctx: ManagerContext,
  primary: MemberState,
  replicas: readonly MemberState[],
): Promise<string[]> {
  const source = ctx.source(primary.config);
  const failed: string[] = [];
  await Promise.all(
    replicas.map(async (state) => {
      try {
        await ctx.withMember(state, (c) => repoint(c, source));
      } catch (error) {
        failed.push(state.config.name);
        ctx.logger.error({ err: error, member: state.config.name }, 'cannot undo the failover on this replica');
      }
    }),
  );
  return failed;
}

function scheduleFailoverRetry(ctx: ManagerContext): number {
  const attempts = ctx.failoverRetry.attempts + 1;
  const delay = Math.min(
    ctx.config.failover.retryBackoffMaxMs,
    ctx.config.failover.retryBackoffMs * 2 ** (attempts - 1),
  );
  ctx.failoverRetry = { attempts, nextAt: ctx.now() + delay };
  return delay;
}

async function failoverFailed(
  ctx: ManagerContext,
  primary: MemberState,
  replicas: readonly MemberState[],
  error: unknown,
): Promise<void> {
  const old = primary.config.name;
  const reason = (error as Error).message ?? String(error);
  const notRestored = await undoFailover(ctx, primary, replicas);
  const delay = scheduleFailoverRetry(ctx);
  const undone =
    notRestored.length === 0
      ? `undone: ${replicas.map((s) => s.config.name).join(', ')} replicate from ${old} again`
      : `could not undo on ${notRestored.join(', ')}`;
  record(ctx, {
    type: 'failover-attempt-failed',
    severity: 'critical',
    member: old,
    message: `failover from ${old} failed (attempt ${ctx.failoverRetry.attempts}): ${reason}; ${undone}; next attempt in ${delay} ms`,
    details: { reason, notRestored, attempt: ctx.failoverRetry.attempts, retryInMs: delay },
  });
  raise(
    ctx,
    'failover-failed',
    old,
    'critical',
    `failover from ${old} failed: ${reason}; ${undone}; retrying with back-off`,
    { reason, notRestored, attempt: ctx.failoverRetry.attempts },
  );
}

/** The chosen replica is behind another (never-promote, or with a broken SQL thread): fetch the difference from it first. */
async function catchUp(ctx: ManagerContext, chosen: MemberState, donor: Candidate, target: string): Promise<string> {
  const donorState = ctx.states.get(donor.name);
  const donorTarget = donor.received || donor.applied;
  if (donorState === undefined) return target;
  try {
    // Whatever the donor received must be in its binlog (log_slave_updates) before others can read it.
    const donorApplied = await ctx.withMember(donorState, (c) =>
      waitForGtid(c, donorTarget, ctx.config.failover.applyTimeoutMs),
    );
    if (!donorApplied) throw new Error(`${donor.name} did not apply its own relay log`);
    ctx.fence(`catch ${chosen.config.name} up from ${donor.name}`);
    const reached = await ctx.withMember(chosen, async (c) => {
      await repoint(c, ctx.source(donorState.config));
      const ok = await waitForGtid(c, donorTarget, ctx.config.failover.applyTimeoutMs);
      await stopReplication(c);
      return ok;
    });
    if (!reached) throw new Error(`${chosen.config.name} did not reach ${donorTarget}`);
    record(ctx, {
      type: 'catch-up',
      severity: 'info',
      member: chosen.config.name,
      message: `${chosen.config.name} caught up from ${donor.name} to ${donorTarget} before its promotion`,
    });
    return donorTarget;
  } catch (error) {
    raise(
      ctx,
      'failover-data-loss',
      chosen.config.name,
      'critical',
      `${chosen.config.name} could not catch up from the more advanced ${donor.name}: transactions up to ${donorTarget} may be missing on the new primary`,
      {
        error: (error as Error).message,
      },
    );
    return target;
  }
}
