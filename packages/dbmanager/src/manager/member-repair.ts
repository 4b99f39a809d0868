import { restartReplication, startReplication } from '../actions.js';
import { replicatesFrom } from '../decide.js';
import { fenceMember } from '../fence.js';
import { iso, type ManagerContext } from './context.js';
import type { MemberState } from './member-state.js';
import { raise, record, resolve } from './publishing.js';
import { checkQuarantine, errantGtids, quarantine, rejoin } from './rejoin.js';
import { tuneMember } from './semi-sync.js';

// Member repair: every member but the primary, each evaluation: fence it if writable, rejoin or quarantine it
// (see rejoin.ts), repair its replication threads (restart once, then alert), tune it.

export async function tendMember(
  ctx: ManagerContext,
  state: MemberState,
  primary: MemberState,
  primaryAlive: boolean,
): Promise<void> {
  const name = state.config.name;
  const probe = state.probe;
  if (probe?.ok !== true) {
    if (state.consecutiveFailures >= ctx.config.detection.failuresBeforeDown) {
      raise(ctx, 'member-down', name, 'warning', `${name} is unreachable: ${probe?.error?.message ?? 'no probe yet'}`, {
        since: iso(state.downSince),
      });
    }
    return;
  }
  resolve(ctx, 'member-down', name, `${name} answers again`);
  const quarantine = ctx.topology.quarantined.find((q) => q.name === name);
  if (probe.readOnly === false) {
    await fenceWritable(ctx, state, primary, quarantine !== undefined);
    return;
  }
  if (probe.readOnly === true && state.fenceRetry.attempts > 0) {
    // Read-only now without a fence of ours that took effect (its restart, the guard, a late SET): the episode is over.
    state.fenceRetry = { attempts: 0, nextAt: 0 };
    resolve(ctx, 'fence-failed', name, `${name} is read-only now`);
  }
  if (quarantine !== undefined) {
    await checkQuarantine(ctx, state, primary);
    return;
  }
  if (!primaryAlive) return;
  const pending = ctx.topology.pendingRejoin.find((p) => p.name === name);
  if (pending !== undefined || !replicatesFrom(ctx.view(state), primary.config)) {
    await rejoin(ctx, state, primary, pending);
    return;
  }
  await tendReplica(ctx, state, primary);
  await tuneMember(ctx, state, primary);
}

/** First retry of a fence that did not take effect; it doubles per failed attempt up to {@link FENCE_RETRY_MAX_MS}. */
export const FENCE_RETRY_MS = 500;
export const FENCE_RETRY_MAX_MS = 8000;

/**
 * Fence a member that is writable but not the primary, and believe only the member's own
 * answer: an event `fence` when `@@global.read_only` reads 1 afterwards; otherwise an
 * event `fence-failed` per attempt, one alert `fence-failed` (resolved once the member is
 * read-only), and another attempt after a back-off (500 ms doubling to 8 s, at most one
 * per tick). A member that cannot be reached is not fenced by anyone here: it is judged
 * by probes like any unreachable member, its own guard fences it on its side, and it is
 * fenced again (and its errant transactions checked) when it answers.
 */
async function fenceWritable(
  ctx: ManagerContext,
  state: MemberState,
  primary: MemberState,
  quarantined: boolean,
): Promise<void> {
  const name = state.config.name;
  if (ctx.now() < state.fenceRetry.nextAt) return;
  const firstAttempt = state.fenceRetry.attempts === 0;
  ctx.fence(`fence ${name}`);
  const result = await fenceMember(() => ctx.connect(state), ctx.spareUsers(), {
    deadlineMs: ctx.config.probe.queryTimeoutMs,
  });
  const expected = quarantined || ctx.topology.pendingRejoin.some((p) => p.name === name);
  if (firstAttempt && !expected)
    ctx.notifier.event({
      cluster: ctx.config.cluster,
      condition: 'unexpected-writable',
      subject: name,
      severity: 'critical',
      summary: `${name} was writable beside primary ${primary.config.name}; fencing it`,
      details: { killed: result.killed },
    });
  if (!result.readOnly) {
    const attempts = state.fenceRetry.attempts + 1;
    const retryInMs = Math.min(FENCE_RETRY_MAX_MS, FENCE_RETRY_MS * 2 ** (attempts - 1));
    state.fenceRetry = { attempts, nextAt: ctx.now() + retryInMs };
    const details = {
      killed: result.killed,
      attempts,
      retryInMs,
      error: result.error,
      unreachable: result.unreachable === true,
    };
    const summary =
      `${name} is writable beside primary ${primary.config.name} and fence attempt ${attempts} did not make it read-only ` +
      `(${result.error ?? 'read_only is still 0'}); retrying in ${retryInMs} ms`;
    // One alert for the episode; each attempt is an event (the alert's first raise is that attempt's event).
    if (!raise(ctx, 'fence-failed', name, 'critical', summary, details))
      record(ctx, { type: 'fence-failed', severity: 'critical', member: name, message: summary, details });
    return;
  }
  const attempts = state.fenceRetry.attempts + 1;
  state.fenceRetry = { attempts: 0, nextAt: 0 };
  record(ctx, {
    type: 'fence',
    severity: expected ? 'warning' : 'critical',
    member: name,
    message: `${name} was writable but is not the primary: killed ${result.killed} client connection(s), read_only=1 verified${attempts > 1 ? ` (attempt ${attempts})` : ''}`,
    details: { killed: result.killed, attempts },
  });
  resolve(ctx, 'fence-failed', name, `${name} is read-only now (fenced at attempt ${attempts})`);
}

