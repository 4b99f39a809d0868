import {
  appliedPosition,
  binlogGtidsBeyond,
  binlogPosition,
  currentPosition,
  demoteToReplica,
  repoint,
  setReadOnly,
  stopReplication,
} from '../actions.js';
import {
  formatGtidPosition,
  formatGtidRange,
  gtidRangesBeyond,
  parseGtidPosition,
  type GtidPosition,
} from '../gtid.js';
import type { PendingRejoin } from '../topology.js';
import type { ManagerContext } from './context.js';
import type { MemberState } from './member-state.js';
import { publish, raise, record, resolve } from './publishing.js';

// Rejoin and quarantine: a member that left the primary's history (a former primary, one that missed a failover)
// comes back as its replica, unless it holds errant transactions: then it is quarantined until rebuilt.

function maxPosition(a: GtidPosition, b: GtidPosition): GtidPosition {
  const out = new Map(a);
  for (const [domain, gtid] of b) {
    const mine = out.get(domain);
    if (mine === undefined || gtid.seq > mine.seq) out.set(domain, gtid);
  }
  return out;
}

/** Enough to list every transaction since a failover on the bed and in tests; a bound all the same. */
const GTIDS_SINCE_BASE_LIMIT = 100_000;
/** At most this many errant GTIDs are named (in the alert, the topology); the oldest first. */
const ERRANT_LISTED = 1000;

/**
 * GTIDs `state` holds that the primary never had: beyond the primary's current position,
 * or, for a member that left the primary's history at a failover (`base`, the new primary's
 * position when it was promoted), beyond that base and absent from the primary's binlog.
 * Exact from the binlogs when they can be read, else as ranges.
 *
 * Beyond the base is not enough on its own: a member whose rejoin was cut short (its
 * manager paused or deposed between the demotion and the publish that clears its pending
 * entry) already replicates from the new primary, and every transaction it applied since is
 * beyond the base too. Those are the primary's own; counting them quarantined a healthy
 * member for good (the test bed's random sequence: a primary kill, then the manager paused).
 *
 * Both positions are read fresh, the member's first and the primary's after it: a
 * primary position from an older probe than the member's would make transactions the
 * member replicated since then look errant (seen under load after a switchover).
 */
export async function errantGtids(
  ctx: ManagerContext,
  state: MemberState,
  primary: MemberState,
  base?: GtidPosition,
): Promise<string[]> {
  let mine: GtidPosition;
  try {
    const [binlog, applied] = await ctx.withMember(state, async (c) => [
      await binlogPosition(c),
      await appliedPosition(c),
    ]);
    mine = maxPosition(parseGtidPosition(binlog), parseGtidPosition(applied));
  } catch {
    mine = maxPosition(parseGtidPosition(state.probe?.gtidBinlogPos), parseGtidPosition(state.probe?.gtidSlavePos));
  }
  const reference =
    base ??
    parseGtidPosition(
      await ctx.withMember(primary, (c) => currentPosition(c)).catch(() => primary.probe?.gtidCurrentPos ?? ''),
    );
  const ranges = gtidRangesBeyond(mine, reference);
  if (ranges.length === 0) return [];
  let exact: string[];
  try {
    exact = await ctx.withMember(state, (c) => binlogGtidsBeyond(c, reference, GTIDS_SINCE_BASE_LIMIT));
  } catch (error) {
    ctx.logger.warn(
      { err: error, member: state.config.name },
      'cannot list errant GTIDs from the binlog; reporting ranges',
    );
    return ranges.map(formatGtidRange);
  }
  if (exact.length === 0) return ranges.map(formatGtidRange);
  if (base === undefined) return exact.slice(0, ERRANT_LISTED);
  // Keep only what the primary's binlog does not hold since the same base.
  try {
    const primaryHas = new Set(
      await ctx.withMember(primary, (c) => binlogGtidsBeyond(c, base, GTIDS_SINCE_BASE_LIMIT)),
    );
    return exact.filter((gtid) => !primaryHas.has(gtid)).slice(0, ERRANT_LISTED);
  } catch (error) {
    ctx.logger.warn(
      { err: error, member: state.config.name, primary: primary.config.name },
      "cannot read the primary's binlog; counting every transaction beyond the failover's base as errant",
    );
    return exact.slice(0, ERRANT_LISTED);
  }
}

