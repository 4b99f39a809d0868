import type { MemberConfig, Login } from '../config.js';
import type { MemberView } from '../decide.js';
import type { MemberProbe } from '../probe.js';
import type { MemberEndpoint } from '../sql.js';

/** One probe outcome kept in a member's history. */
export interface ProbeRecord {
  at: number;
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/** What the manager knows of one member: its last probe, its history and the repairs under way. */
export interface MemberState {
  config: MemberConfig;
  endpoint: MemberEndpoint;
  probe: MemberProbe | undefined;
  history: ProbeRecord[];
  consecutiveFailures: number;
  downSince: number | undefined;
  /** Last change of what the IO thread received (position or heartbeat count). */
  io: { key: string; changedAt: number } | undefined;
  sqlRestartedFor: number | undefined;
  ioRestartedFor: number | undefined;
  cleanSince: number | undefined;
  restart: { attempts: number; nextAt: number; running: boolean };
  /**
   * A repair of ours failed part-way on this member (e.g. a `STOP SLAVE` that outlived our
   * query timeout: the server finishes it later). If its replication is then found stopped
   * without an error, that was us, not an administrator: it is started again.
   */
  interruptedRepair: boolean;
  /**
   * Fences of this member (writable but not the primary) that did not take effect since the
   * last one that did, and when the next may run (back-off, see member-repair.ts).
   */
  fenceRetry: { attempts: number; nextAt: number };
}

/** A member nothing is known of yet. */
export function newMemberState(member: MemberConfig, login: Login): MemberState {
  return {
    config: member,
    endpoint: { name: member.name, host: member.host, port: member.port, login },
    probe: undefined,
    history: [],
    consecutiveFailures: 0,
    downSince: undefined,
    io: undefined,
    sqlRestartedFor: undefined,
    ioRestartedFor: undefined,
    cleanSince: undefined,
    restart: { attempts: 0, nextAt: 0, running: false },
    interruptedRepair: false,
    fenceRetry: { attempts: 0, nextAt: 0 },
  };
}

/** Take a probe into the member's state: history (the last `historySize`), failure count, IO progress. */
export function absorbProbe(state: MemberState, probe: MemberProbe, historySize: number): void {
  const now = probe.at;
  state.probe = probe;
  state.history.push({
    at: probe.at,
    ok: probe.ok,
    latencyMs: probe.latencyMs,
    ...(probe.error ? { error: probe.error.message } : {}),
  });
  if (state.history.length > historySize) state.history.splice(0, state.history.length - historySize);
  if (probe.ok) {
    state.consecutiveFailures = 0;
    state.downSince = undefined;
    state.restart.attempts = 0;
    const replication = probe.replication;
    if (replication) {
      const key = `${replication.masterHost}:${replication.masterPort}/${replication.masterLogFile}:${replication.readMasterLogPos}/${replication.receivedHeartbeats}/${replication.ioRunning}`;
      if (state.io?.key !== key) state.io = { key, changedAt: now };
    } else {
      state.io = undefined;
    }
  } else {
    state.consecutiveFailures += 1;
    state.downSince ??= now;
  }
}

/** The member as the (pure) decisions in `decide.ts` see it. */
export function memberView(state: MemberState, now: number): MemberView {
  return {
    name: state.config.name,
    config: state.config,
    probe: state.probe,
    consecutiveFailures: state.consecutiveFailures,
    ioSilentMs: state.io === undefined ? undefined : now - state.io.changedAt,
  };
}
