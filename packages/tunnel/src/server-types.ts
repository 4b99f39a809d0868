import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger, Registry } from '@insitu/core';
import type { AgentIdentity, SessionTimings } from './agent-session.js';
import type { SessionDirectory } from './directory.js';
import type { BalancerPolicy } from './routing-table.js';

/** A request to send down the tunnel (what the gateway calls). */
export interface TunnelRequest {
  providerId: string;
  /** Service key (`app@version`) the agent announced; omitted: any session of the provider. */
  service?: string;
  method: string;
  /** Path and query as the application should see them. */
  path: string;
  headers?: Record<string, string | string[] | undefined>;
  body?: Readable | Buffer | string;
  /** Time allowed until the response headers (default: the server's `deadlineMs`). */
  deadlineMs?: number;
  /** Safe to send twice (default: GET, HEAD, OPTIONS). An idempotent request whose session dies before its response headers is retried once on another session. */
  idempotent?: boolean;
  /** Abort the request (e.g. the caller went away). */
  signal?: AbortSignal;
  /** Only this local session (a probe of one agent session): no other session, no forwarding, no retry. */
  sessionId?: string;
  /**
   * For the agent itself (its logs of `service`, its probe), not for the service's
   * application: always an HTTP/2 stream, never a work connection (which pipes to the application).
   */
  toAgent?: boolean;
}

/** The response of a tunnelled request. Consume or destroy `body`: it holds a stream. */
export interface TunnelResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Readable;
  /** Which session served it, and on which node. */
  sessionId: string;
  nodeId: string;
  agentId: string;
  /** True when another node served it. */
  forwarded: boolean;
}

/** A session as `/api/v1/cluster` shows it. */
export interface SessionInfo {
  sessionId: string;
  agentId: string;
  providerId: string;
  nodeId: string;
  remoteAddress: string;
  connectedAt: string;
  services: Array<{ key: string; weight?: number; capacity?: number }>;
  inFlight: number;
  rttMs: number;
  ewmaMs: number;
  ejected: boolean;
  requests: number;
}

/** Options of {@link createTunnelServer}. */
export interface TunnelServerOptions {
  /** This node's id (published in the directory, sent in the `101`). */
  nodeId: string;
  /** Check an agent credential; undefined refuses it (revoked, unknown). */
  authenticate(credential: string): Promise<AgentIdentity | undefined>;
  logger?: Logger;
  /** Register metrics here (the server's `/metrics` registry). */
  registry?: Registry;
  balancer?: BalancerPolicy;
  /** Default time allowed until response headers (default 30 s). */
  deadlineMs?: number;
  /** A response body idle this long is cut (default 60 s). */
  idleTimeoutMs?: number;
  timings?: Partial<SessionTimings>;
  /** Accept a plain-text (non-TLS) connection? Default: only from loopback. */
  allowPlainText?: (socket: Socket) => boolean;
  /** At most this many sessions per agent on this node; a new one replaces the oldest (default 4). */
  maxSessionsPerAgent?: number;
  /** Cluster: where sessions are published, and how to reach other nodes. */
  cluster?: {
    directory: SessionDirectory;
    /** Shared secret of the cluster's nodes (node-to-node HMAC). */
    secret: string;
    /** This node's base URL as other nodes reach it. */
    selfUrl?: string;
    /** CA to trust when dialling peers over https. */
    ca?: string | Buffer;
    allowPlainText?: boolean;
  };
}
