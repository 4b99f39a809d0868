import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as setTimeoutPromise } from 'node:timers/promises';
import { createLogger, InsituError, type Logger } from '@insitu/core';
import type { SessionTimings } from './agent-session.js';
import { AttemptFailure } from './attempt-failure.js';
import { LocalDispatch } from './local-dispatch.js';
import { createTunnelMetrics, type TunnelMetrics } from './metrics.js';
import { PeerForwarding, RouteLost } from './peer-forwarding.js';
import { RoutingTable } from './routing-table.js';
import type { SessionInfo, TunnelRequest, TunnelResponse, TunnelServerOptions } from './server-types.js';
import { SessionRegistry } from './session-registry.js';
import { UpgradeAcceptor } from './upgrade-acceptor.js';

export type { SessionInfo, TunnelRequest, TunnelResponse, TunnelServerOptions } from './server-types.js';

/** How long a forwarded request whose route was lost before it left waits for the route to re-form. */
export const ROUTE_SETTLE_MS = 5000;
/** ...and the part of its deadline it keeps for the call itself. */
const ROUTE_SETTLE_MARGIN_MS = 250;

/**
 * The platform side of the reverse tunnel: accepts agent sessions (HTTP/1.1 upgrade,
 * then HTTP/2 with the platform as client), keeps the routing table, balances requests,
 * ejects failing sessions, retries what is safe to retry, and forwards to the node that
 * holds a session when this one has none.
 */
export class TunnelServer {
  readonly nodeId: string;
  readonly table = new RoutingTable();
  readonly metrics: TunnelMetrics | undefined;
  readonly #options: TunnelServerOptions;
  readonly #sessions: SessionRegistry;
  readonly #local: LocalDispatch;
  readonly #peers: PeerForwarding | undefined;
  readonly #upgrades: UpgradeAcceptor;
  #closing = false;

