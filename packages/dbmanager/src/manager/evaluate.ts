import { defaultConfirmations, judgePrimary, replicatesFrom } from '../decide.js';
import { isNotLeader } from '../errors.js';
import type { ManagerContext } from './context.js';
import { actOnVerdict, ensurePrimaryWritable } from './failover-decision.js';
import { tendMember } from './member-repair.js';
import type { MemberState } from './member-state.js';
import { publish, raise, record, resolve } from './publishing.js';
import { checkPrimarySemiSync } from './semi-sync.js';

// One evaluation of the cluster by the elected manager: judge the primary, act on the verdict, tend the others.

export async function evaluate(ctx: ManagerContext): Promise<void> {
  if (!ctx.isLeading()) return;
  checkPeers(ctx);
  const topology = ctx.topology;
  if (topology.primary === null) {
    await bootstrap(ctx);
    return;
  }
  const primary = ctx.states.get(topology.primary);
  if (primary === undefined) {
    raise(
      ctx,
      'topology-unknown',
      '',
      'critical',
      `the published primary ${topology.primary} is not in this manager's config`,
      {},
    );
    return;
  }
  const others = [...ctx.states.values()].filter((state) => state !== primary);
  const replicasOfPrimary = others.filter((state) => replicatesFrom(ctx.view(state), primary.config));
  const verdict = judgePrimary(
    ctx.view(primary),
    replicasOfPrimary.map((state) => ctx.view(state)),
    {
      failuresBeforeDown: ctx.config.detection.failuresBeforeDown,
      replicaSilenceMs: ctx.config.detection.replicaSilenceMs,
      minConfirmations: ctx.config.detection.minConfirmations ?? defaultConfirmations(ctx.states.size),
    },
  );
  ctx.suspect = verdict.state !== 'alive';
  for (const state of ctx.states.values()) {
    if (state.probe?.ok !== true) continue;
    if (state.probe.gtidStrictMode === false) {
      raise(
        ctx,
        'gtid-strict-mode-off',
        state.config.name,
        'warning',
        `gtid_strict_mode is OFF on ${state.config.name}: diverged histories cannot be detected reliably; set it ON in its my.cnf`,
        {},
      );
    } else {
      resolve(ctx, 'gtid-strict-mode-off', state.config.name, `gtid_strict_mode is ON on ${state.config.name}`);
    }
  }
  await actOnVerdict(ctx, primary, verdict);
  if (verdict.state === 'dead' || verdict.state === 'suspect') return;
  for (const state of others) {
    try {
      await tendMember(ctx, state, primary, verdict.state === 'alive');
    } catch (error) {
      if (isNotLeader(error)) return;
      state.interruptedRepair = true;
      ctx.logger.warn(
        { err: error, member: state.config.name },
        'repair of a member failed; retrying on the next probe',
      );
    }
  }
  if (verdict.state === 'alive') await checkPrimarySemiSync(ctx, primary);
}

/** Fewer managers alive than this one has seen at once: `manager-lost` (the pair is down to one). */
function checkPeers(ctx: ManagerContext): void {
  const lost = ctx.peers.lost();
  if (lost.length > 0) {
    raise(
      ctx,
      'manager-lost',
      '',
      'critical',
      `${lost.length} dbmanager(s) of ${ctx.peers.peak()} stopped publishing their record: ${lost.join(', ')}; ${ctx.peers.alive().length} left (${ctx.peers.alive().join(', ')})`,
      {
        lost,
        alive: ctx.peers.alive(),
      },
    );
  } else {
    resolve(ctx, 'manager-lost', '', `${ctx.peers.alive().length} dbmanagers alive again`);
  }
}

async function bootstrap(ctx: ManagerContext): Promise<void> {
  const states = [...ctx.states.values()];
  const reachable = states.filter((state) => state.probe?.ok === true);
  if (reachable.length === 0) {
    raise(ctx, 'topology-unknown', '', 'critical', 'no member is reachable: cannot tell the primary', {});
    return;
  }
  const sources = reachable.filter((state) => state.probe?.replication === undefined);
  const fits = sources.filter((source) =>
    reachable.every((other) => other === source || replicatesFrom(ctx.view(other), source.config)),
  );
  let primary: MemberState | undefined = fits.length === 1 ? fits[0] : undefined;
  if (primary === undefined && sources.length === 1 && reachable.length === states.length) primary = sources[0];
  if (primary === undefined) {
    raise(
      ctx,
      'topology-unknown',
      '',
      'critical',
      'cannot tell the primary: expected exactly one member that replicates from nobody and that the others replicate from',
      {
        sources: sources.map((state) => state.config.name),
      },
    );
    return;
  }
  resolve(ctx, 'topology-unknown', '', `primary is ${primary.config.name}`);
  ctx.fence('publish the discovered topology');
  await publish(ctx, {
    ...ctx.topology,
    epoch: Math.max(1, ctx.topology.epoch),
    primary: primary.config.name,
    promotedAt: primary.probe?.gtidCurrentPos ?? '',
  });
  record(ctx, {
    type: 'discovered',
    severity: 'info',
    member: primary.config.name,
    message: `discovered primary ${primary.config.name}`,
    details: { members: states.map((s) => s.config.name) },
  });
  await ensurePrimaryWritable(ctx, primary);
}
