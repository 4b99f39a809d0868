/** What a service is doing on one node. */
export type ServiceState =
  'starting' | 'running' | 'ready' | 'unhealthy' | 'backoff' | 'stopping' | 'stopped' | 'failed';

/** The last probe of a kind, as published. */
export interface ProbeStatus {
  ok: boolean;
  at: string;
  ms: number;
  /** Failures in a row. */
  failures: number;
  error?: string;
}

/** How the service last ended. */
export interface ExitStatus {
  at: string;
  code: number | null;
  signal: string | null;
  /** In words: `exited with code 1`, `killed: liveness failed 3 times (no answer within 1000 ms)`. */
  reason: string;
}

/** One service on one node, as the node publishes it. */
export interface ServiceStatus {
  state: ServiceState;
  /** The base URL its HTTP probes go to (the node config's `health`), for the leader's deep probes. */
  endpoint?: string;
  /** True when the leader placed it here (a `count: N` service), false for an every-node one. */
  placed?: boolean;
  pid?: number;
  /** Since when it is in this state. */
  since: string;
  startedAt?: string;
  /** Restarts since the node started, and within the budget's window. */
  restarts: number;
  restartsInWindow: number;
  /** When the back-off ends (state `backoff`). */
  nextStartAt?: string;
  lastExit?: ExitStatus;
  liveness?: ProbeStatus;
  readiness?: ProbeStatus;
  /** Set when the budget ran out; stays until an administrator restarts it or the spec changes. */
  failed?: { at: string; reason: string };
  /** The last restart request (`operator/restarts/…`) this node carried out. */
  restartDone?: string;
}

/** A node's record in coord (leased). */
export interface NodeRecord {
  node: string;
  pid: number;
  version: string;
  startedAt: string;
  /** Republished every `timing.nodeRenewMs`: the lease age shown by `insitu operator status`. */
  heartbeatAt: string;
  /** Services this node can run (it has a command for). */
  capable: string[];
  services: Record<string, ServiceStatus>;
}

/** Where the leader placed a service. */
export interface PlacementRecord {
  service: string;
  nodes: string[];
  /** The leader that wrote it and its fencing token. */
  leader: string;
  token: number;
  at: string;
  reason: string;
}

/** A restart asked of a node for one service. */
export interface RestartRequest {
  id: string;
  /** Stop with SIGTERM (the server drains) and wait for it, then start; else the same with a shorter path for a failed service. */
  reason: string;
  requestedAt: string;
  by: string;
}

/** A command of `insitu operator restart` and its progress. */
export interface CommandRecord {
  id: string;
  type: 'restart';
  service: string;
  rolling: boolean;
  node?: string;
  requestedAt: string;
  by: string;
  state: 'pending' | 'running' | 'done' | 'failed';
  /** Nodes in order, each with its state. */
  steps: {
    node: string;
    state: 'pending' | 'draining' | 'restarting' | 'ready' | 'failed';
    at?: string;
    error?: string;
  }[];
  error?: string;
  finishedAt?: string;
}

/** An operator event: one action or observation, with its reason in words. */
export interface OperatorEvent {
  id: string;
  at: string;
  node: string;
  type: string;
  service?: string;
  /** The subject when not a service on `node`: another node, an agent, a silence. */
  subject?: string;
  reason: string;
  details?: Record<string, unknown>;
}

/** A silence: alerts matching every matcher are not sent until `endsAt`. */
export interface Silence {
  id: string;
  matchers: { label: string; value: string }[];
  createdAt: string;
  endsAt: string;
  createdBy: string;
  comment?: string;
}

/** Parse JSON from coord; undefined when it is absent or not JSON. */
export function parseRecord<T>(text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