  constructor(options: TunnelServerOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    const logger: Logger = (options.logger ?? createLogger({ name: 'tunnel', level: 'silent' })).child({
      nodeId: options.nodeId,
    });
    const timings: SessionTimings = {
      pingIntervalMs: 10_000,
      pingTimeoutMs: 5000,
      helloTimeoutMs: 10_000,
      commandTimeoutMs: 30_000,
      maxStreams: 4096,
      ...options.timings,
    };
    const metrics = options.registry
      ? createTunnelMetrics(options.registry, () => this.#sessions.bytesDelta())
      : undefined;
    this.metrics = metrics;
    const nodeId = options.nodeId;
    const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.#sessions = new SessionRegistry({
      nodeId,
      table: this.table,
      logger,
      metrics,
      maxSessionsPerAgent: options.maxSessionsPerAgent,
      directory: options.cluster?.directory,
    });
    const peers = options.cluster
      ? new PeerForwarding({
          nodeId,
          cluster: options.cluster,
          logger,
          metrics,
          deadlineMs: options.deadlineMs,
          idleTimeoutMs,
          serveLocal: (request, deadline) => this.#local.request(request, deadline),
        })
      : undefined;
    this.#peers = peers;
    this.#local = new LocalDispatch({
      nodeId,
      metrics,
      idleTimeoutMs,
      table: this.table,
      logger,
      maxStreams: timings.maxStreams,
      balancer: options.balancer,
      deadlineMs: options.deadlineMs,
      ...(peers ? { forward: (request: TunnelRequest, deadline: number) => peers.forward(request, deadline) } : {}),
    });
    this.#upgrades = new UpgradeAcceptor({
      options,
      nodeId,
      logger,
      metrics,
      timings,
      sessions: this.#sessions,
      closing: () => this.#closing,
      peers,
    });
  }

  /**
   * Handle an HTTP `upgrade` for the tunnel or peer path; returns false (touching
   * nothing) for any other path so the caller can refuse it.
   */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): boolean {
    return this.#upgrades.handle(req, socket, head);
  }

  /**
   * Send a request to the provider through one of its sessions (here, or through the
   * node that holds one). Resolves with the response headers and a body stream; rejects
   * with `INSITU_TUNNEL_NO_ROUTE` (503), `INSITU_TUNNEL_UPSTREAM_FAILED` (502) or
   * `INSITU_TUNNEL_TIMEOUT` (504), never later than the deadline.
   */
  async request(request: TunnelRequest): Promise<TunnelResponse> {
    const deadlineMs = request.deadlineMs ?? this.#options.deadlineMs ?? 30_000;
    const deadline = Date.now() + deadlineMs;
    const local = this.table.candidates(request.providerId, request.service);
    if (request.sessionId !== undefined) {
      const chosen = local.find((candidate) => candidate.session.id === request.sessionId);
      if (!chosen)
        throw new InsituError(
          'INSITU_TUNNEL_NO_ROUTE',
          `no live session ${request.sessionId} of provider ${request.providerId} on this node`,
        );
      try {
        return await this.#local.attempt(chosen.session, request, request.method.toUpperCase(), deadline);
      } catch (error) {
        if (!(error instanceof AttemptFailure)) throw error;
        throw new InsituError(
          error.kind === 'timeout' ? 'INSITU_TUNNEL_TIMEOUT' : 'INSITU_TUNNEL_UPSTREAM_FAILED',
          `session ${request.sessionId}: ${error.message}`,
        );
      }
    }
    if (local.length === 0 && this.#peers) return this.#forwardSettling(this.#peers, request, deadline);
    return this.#local.request(request, deadline);
  }

  /**
   * Forward to the node that holds a session; when the route was lost before the request
   * left (that node is shutting down, or lost the session a moment ago), wait for the
   * agent's session to re-form here or on another node for up to {@link ROUTE_SETTLE_MS},
   * within the deadline, and send it then. A rolling restart of the servers moves every
   * session once; without this, the calls forwarded to the node going down failed.
   */
  async #forwardSettling(peers: PeerForwarding, request: TunnelRequest, deadline: number): Promise<TunnelResponse> {
    const settleUntil = Math.min(deadline - ROUTE_SETTLE_MARGIN_MS, Date.now() + ROUTE_SETTLE_MS);
    let delay = 25;
    for (;;) {
      try {
        return await peers.forward(request, deadline);
      } catch (error) {
        if (!(error instanceof RouteLost) || Date.now() + delay >= settleUntil || request.signal?.aborted) throw error;
        this.metrics?.retries.inc({ reason: 'route-lost' });
        await setTimeoutPromise(delay);
        delay = Math.min(delay * 2, 250);
        if (this.table.candidates(request.providerId, request.service).length > 0)
          return this.#local.request(request, deadline);
      }
    }
  }

  /** Send a control command to one session of an agent (any of its sessions on this node). */
  command(agentId: string, name: string, payload?: unknown, timeoutMs?: number): Promise<unknown> {
    return this.#sessions.command(agentId, name, payload, timeoutMs);
  }

  /** Close every session of an agent at once (its credential was revoked). Returns how many. */
  closeAgent(agentId: string): number {
    return this.#sessions.closeAgent(agentId);
  }

  /** Sessions held by this node. */
  sessions(): SessionInfo[] {
    return this.#sessions.sessions();
  }

  /** Drain every session (GOAWAY, let requests in flight finish for up to `graceMs`) and stop. */
  async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#sessions.all().map((session) => session.drain(graceMs)));
    await this.#peers?.close(graceMs);
  }
}

/**
 * Create the platform side of the tunnel. Mount it on an HTTP server's `upgrade` event:
 *
 * @example
 * const tunnel = createTunnelServer({ nodeId, authenticate: async (credential) => lookup(credential) });
 * httpServer.on('upgrade', (req, socket, head) => { if (!tunnel.handleUpgrade(req, socket, head)) socket.destroy(); });
 * const res = await tunnel.request({ providerId, service: 'app@1.0.0', method: 'GET', path: '/rows' });
 */
export function createTunnelServer(options: TunnelServerOptions): TunnelServer {
  return new TunnelServer(options);
}

/** Wrap a string or buffer as a body stream (for callers that hold the body in memory). */
export function bodyFrom(data: string | Buffer): Readable {
  return Readable.from([typeof data === 'string' ? Buffer.from(data) : data]);
}
