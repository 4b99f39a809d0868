import { probeMember, type MemberProbe } from '../probe.js';
import type { ManagerContext } from './context.js';
import { absorbProbe, type MemberState } from './member-state.js';

/** Probe every member at once and take the outcomes into their state. */
export async function probeAll(ctx: ManagerContext): Promise<void> {
  const options = {
    connectTimeoutMs: ctx.config.probe.connectTimeoutMs,
    queryTimeoutMs: ctx.config.probe.queryTimeoutMs,
  };
  const probes = await Promise.all(
    [...ctx.states.values()].map((state) => probeMember(state.endpoint, options, ctx.now)),
  );
  let index = 0;
  for (const state of ctx.states.values()) {
    const probe = probes[index++];
    if (probe !== undefined) absorb(ctx, state, probe);
  }
}

/** Take one probe into a member's state and the `member_up` / `replica_lag_seconds` metrics. */
export function absorb(ctx: ManagerContext, state: MemberState, probe: MemberProbe): void {
  absorbProbe(state, probe, ctx.config.probe.historySize);
  ctx.metrics.up.set({ member: state.config.name }, probe.ok ? 1 : 0);
  const lag = probe.replication?.secondsBehindMaster;
  if (lag !== undefined && lag !== null) ctx.metrics.lag.set({ member: state.config.name }, lag);
}