async function tendReplica(ctx: ManagerContext, state: MemberState, primary: MemberState): Promise<void> {
  const name = state.config.name;
  const replication = state.probe?.replication;
  if (replication === undefined) return;
  const now = ctx.now();
  if (replication.sqlRunning !== 'Yes' && replication.lastSqlErrno !== 0) {
    state.cleanSince = undefined;
    await restartOnceThenAlert(ctx, state, {
      thread: 'sql',
      errno: replication.lastSqlErrno,
      error: replication.lastSqlError,
      firstMessage: (error) => `replication SQL thread of ${name} stopped (${error}); restarted it once`,
      alertMessage: (error) => `replication SQL thread of ${name} stopped again after one restart: ${error}`,
      alertDetails: { gtidSlavePos: state.probe?.gtidSlavePos },
    });
    return;
  }
  if (replication.ioRunning !== 'Yes' && replication.lastIoErrno !== 0) {
    state.cleanSince = undefined;
    if (replication.lastIoErrno === 1236) {
      const errant = await errantGtids(ctx, state, primary);
      await quarantine(
        ctx,
        state,
        `the primary refused to serve it: error ${replication.lastIoErrno}: ${replication.lastIoError}`,
        errant.length > 0 ? errant : [state.probe?.gtidSlavePos ?? '?'],
      );
      return;
    }
    if ((ctx.view(state).ioSilentMs ?? 0) < ctx.config.detection.replicaSilenceMs) return;
    await restartOnceThenAlert(ctx, state, {
      thread: 'io',
      errno: replication.lastIoErrno,
      error: replication.lastIoError,
      firstMessage: (error) => `replication IO thread of ${name} failed (${error}); restarted it once`,
      alertMessage: (error) => `replication IO thread of ${name} cannot receive from ${primary.config.name}: ${error}`,
      alertDetails: {},
    });
    return;
  }
  if (replication.ioRunning === 'No' || replication.sqlRunning === 'No') {
    state.cleanSince = undefined;
    if (state.interruptedRepair) {
      // Stopped by our own repair that failed part-way, not by an administrator: a replica
      // left stopped is no witness, and would hold up the next failover.
      ctx.fence(`start replication on ${name}`);
      state.interruptedRepair = false;
      await ctx.withMember(state, (c) => startReplication(c));
      record(ctx, {
        type: 'replication-restart',
        severity: 'warning',
        member: name,
        message: `replication on ${name} was left stopped by an interrupted repair (IO ${replication.ioRunning}, SQL ${replication.sqlRunning}); started it again`,
      });
      return;
    }
    raise(
      ctx,
      'replication-stopped',
      name,
      'warning',
      `replication on ${name} was stopped without an error (by an administrator?): IO ${replication.ioRunning}, SQL ${replication.sqlRunning}`,
      {},
    );
    return;
  }
  if (replication.ioRunning === 'Yes' && replication.sqlRunning === 'Yes') {
    state.interruptedRepair = false;
    resolve(ctx, 'replica-sql-error', name, `replication on ${name} runs again`);
    resolve(ctx, 'replica-io-error', name, `replication on ${name} runs again`);
    resolve(ctx, 'replication-stopped', name, `replication on ${name} runs again`);
    state.cleanSince ??= now;
    if (now - state.cleanSince >= ctx.config.repair.errorMemoryMs) {
      state.sqlRestartedFor = undefined;
      state.ioRestartedFor = undefined;
    }
    const lag = replication.secondsBehindMaster;
    if (lag !== null && lag > ctx.config.repair.lagWarningSeconds) {
      raise(ctx, 'replica-lag', name, 'warning', `${name} is ${lag} s behind ${primary.config.name}`, {
        lagSeconds: lag,
      });
    } else {
      resolve(ctx, 'replica-lag', name, `${name} caught up`);
    }
  }
}

/**
 * A replication thread stopped with an error: restart replication once per error (an event
 * `replication-restart`); if it stops again before the replica ran clean for
 * `repair.errorMemoryMs`, raise `replica-sql-error` / `replica-io-error` with the error text.
 */
async function restartOnceThenAlert(
  ctx: ManagerContext,
  state: MemberState,
  failed: {
    thread: 'sql' | 'io';
    errno: number;
    error: string;
    firstMessage: (error: string) => string;
    alertMessage: (error: string) => string;
    alertDetails: Record<string, unknown>;
  },
): Promise<void> {
  const name = state.config.name;
  const error = `error ${failed.errno}: ${failed.error}`;
  const restartedFor = failed.thread === 'sql' ? state.sqlRestartedFor : state.ioRestartedFor;
  if (restartedFor === undefined) {
    ctx.fence(`restart replication on ${name}`);
    await ctx.withMember(state, (c) => restartReplication(c));
    if (failed.thread === 'sql') state.sqlRestartedFor = failed.errno;
    else state.ioRestartedFor = failed.errno;
    record(ctx, {
      type: 'replication-restart',
      severity: 'warning',
      member: name,
      message: failed.firstMessage(error),
      details: { error: failed.error, errno: failed.errno },
    });
    return;
  }
  raise(
    ctx,
    failed.thread === 'sql' ? 'replica-sql-error' : 'replica-io-error',
    name,
    'critical',
    failed.alertMessage(error),
    {
      error: failed.error,
      errno: failed.errno,
      ...failed.alertDetails,
    },
  );
}
