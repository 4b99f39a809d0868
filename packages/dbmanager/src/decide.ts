import type { MemberConfig } from './config.js';
import { compareGtidPositions, parseGtidPosition } from './gtid.js';
import type { MemberProbe } from './probe.js';

/**
 * The decisions of the manager as pure functions of what the probes saw, so that the
 * rules (when is a primary dead, who is promoted) can be read and tested on their own.
 */

/** What the manager knows of one member at one moment. */
export interface MemberView {
  name: string;
  config: MemberConfig;
  /** The latest probe (undefined before the first). */
  probe: MemberProbe | undefined;
  consecutiveFailures: number;
  /** How long the member's IO thread has received nothing: no event, no heartbeat (undefined: not a replica). */
  ioSilentMs: number | undefined;
}

/** The address other members replicate from. */
export function replicationAddress(config: MemberConfig): { host: string; port: number } {
  return { host: config.replicationHost ?? config.host, port: config.replicationPort ?? config.port };
}

/** True when the member replicates (or tries to) from `source`. */
export function replicatesFrom(view: MemberView, source: MemberConfig): boolean {
  const replication = view.probe?.ok ? view.probe.replication : undefined;
  if (replication === undefined) return false;
  const address = replicationAddress(source);
  return replication.masterHost === address.host && replication.masterPort === address.port;
}

export function isReachable(view: MemberView): boolean {
  return view.probe?.ok === true;
}

/**
 * Has this replica lost its primary? Its IO thread is reconnecting, or stopped with an
 * error, or says it runs but received nothing (not even a heartbeat) for `silenceMs`.
 * A replica whose IO thread an administrator stopped (no error) is no witness.
 */
export function replicaLostPrimary(view: MemberView, silenceMs: number): boolean {
  const replication = view.probe?.ok ? view.probe.replication : undefined;
  if (replication === undefined) return false;
  if (replication.ioRunning === 'Connecting') return true;
  if (replication.ioRunning !== 'Yes') return replication.lastIoErrno !== 0;
  return (view.ioSilentMs ?? 0) > silenceMs;
}

/** The verdict on a primary. */
export interface PrimaryVerdict {
  /**
   * `alive`: the manager reaches it. `suspect`: it failed fewer probes than the threshold.
   * `seen-by-replicas`: the manager cannot reach it but a replica still replicates from it.
   * `unconfirmed`: no replica sees it, but too few replicas can tell (a partition could hide a live primary).
   * `dead`: unreachable, and enough replicas confirm they lost it.
   */
  state: 'alive' | 'suspect' | 'seen-by-replicas' | 'unconfirmed' | 'dead';
  /** Replicas that lost the primary. */
  confirmations: string[];
  /** Replicas that still receive from it. */
  seeing: string[];
  /** Replicas the manager cannot reach (no vote). */
  unreachable: string[];
  /** How many confirmations were needed. */
  needed: number;
}

/**
 * The default number of confirming replicas: a majority of all members, at most the
 * number of replicas. With three members both replicas must agree, so a primary
 * partitioned together with one replica (which still acknowledges its semi-sync commits)
 * is never failed over by a manager that sees only the other replica.
 */
export function defaultConfirmations(memberCount: number): number {
  return Math.max(1, Math.min(Math.floor(memberCount / 2) + 1, memberCount - 1));
}

/**
 * Orchestrator's replica-confirmed DeadMaster, MaxScale's verify_master_failure: the
 * primary is dead only when the manager cannot reach it for `failuresBeforeDown`
 * probes in a row *and* the replicas that replicate from it agree.
 */
export function judgePrimary(
  primary: MemberView,
  replicas: readonly MemberView[],
  options: { failuresBeforeDown: number; replicaSilenceMs: number; minConfirmations: number },
): PrimaryVerdict {
  const base = {
    confirmations: [] as string[],
    seeing: [] as string[],
    unreachable: [] as string[],
    needed: options.minConfirmations,
  };
  if (isReachable(primary)) return { state: 'alive', ...base };
  for (const replica of replicas) {
    if (!isReachable(replica)) base.unreachable.push(replica.name);
    else if (replicaLostPrimary(replica, options.replicaSilenceMs)) base.confirmations.push(replica.name);
    else base.seeing.push(replica.name);
  }
  if (primary.consecutiveFailures < options.failuresBeforeDown) return { state: 'suspect', ...base };
  if (base.seeing.length > 0) return { state: 'seen-by-replicas', ...base };
  if (base.confirmations.length < options.minConfirmations) return { state: 'unconfirmed', ...base };
  return { state: 'dead', ...base };
}

/** A replica considered for promotion, with the positions read right before choosing. */
export interface Candidate {
  name: string;
  config: MemberConfig;
  /** Received GTID position (Gtid_IO_Pos). */
  received: string;
  /** Applied GTID position (gtid_slave_pos). */
  applied: string;
  /** The SQL thread can apply the relay log (not stopped by an error). */
  canApply: boolean;
}

/** Why a replica was not chosen. */
export interface Exclusion {
  name: string;
  reason: string;
}

/**
 * Order the candidates: never-promote members and replicas whose SQL thread is broken
 * are excluded; the rest by received GTID, then applied GTID, then priority (higher
 * first), then name (so the choice is deterministic).
 */
export function rankCandidates(candidates: readonly Candidate[]): { ranked: Candidate[]; excluded: Exclusion[] } {
  const excluded: Exclusion[] = [];
  const eligible: Candidate[] = [];
  for (const candidate of candidates) {
    if (candidate.config.neverPromote) excluded.push({ name: candidate.name, reason: 'neverPromote' });
    else if (!candidate.canApply)
      excluded.push({ name: candidate.name, reason: 'its SQL thread is stopped by an error' });
    else eligible.push(candidate);
  }
  const ranked = [...eligible].sort(
    (a, b) =>
      compareGtidPositions(parseGtidPosition(b.received || b.applied), parseGtidPosition(a.received || a.applied)) ||
      compareGtidPositions(parseGtidPosition(b.applied), parseGtidPosition(a.applied)) ||
      b.config.priority - a.config.priority ||
      a.name.localeCompare(b.name),
  );
  return { ranked, excluded };
}

/** The most advanced of all replicas by received position (the donor when the chosen one is behind it). */
export function mostAdvanced(candidates: readonly Candidate[]): Candidate | undefined {
  let best: Candidate | undefined;
  for (const candidate of candidates) {
    if (
      best === undefined ||
      compareGtidPositions(
        parseGtidPosition(candidate.received || candidate.applied),
        parseGtidPosition(best.received || best.applied),
      ) > 0
    ) {
      best = candidate;
    }
  }
  return best;
}
