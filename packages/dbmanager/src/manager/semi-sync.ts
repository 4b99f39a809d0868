import { configureSemiSync, repoint, setSlaveNetTimeout } from '../actions.js';
import { replicatesFrom } from '../decide.js';
import type { SemiSyncStatus } from '../probe.js';
import type { ManagerContext } from './context.js';
import type { MemberState } from './member-state.js';
import { raise, record, resolve } from './publishing.js';

// Semi-sync and replica timing as configured, and the primary's asynchronous fallback when it is alone.

/** Replica timing and semi-sync settings as configured. */
export async function tuneMember(ctx: ManagerContext, state: MemberState, primary: MemberState): Promise<void> {
  const probe = state.probe;
  const replication = probe?.replication;
  if (
    probe === undefined ||
    replication === undefined ||
    replication.ioRunning !== 'Yes' ||
    replication.sqlRunning !== 'Yes'
  )
    return;
  const wantSemiSync = ctx.config.semiSync.enabled && semiSyncDrift(ctx, probe.semiSync, 'replica');
  const wantNetTimeout = probe.slaveNetTimeout !== ctx.config.replication.slaveNetTimeoutSeconds;
  const wantTiming =
    Math.abs(replication.heartbeatPeriod - ctx.config.replication.heartbeatPeriodSeconds) > 0.001 ||
    replication.connectRetry !== ctx.config.replication.connectRetrySeconds;
  if (!wantSemiSync && !wantNetTimeout && !wantTiming) return;
  ctx.fence(`tune ${state.config.name}`);
  await ctx.withMember(state, async (c) => {
    if (wantNetTimeout) await setSlaveNetTimeout(c, ctx.config.replication.slaveNetTimeoutSeconds);
    if (wantSemiSync)
      await configureSemiSync(
        c,
        ctx.config.semiSync.timeoutMs,
        'replica',
        !wantTiming && probe.semiSync?.slaveEnabled !== true,
      );
    if (wantTiming) await repoint(c, ctx.source(primary.config));
  });
  record(ctx, {
    type: 'tuned',
    severity: 'info',
    member: state.config.name,
    message: `configured ${[wantSemiSync ? 'AFTER_SYNC semi-sync' : '', wantNetTimeout ? 'slave_net_timeout' : '', wantTiming ? 'heartbeat and connect retry' : ''].filter(Boolean).join(', ')} on ${state.config.name}`,
  });
}

function semiSyncDrift(
  ctx: ManagerContext,
  semiSync: SemiSyncStatus | undefined,
  role: 'primary' | 'replica' | 'async-primary',
): boolean {
  if (semiSync === undefined) return true;
  return (
    semiSync.masterEnabled !== (role === 'primary') ||
    !semiSync.slaveEnabled ||
    semiSync.waitPoint !== 'AFTER_SYNC' ||
    semiSync.timeoutMs !== ctx.config.semiSync.timeoutMs
  );
}

/**
 * The primary side of semi-sync. The server never falls back to asynchronous on its own
 * (`rpl_semi_sync_master_timeout` very large by default): a primary cut off from its
 * replicas must not acknowledge a commit they never received. Only the manager, seeing
 * the primary alive and no replica of it receiving for `semiSync.asyncWhenAloneMs`,
 * switches it to asynchronous (when configured), and back once one receives again.
 */
export async function checkPrimarySemiSync(ctx: ManagerContext, primary: MemberState): Promise<void> {
  const probe = primary.probe;
  if (!ctx.config.semiSync.enabled || probe?.ok !== true) return;
  const name = primary.config.name;
  const now = ctx.now();
  const receiving = [...ctx.states.values()].filter(
    (state) =>
      state !== primary &&
      state.probe?.ok === true &&
      replicatesFrom(ctx.view(state), primary.config) &&
      state.probe.replication?.ioRunning === 'Yes',
  );
  if (ctx.semiSyncAlone?.primary !== name) ctx.semiSyncAlone = undefined;
  const aloneAfter = ctx.config.semiSync.asyncWhenAloneMs;
  let alone = ctx.semiSyncAlone;
  if (receiving.length === 0) {
    alone ??= { primary: name, since: now, async: false };
    if (aloneAfter !== undefined && !alone.async && now - alone.since >= aloneAfter) {
      ctx.fence(`switch ${name} to asynchronous replication`);
      await ctx.withMember(primary, (c) => configureSemiSync(c, ctx.config.semiSync.timeoutMs, 'async-primary', false));
      alone = { ...alone, async: true };
      ctx.semiSyncAlone = alone;
      raise(
        ctx,
        'semi-sync-off',
        name,
        'warning',
        `primary ${name} switched to asynchronous replication by the manager: no replica received from it for ${now - alone.since} ms (semiSync.asyncWhenAloneMs ${aloneAfter}); its commits are not protected until a replica receives again`,
        {
          aloneSinceMs: now - alone.since,
        },
      );
      return;
    }
    ctx.semiSyncAlone = alone;
  } else if (alone !== undefined) {
    ctx.semiSyncAlone = undefined;
    if (alone.async) {
      ctx.fence(`switch ${name} back to semi-synchronous replication`);
      await ctx.withMember(primary, (c) => configureSemiSync(c, ctx.config.semiSync.timeoutMs, 'primary', false));
      record(ctx, {
        type: 'tuned',
        severity: 'info',
        member: name,
        message: `primary ${name} back to AFTER_SYNC semi-sync: ${receiving.map((s) => s.config.name).join(', ')} receive(s) again`,
      });
      return;
    }
  }
  const role = ctx.semiSyncAlone?.async === true ? 'async-primary' : 'primary';
  const wantNetTimeout = probe.slaveNetTimeout !== ctx.config.replication.slaveNetTimeoutSeconds;
  if (semiSyncDrift(ctx, probe.semiSync, role) || wantNetTimeout) {
    ctx.fence(`configure semi-sync on ${name}`);
    await ctx.withMember(primary, async (c) => {
      await configureSemiSync(c, ctx.config.semiSync.timeoutMs, role, false);
      await setSlaveNetTimeout(c, ctx.config.replication.slaveNetTimeoutSeconds);
    });
    record(ctx, {
      type: 'tuned',
      severity: 'info',
      member: name,
      message: `configured AFTER_SYNC semi-sync on primary ${name}`,
    });
    return;
  }
  const semiSync = probe.semiSync;
  if (role === 'async-primary') return;
  if (semiSync !== undefined && semiSync.masterEnabled && !semiSync.masterStatus) {
    raise(
      ctx,
      'semi-sync-off',
      name,
      'warning',
      `primary ${name} fell back to asynchronous replication: a commit waited ${ctx.config.semiSync.timeoutMs} ms without a replica's acknowledgement (${semiSync.masterClients} semi-sync replica(s) connected)`,
      {
        semiSyncClients: semiSync.masterClients,
        unacknowledgedCommits: semiSync.masterNoTx,
      },
    );
  } else {
    resolve(ctx, 'semi-sync-off', name, `primary ${name} replicates semi-synchronously again`);
  }
}