export async function rejoin(
  ctx: ManagerContext,
  state: MemberState,
  primary: MemberState,
  pending: PendingRejoin | undefined,
): Promise<void> {
  const name = state.config.name;
  const primaryPosition = parseGtidPosition(primary.probe?.gtidCurrentPos);
  const errant = await errantGtids(
    ctx,
    state,
    primary,
    pending === undefined ? undefined : parseGtidPosition(pending.base),
  );
  if (errant.length > 0) {
    await quarantine(ctx, state, `${name} holds transactions that primary ${primary.config.name} never had`, errant);
    return;
  }
  ctx.fence(`rejoin ${name}`);
  const source = ctx.source(primary.config);
  const wasPrimary = pending?.reason === 'former-primary' || state.probe?.replication === undefined;
  await ctx.withMember(state, (c) => (wasPrimary ? demoteToReplica(c, source) : repoint(c, source)));
  if (pending !== undefined) {
    await publish(ctx, {
      ...ctx.topology,
      pendingRejoin: ctx.topology.pendingRejoin.filter((p) => p.name !== name),
    });
  }
  record(ctx, {
    type: 'rejoin',
    severity: 'info',
    member: name,
    message: `${name} rejoined as a replica of ${primary.config.name}${wasPrimary ? ' (MASTER_DEMOTE_TO_SLAVE=1)' : ''}`,
    details: {
      base: pending?.base ?? formatGtidPosition(primaryPosition),
      reason: pending?.reason ?? 'not replicating from the primary',
    },
  });
}

export async function quarantine(
  ctx: ManagerContext,
  state: MemberState,
  reason: string,
  errantGtids: string[],
): Promise<void> {
  const name = state.config.name;
  ctx.fence(`quarantine ${name}`);
  // Read-only already; stop replication so that it cannot fail over and over or pass the errant GTIDs on.
  await ctx
    .withMember(state, async (c) => {
      await setReadOnly(c, true);
      await stopReplication(c);
    })
    .catch(() => undefined);
  await publish(ctx, {
    ...ctx.topology,
    pendingRejoin: ctx.topology.pendingRejoin.filter((p) => p.name !== name),
    quarantined: [
      ...ctx.topology.quarantined.filter((q) => q.name !== name),
      { name, reason, errantGtids, since: ctx.now() },
    ],
  });
  const summary = `${name} quarantined: it holds ${errantGtids.length} errant transaction(s) ${errantGtids.join(', ')}; it stays read-only and out of replication until they are removed (rebuild it from the primary)`;
  raise(ctx, 'errant-transactions', name, 'critical', summary, { errantGtids, reason });
  record(ctx, {
    type: 'quarantine',
    severity: 'critical',
    member: name,
    message: summary,
    details: { errantGtids, reason },
  });
}

/** A quarantined member leaves quarantine only when it no longer holds errant GTIDs (an administrator rebuilt it). */
export async function checkQuarantine(ctx: ManagerContext, state: MemberState, primary: MemberState): Promise<void> {
  const name = state.config.name;
  const errant = await errantGtids(ctx, state, primary);
  const quarantine = ctx.topology.quarantined.find((q) => q.name === name);
  const stillErrant =
    errant.length > 0 || (quarantine !== undefined && quarantine.errantGtids.some((gtid) => holdsGtid(state, gtid)));
  if (stillErrant) {
    raise(
      ctx,
      'errant-transactions',
      name,
      'critical',
      `${name} quarantined: it holds errant transaction(s) ${(quarantine?.errantGtids ?? errant).join(', ')}`,
      {
        errantGtids: quarantine?.errantGtids ?? errant,
      },
    );
    return;
  }
  ctx.fence(`release ${name} from quarantine`);
  await publish(ctx, { ...ctx.topology, quarantined: ctx.topology.quarantined.filter((q) => q.name !== name) });
  resolve(ctx, 'errant-transactions', name, `${name} no longer holds errant transactions; rejoining`);
  record(ctx, {
    type: 'quarantine-released',
    severity: 'info',
    member: name,
    message: `${name} no longer holds errant transactions; it rejoins`,
  });
  await rejoin(ctx, state, primary, undefined);
}

/** Does the member's binlog position still show this GTID's server at or beyond its sequence? */
function holdsGtid(state: MemberState, gtid: string): boolean {
  const errant = parseGtidPosition(gtid.split('..')[0]).values().next().value;
  if (errant === undefined) return false;
  const mine = parseGtidPosition(state.probe?.gtidBinlogPos).get(errant.domain);
  return mine !== undefined && mine.seq >= errant.seq && mine.server === errant.server;
}
