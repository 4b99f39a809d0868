import type { IncomingMessage } from 'node:http';
import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import {
  createLogger,
  errorJson,
  InsituError,
  isLoopback,
  type Logger,
  newId,
  type Registry,
  toInsituError,
} from '@insitu/core';
import { AgentSession, type AgentIdentity, type SessionTimings } from './agent-session.js';
import type { DirectoryEntry, SessionDirectory } from './directory.js';
import { createTunnelMetrics, type TunnelMetrics } from './metrics.js';
import { PeerPool, verifyPeerToken } from './peer.js';
import { http2Transport } from './tls-stream.js';
import {
  FORWARD_HEADERS,
  MAX_FRAME_SIZE,
  NODE_HEADER,
  PEER_AUTH_HEADER,
  PEER_PATH,
  PEER_PROTOCOL,
  SESSION_HEADER,
  SESSION_WINDOW,
  STREAM_WINDOW,
  TUNNEL_PATH,
  TUNNEL_PROTOCOL,
  WORK_PATH,
  WORK_PROTOCOL,
  WORK_TOKEN_HEADER,
  breakOff,
  forwardableHeaders,
} from './protocol.js';
import { RoutingTable, type BalancerPolicy } from './routing-table.js';
import type { WorkPool } from './work-pool.js';

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

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

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

type FailureKind = 'refused' | 'died' | 'timeout' | 'aborted';

/** Why one attempt failed, and whether another session may take the request. */
class AttemptFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly bodyStarted: boolean,
    /** Refused by our own per-session stream limit: busy, not failing. */
    readonly busy = false,
    /**
     * A work connection failed under the request before any byte of an answer, in a way
     * that lets the same session take it again over an HTTP/2 stream (see `#attemptWork`).
     */
    readonly stale = false,
  ) {
    super(message);
  }
}

function answer(socket: Socket, status: number, reason: string, code: string, message: string): void {
  const body = errorJson({ code, message });
  try {
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  } catch {
    socket.destroy();
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

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
  readonly #logger: Logger;
  readonly #timings: SessionTimings;
  readonly #peers: PeerPool | undefined;
  readonly #peerServer: http2.Http2Server | undefined;
  readonly #byAgent = new Map<string, AgentSession[]>();
  readonly #byId = new Map<string, AgentSession>();
  readonly #peerSessions = new Set<http2.ServerHttp2Session>();
  #bytesSeen = new WeakMap<AgentSession, { read: number; written: number }>();
  #bytesClosed = { toAgent: 0, fromAgent: 0 };
  #closing = false;

  constructor(options: TunnelServerOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    this.#logger = (options.logger ?? createLogger({ name: 'tunnel', level: 'silent' })).child({
      nodeId: options.nodeId,
    });
    this.#timings = {
      pingIntervalMs: 10_000,
      pingTimeoutMs: 5000,
      helloTimeoutMs: 10_000,
      commandTimeoutMs: 30_000,
      maxStreams: 4096,
      ...options.timings,
    };
    this.metrics = options.registry ? createTunnelMetrics(options.registry, () => this.#bytesDelta()) : undefined;
    if (options.cluster) {
      this.#peers = new PeerPool({
        nodeId: options.nodeId,
        secret: options.cluster.secret,
        ...(options.cluster.ca === undefined ? {} : { ca: options.cluster.ca }),
        allowPlainText: options.cluster.allowPlainText ?? true,
        dialTimeoutMs: 5000,
        logger: this.#logger,
      });
      this.#peerServer = http2.createServer(
        { settings: { initialWindowSize: STREAM_WINDOW, enablePush: false, maxFrameSize: MAX_FRAME_SIZE } },
        (req, res) => void this.#servePeer(req, res),
      );
      this.#peerServer.on('session', (session) => {
        this.#peerSessions.add(session);
        session.on('close', () => this.#peerSessions.delete(session));
        session.on('error', () => undefined);
        session.on('connect', () => session.setLocalWindowSize(SESSION_WINDOW));
      });
      if (options.cluster.selfUrl) {
        options.cluster.directory.registerNode(options.nodeId, options.cluster.selfUrl).catch((error: unknown) => {
          this.#logger.warn({ err: (error as Error).message }, 'could not register this node in the session directory');
        });
      }
    }
  }

  #bytesDelta(): { toAgent: number; fromAgent: number } {
    const delta = { ...this.#bytesClosed };
    this.#bytesClosed = { toAgent: 0, fromAgent: 0 };
    for (const session of this.table.all()) {
      const seen = this.#bytesSeen.get(session) ?? { read: 0, written: 0 };
      const read = session.socket.bytesRead ?? 0;
      const written = session.socket.bytesWritten ?? 0;
      delta.fromAgent += read - seen.read;
      delta.toAgent += written - seen.written;
      this.#bytesSeen.set(session, { read, written });
    }
    return delta;
  }

  /**
   * Handle an HTTP `upgrade` for the tunnel or peer path; returns false (touching
   * nothing) for any other path so the caller can refuse it.
   */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path === TUNNEL_PATH) {
      void this.#acceptAgent(req, socket, head);
      return true;
    }
    if (path === WORK_PATH) {
      this.#acceptWork(req, socket, head);
      return true;
    }
    if (path === PEER_PATH) {
      this.#acceptPeer(req, socket, head);
      return true;
    }
    return false;
  }

  #refuse(socket: Socket, status: number, reason: string, code: string, message: string): void {
    this.metrics?.rejected.inc({ code });
    this.#logger.info({ code, remoteAddress: socket.remoteAddress, message }, 'tunnel upgrade refused');
    answer(socket, status, reason, code, message);
  }

  #plainTextAllowed(socket: Socket): boolean {
    if ((socket as TLSSocket).encrypted) return true;
    return this.#options.allowPlainText ? this.#options.allowPlainText(socket) : isLoopback(socket.remoteAddress);
  }

  async #acceptAgent(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    if (this.#closing)
      return this.#refuse(socket, 503, 'Service Unavailable', 'INSITU_UNAVAILABLE', 'this node is shutting down');
    if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== TUNNEL_PROTOCOL) {
      return this.#refuse(
        socket,
        400,
        'Bad Request',
        'INSITU_TUNNEL_BAD_UPGRADE',
        `send GET ${TUNNEL_PATH} with Connection: Upgrade and Upgrade: ${TUNNEL_PROTOCOL}`,
      );
    }
    if (!this.#plainTextAllowed(socket)) {
      return this.#refuse(
        socket,
        403,
        'Forbidden',
        'INSITU_TUNNEL_TLS_REQUIRED',
        'this platform accepts agent sessions over TLS only',
      );
    }
    const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(req.headers.authorization ?? '');
    const credential = match?.[1];
    if (!credential)
      return this.#refuse(
        socket,
        401,
        'Unauthorized',
        'INSITU_UNAUTHENTICATED',
        'send the agent credential: Authorization: Bearer isu_agt_...',
      );
    let identity: AgentIdentity | undefined;
    try {
      identity = await this.#options.authenticate(credential);
    } catch (error) {
      this.#logger.error({ err: error }, 'credential check failed');
      return this.#refuse(
        socket,
        503,
        'Service Unavailable',
        'INSITU_UNAVAILABLE',
        'the credential cannot be checked right now',
      );
    }
    if (!identity)
      return this.#refuse(
        socket,
        401,
        'Unauthorized',
        'INSITU_UNAUTHENTICATED',
        'the agent credential is unknown or revoked',
      );
    if (socket.destroyed || this.#closing) return;
    const sessionId = newId('tun');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n${SESSION_HEADER}: ${sessionId}\r\n${NODE_HEADER}: ${this.nodeId}\r\n\r\n`,
    );
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    if (head.length > 0) socket.unshift(head);
    this.#attach(
      new AgentSession({
        id: sessionId,
        identity,
        socket,
        nodeId: this.nodeId,
        logger: this.#logger,
        timings: this.#timings,
        remoteAddress: socket.remoteAddress ?? '',
      }),
    );
  }

  #attach(session: AgentSession): void {
    const agentSessions = this.#byAgent.get(session.identity.agentId) ?? [];
    agentSessions.push(session);
    this.#byAgent.set(session.identity.agentId, agentSessions);
    const limit = this.#options.maxSessionsPerAgent ?? 4;
    while (agentSessions.length > limit) {
      // A flapping agent: its oldest sessions are the likeliest dead; bound them.
      agentSessions
        .shift()
        ?.destroy('INSITU_TUNNEL_TOO_MANY_SESSIONS', `agent has more than ${limit} sessions on this node`);
    }
    this.#byId.set(session.id, session);
    this.metrics?.sessions.inc();
    const entry = (): DirectoryEntry => ({
      sessionId: session.id,
      nodeId: this.nodeId,
      providerId: session.identity.providerId,
      agentId: session.identity.agentId,
      services: session.services.map((s) => s.key),
    });
    session.on('ready', () => {
      this.table.add(session);
      this.#logger.info(
        { sessionId: session.id, agentId: session.identity.agentId, services: session.services.map((s) => s.key) },
        'agent session ready',
      );
    });
    session.on('services', () => {
      this.#options.cluster?.directory.publish(entry()).catch((error: unknown) => {
        this.#logger.warn({ err: (error as Error).message, sessionId: session.id }, 'could not publish the session');
      });
    });
    session.on('rtt', (ms: number) => this.metrics?.rtt.observe(ms / 1000));
    session.on('missed-ping', () => {
      if (!session.isEjected()) {
        session.eject('missed PING');
        this.metrics?.ejections.inc();
      }
    });
    session.once('gone', () => {
      this.table.remove(session);
      this.#options.cluster?.directory.unpublish(entry()).catch(() => undefined);
    });
    session.once('closed', () => {
      this.#byId.delete(session.id);
      this.table.remove(session);
      this.metrics?.sessions.dec();
      const seen = this.#bytesSeen.get(session) ?? { read: 0, written: 0 };
      this.#bytesClosed.fromAgent += (session.socket.bytesRead ?? 0) - seen.read;
      this.#bytesClosed.toAgent += (session.socket.bytesWritten ?? 0) - seen.written;
      const list = this.#byAgent.get(session.identity.agentId);
      if (list) {
        const remaining = list.filter((s) => s !== session);
        if (remaining.length > 0) this.#byAgent.set(session.identity.agentId, remaining);
        else this.#byAgent.delete(session.identity.agentId);
      }
      this.#logger.info({ sessionId: session.id, agentId: session.identity.agentId }, 'agent session closed');
    });
  }

  /**
   * A work connection: the agent dialled it with a one-time token its session received
   * on the control stream. The token is the only proof: it must have been issued by that
   * very session (so a connection can never join another agent's session), and is used
   * up on the first try, right or wrong.
   */
  #acceptWork(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== WORK_PROTOCOL) {
      return this.#refuse(socket, 400, 'Bad Request', 'INSITU_TUNNEL_BAD_UPGRADE', `send Upgrade: ${WORK_PROTOCOL}`);
    }
    if (!this.#plainTextAllowed(socket)) {
      return this.#refuse(socket, 403, 'Forbidden', 'INSITU_TUNNEL_TLS_REQUIRED', 'work connections over TLS only');
    }
    const sessionId = headerValue(req.headers[SESSION_HEADER]) ?? '';
    const token = headerValue(req.headers[WORK_TOKEN_HEADER]) ?? '';
    const session = this.#byId.get(sessionId);
    if (!session?.work || session.closed || head.length > 0 || !session.work.claim(token)) {
      return this.#refuse(
        socket,
        401,
        'Unauthorized',
        'INSITU_UNAUTHENTICATED',
        'unknown, used or expired work token for this session',
      );
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${WORK_PROTOCOL}\r\n\r\n`);
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    session.work.add(socket);
  }

  #acceptPeer(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    const cluster = this.#options.cluster;
    if (!cluster || !this.#peerServer)
      return this.#refuse(socket, 404, 'Not Found', 'INSITU_ROUTE_NOT_FOUND', 'this node is not part of a cluster');
    if ((req.headers.upgrade ?? '').toLowerCase() !== PEER_PROTOCOL) {
      return this.#refuse(socket, 400, 'Bad Request', 'INSITU_TUNNEL_BAD_UPGRADE', `send Upgrade: ${PEER_PROTOCOL}`);
    }
    const peer = verifyPeerToken(cluster.secret, headerValue(req.headers[PEER_AUTH_HEADER]));
    if (!peer)
      return this.#refuse(socket, 401, 'Unauthorized', 'INSITU_UNAUTHENTICATED', 'bad or expired node-to-node token');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${PEER_PROTOCOL}\r\n${NODE_HEADER}: ${this.nodeId}\r\n\r\n`,
    );
    socket.setTimeout(0);
    socket.setNoDelay(true);
    if (head.length > 0) socket.unshift(head);
    this.#peerServer.emit('connection', http2Transport(socket));
  }

  /** Serve a request forwarded by another node from this node's own sessions (never forwarding again). */
  async #servePeer(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> {
    this.metrics?.forwarded.inc({ direction: 'in' });
    const providerId = headerValue(req.headers[FORWARD_HEADERS.provider]) ?? '';
    const service = headerValue(req.headers[FORWARD_HEADERS.service]);
    const deadlineMs = Number(headerValue(req.headers[FORWARD_HEADERS.deadline]) ?? '');
    const idempotent = headerValue(req.headers[FORWARD_HEADERS.idempotent]) === '1';
    const toAgent = headerValue(req.headers[FORWARD_HEADERS.toAgent]) === '1';
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!name.startsWith(':') && !Object.values(FORWARD_HEADERS).includes(name as never)) headers[name] = value;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const hasBody = !(req.method === 'GET' || req.method === 'HEAD') || req.headers['content-length'] !== undefined;
    try {
      const response = await this.#requestLocal(
        {
          providerId,
          ...(service ? { service } : {}),
          method: req.method,
          path: req.url,
          headers,
          ...(hasBody ? { body: req } : {}),
          deadlineMs: Number.isFinite(deadlineMs) && deadlineMs > 0 ? deadlineMs : (this.#options.deadlineMs ?? 30_000),
          idempotent,
          ...(toAgent ? { toAgent } : {}),
          signal: abort.signal,
        },
        Date.now() +
          (Number.isFinite(deadlineMs) && deadlineMs > 0 ? deadlineMs : (this.#options.deadlineMs ?? 30_000)),
      );
      res.writeHead(response.status, {
        ...response.headers,
        [NODE_HEADER]: response.nodeId,
        'insitu-agent': response.agentId,
        [SESSION_HEADER]: response.sessionId,
      });
      // Reset, never end: a clean end would pass the broken answer on as complete.
      response.body.on('error', () => breakOff(res.stream));
      response.body.pipe(res);
    } catch (error) {
      const failure = toInsituError(error);
      if (res.headersSent) {
        breakOff(res.stream);
        return;
      }
      const body = errorJson({ code: failure.code, message: failure.message });
      res.writeHead(failure.status, { 'content-type': 'application/json', [FORWARD_HEADERS.error]: failure.code });
      res.end(body);
    }
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
        return await this.#attempt(chosen.session, request, request.method.toUpperCase(), deadline);
      } catch (error) {
        if (!(error instanceof AttemptFailure)) throw error;
        throw new InsituError(
          error.kind === 'timeout' ? 'INSITU_TUNNEL_TIMEOUT' : 'INSITU_TUNNEL_UPSTREAM_FAILED',
          `session ${request.sessionId}: ${error.message}`,
        );
      }
    }
    if (local.length === 0 && this.#options.cluster) return this.#forward(request, deadline);
    return this.#requestLocal(request, deadline);
  }

  async #requestLocal(request: TunnelRequest, deadline: number): Promise<TunnelResponse> {
    const policy = this.#options.balancer ?? 'p2c';
    const method = request.method.toUpperCase();
    const idempotent = request.idempotent ?? IDEMPOTENT_METHODS.has(method);
    const replayable = request.body === undefined || typeof request.body === 'string' || Buffer.isBuffer(request.body);
    let excluded: AgentSession | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const candidates = this.table.candidates(request.providerId, request.service);
      const chosen = this.table.pick(candidates, policy, excluded);
      if (!chosen) {
        if (attempt > 0 && this.#options.cluster) return this.#forward(request, deadline);
        throw new InsituError(
          'INSITU_TUNNEL_NO_ROUTE',
          `no live agent session serves ${request.service ?? 'any service'} of provider ${request.providerId}${attempt > 0 ? ' (after a retry)' : ''}`,
          { details: { providerId: request.providerId, service: request.service }, headers: { 'retry-after': '1' } },
        );
      }
      try {
        return await this.#attempt(chosen.session, request, method, deadline);
      } catch (error) {
        if (!(error instanceof AttemptFailure)) throw error;
        const session = chosen.session;
        if (error.kind !== 'aborted' && !error.busy) {
          session.recordFailure();
          if (session.open && (session.consecutiveFailures >= 3 || error.kind === 'refused') && !session.isEjected()) {
            session.eject(error.message);
            this.metrics?.ejections.inc();
          }
        }
        const retryable =
          attempt === 0 &&
          !error.bodyStarted &&
          (error.kind === 'refused' || (error.kind === 'died' && idempotent)) &&
          (replayable || !error.bodyStarted) &&
          Date.now() < deadline;
        if (retryable) {
          this.metrics?.retries.inc({ reason: error.kind });
          excluded = session;
          continue;
        }
        if (error.kind === 'timeout') {
          throw new InsituError(
            'INSITU_TUNNEL_TIMEOUT',
            `provider ${request.providerId} did not answer within ${request.deadlineMs ?? this.#options.deadlineMs ?? 30_000} ms`,
            {
              details: { providerId: request.providerId, service: request.service },
            },
          );
        }
        if (error.kind === 'aborted')
          throw new InsituError('INSITU_TUNNEL_UPSTREAM_FAILED', 'the request was aborted by its caller');
        if (error.busy) {
          throw new InsituError(
            'INSITU_TUNNEL_UNAVAILABLE',
            `every session of provider ${request.providerId} is at its stream limit`,
            {
              headers: { 'retry-after': '1' },
              details: { providerId: request.providerId, service: request.service },
            },
          );
        }
        throw new InsituError(
          'INSITU_TUNNEL_UPSTREAM_FAILED',
          `the agent session failed before answering: ${error.message}`,
          {
            details: { providerId: request.providerId, service: request.service, retried: attempt > 0 },
          },
        );
      }
    }
    throw new InsituError('INSITU_TUNNEL_UPSTREAM_FAILED', 'no session answered');
  }

  #attempt(session: AgentSession, request: TunnelRequest, method: string, deadline: number): Promise<TunnelResponse> {
    if (session.inFlight >= this.#timings.maxStreams) {
      return Promise.reject(
        new AttemptFailure('refused', `session ${session.id} has ${session.inFlight} streams in flight`, false, true),
      );
    }
    const service = request.service;
    if (service !== undefined && session.work && !request.toAgent) {
      if (session.work.canServe(service))
        return this.#attemptWork(session, session.work, service, request, method, deadline).catch((error: unknown) => {
          if (!(error instanceof AttemptFailure && error.stale)) throw error;
          // Not the session's fault, and not a retry on another session: the same
          // session takes the request over its HTTP/2 connection.
          this.metrics?.retries.inc({ reason: 'stale_work_connection' });
          this.#logger.debug({ sessionId: session.id, reason: error.message }, 'work connection was stale: retrying');
          return this.#attemptStream(session, request, method, deadline);
        });
      session.work.refill();
    }
    return this.#attemptStream(session, request, method, deadline);
  }

  /** One attempt over an HTTP/2 stream of the session. */
  #attemptStream(
    session: AgentSession,
    request: TunnelRequest,
    method: string,
    deadline: number,
  ): Promise<TunnelResponse> {
    const hasBody = request.body !== undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.h2.request(
        forwardableHeaders(request.headers ?? {}, { ':method': method, ':path': request.path }),
        { endStream: !hasBody },
      );
    } catch (error) {
      return Promise.reject(
        new AttemptFailure('refused', `session ${session.id} is closing: ${(error as Error).message}`, false),
      );
    }
    session.inFlight++;
    session.requests++;
    this.metrics?.streamsActive.inc();
    const started = Date.now();
    let bodyStarted = false;
    return new Promise<TunnelResponse>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: 'ok' | FailureKind, value: TunnelResponse | AttemptFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        this.metrics?.streams.inc({ outcome: outcome === 'died' ? 'failed' : outcome });
        if (value instanceof AttemptFailure) reject(value);
        else resolve(value);
      };
      const timer = setTimeout(
        () => {
          stream.close(NGHTTP2_CANCEL);
          settle('timeout', new AttemptFailure('timeout', 'deadline passed before the response headers', bodyStarted));
        },
        Math.max(1, deadline - Date.now()),
      );
      const onAbort = (): void => {
        stream.close(NGHTTP2_CANCEL);
        settle('aborted', new AttemptFailure('aborted', 'aborted by the caller', bodyStarted));
      };
      if (request.signal?.aborted) onAbort();
      request.signal?.addEventListener('abort', onAbort);
      stream.on('response', (headers) => {
        session.recordSuccess(Date.now() - started);
        const status = Number(headers[':status'] ?? 502);
        const out: Record<string, string | string[]> = {};
        for (const name in headers) {
          const value = headers[name];
          if (value !== undefined && name.charCodeAt(0) !== 58 /* ':' */)
            out[name] = typeof value === 'number' ? String(value) : value;
        }
        stream.setTimeout(this.#options.idleTimeoutMs ?? 60_000, () => stream.close(NGHTTP2_CANCEL));
        settle('ok', {
          status,
          headers: out,
          body: stream,
          sessionId: session.id,
          nodeId: this.nodeId,
          agentId: session.identity.agentId,
          forwarded: false,
        });
      });
      stream.on('error', () => undefined);
      stream.once('close', () => {
        session.inFlight--;
        this.metrics?.streamsActive.dec();
        if (settled) return;
        const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM || stream.id === undefined;
        settle(
          refused ? 'refused' : 'died',
          new AttemptFailure(
            refused ? 'refused' : 'died',
            refused
              ? `session ${session.id} refused the stream`
              : `session ${session.id} closed the stream (code ${stream.rstCode ?? 'none'}) before answering`,
            bodyStarted,
          ),
        );
      });
      if (hasBody) {
        const body = request.body;
        if (typeof body === 'string' || Buffer.isBuffer(body)) {
          stream.end(body);
        } else if (body) {
          body.once('data', () => {
            bodyStarted = true;
          });
          body.on('error', () => breakOff(stream));
          body.pipe(stream);
        }
      }
    });
  }

  /**
   * One attempt over a work connection: plain HTTP/1.1 keep-alive, the agent pipes bytes to
   * the application.
   *
   * A kept-alive connection can be dead when a request gets it: closed by us a moment ago
   * (its `close` not delivered yet), or by the agent because the application closed its
   * idle connection (the FIN still on its way). Such a failure, before any byte of an
   * answer, is `stale`: `#attempt` sends the request again over the same session's HTTP/2
   * connection and does not count it against the session. Which requests may go again
   * (RFC 9112 §9.3.1): any method when the connection was already closed or half-closed
   * as the request got it, or none could be had (nothing reached the agent); an idempotent
   * request also when the connection died after we wrote to it; never a request whose
   * streamed body was partly consumed.
   */
  #attemptWork(
    session: AgentSession,
    work: WorkPool,
    service: string,
    request: TunnelRequest,
    method: string,
    deadline: number,
  ): Promise<TunnelResponse> {
    const body = request.body;
    const headers = forwardableHeaders(request.headers ?? {}, { host: 'localhost' });
    if ((typeof body === 'string' || Buffer.isBuffer(body)) && headers['content-length'] === undefined)
      headers['content-length'] = String(Buffer.byteLength(body));
    let outgoing: http.ClientRequest;
    try {
      outgoing = http.request({ agent: work.agent, host: service, method, path: request.path, headers });
    } catch (error) {
      // A path or header Node refuses to send.
      return Promise.reject(
        new InsituError('INSITU_VALIDATION', `the request cannot be sent: ${(error as Error).message}`),
      );
    }
    const idempotent = request.idempotent ?? IDEMPOTENT_METHODS.has(method);
    session.inFlight++;
    session.requests++;
    this.metrics?.streamsActive.inc();
    this.metrics?.workRequests.inc();
    const started = Date.now();
    let bodyStarted = false;
    // The connection the request got, what it had read by then, and whether it was already closing.
    let socket: Socket | undefined;
    let readBefore = 0;
    let deadOnArrival = false;
    const onBodyError = (): void => {
      outgoing.destroy();
    };
    const onBodyData = (): void => {
      bodyStarted = true;
    };
    return new Promise<TunnelResponse>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: 'ok' | FailureKind, value: TunnelResponse | AttemptFailure): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        const stale = value instanceof AttemptFailure && value.stale;
        this.metrics?.streams.inc({ outcome: stale ? 'refused' : outcome === 'died' ? 'failed' : outcome });
        if (value instanceof AttemptFailure) reject(value);
        else resolve(value);
      };
      const failed = (message: string): void => {
        if (settled) return;
        const nothingBack = socket === undefined || socket.bytesRead === readBefore;
        const stale =
          nothingBack && !bodyStarted && (socket === undefined || deadOnArrival || idempotent) && Date.now() < deadline;
        if (stale && body instanceof Readable) {
          body.removeListener('error', onBodyError);
          body.removeListener('data', onBodyData);
          body.unpipe(outgoing);
        }
        settle('died', new AttemptFailure('died', message, bodyStarted, false, stale));
      };
      const timer = setTimeout(
        () => {
          outgoing.destroy();
          settle('timeout', new AttemptFailure('timeout', 'deadline passed before the response headers', bodyStarted));
        },
        Math.max(1, deadline - Date.now()),
      );
      const onAbort = (): void => {
        outgoing.destroy();
        settle('aborted', new AttemptFailure('aborted', 'aborted by the caller', bodyStarted));
      };
      if (request.signal?.aborted) onAbort();
      request.signal?.addEventListener('abort', onAbort);
      // Emitted before the request is written to the connection.
      outgoing.once('socket', (assigned: Socket) => {
        socket = assigned;
        readBefore = assigned.bytesRead;
        deadOnArrival = assigned.destroyed || assigned.readableEnded || assigned.writableEnded;
      });
      outgoing.on('response', (answer) => {
        session.recordSuccess(Date.now() - started);
        answer.setTimeout(this.#options.idleTimeoutMs ?? 60_000, () => answer.destroy());
        answer.on('aborted', () =>
          answer.destroy(
            new InsituError(
              'INSITU_TUNNEL_UPSTREAM_FAILED',
              `agent session ${session.id} ended before the answer was complete: its work connection closed`,
            ),
          ),
        );
        settle('ok', {
          status: answer.statusCode ?? 502,
          headers: forwardableHeaders(answer.headers),
          body: answer,
          sessionId: session.id,
          nodeId: this.nodeId,
          agentId: session.identity.agentId,
          forwarded: false,
        });
      });
      outgoing.on('error', (error) => failed(`work connection of session ${session.id}: ${error.message}`));
      outgoing.once('close', () => {
        session.inFlight--;
        this.metrics?.streamsActive.dec();
        failed(`work connection of session ${session.id} closed`);
      });
      if (typeof body === 'string' || Buffer.isBuffer(body)) outgoing.end(body);
      else if (body) {
        body.once('data', onBodyData);
        body.on('error', onBodyError);
        body.pipe(outgoing);
      } else outgoing.end();
    });
  }

  async #forward(request: TunnelRequest, deadline: number): Promise<TunnelResponse> {
    const cluster = this.#options.cluster;
    const peers = this.#peers;
    const noRoute = (): InsituError =>
      new InsituError(
        'INSITU_TUNNEL_NO_ROUTE',
        `no live agent session serves ${request.service ?? 'any service'} of provider ${request.providerId} on any node`,
        {
          details: { providerId: request.providerId, service: request.service },
          headers: { 'retry-after': '1' },
        },
      );
    if (!cluster || !peers) throw noRoute();
    const nodes = [
      ...new Set(
        cluster.directory
          .lookup(request.providerId)
          .filter(
            (entry) =>
              entry.nodeId !== this.nodeId &&
              (request.service === undefined || entry.services.includes(request.service)),
          )
          .map((entry) => entry.nodeId),
      ),
    ].filter((nodeId) => cluster.directory.nodeUrl(nodeId) !== undefined);
    // Random order spreads the load over the nodes that hold sessions.
    nodes.sort(() => Math.random() - 0.5);
    const replayable = request.body === undefined || typeof request.body === 'string' || Buffer.isBuffer(request.body);
    let lastError: InsituError | undefined;
    for (const nodeId of nodes.slice(0, replayable ? 2 : 1)) {
      const url = cluster.directory.nodeUrl(nodeId);
      if (!url) continue;
      try {
        return await this.#forwardTo(nodeId, url, peers, request, deadline);
      } catch (error) {
        lastError = toInsituError(error);
        if (lastError.code !== 'INSITU_TUNNEL_NO_ROUTE' && lastError.code !== 'INSITU_TUNNEL_UNAVAILABLE')
          throw lastError;
        this.metrics?.retries.inc({ reason: 'forward' });
      }
    }
    if (lastError?.code === 'INSITU_TUNNEL_UNAVAILABLE') {
      throw new InsituError('INSITU_TUNNEL_UPSTREAM_FAILED', lastError.message, { cause: lastError });
    }
    throw lastError ?? noRoute();
  }

  async #forwardTo(
    nodeId: string,
    url: string,
    peers: PeerPool,
    request: TunnelRequest,
    deadline: number,
  ): Promise<TunnelResponse> {
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      throw new InsituError('INSITU_TUNNEL_TIMEOUT', `provider ${request.providerId} did not answer in time`);
    const session = await Promise.race([
      peers.session(url),
      new Promise<never>((_resolve, reject) =>
        setTimeout(
          () => reject(new InsituError('INSITU_TUNNEL_TIMEOUT', `node ${nodeId} did not accept a connection in time`)),
          remaining,
        ).unref(),
      ),
    ]);
    this.metrics?.forwarded.inc({ direction: 'out' });
    const method = request.method.toUpperCase();
    const idempotent = request.idempotent ?? IDEMPOTENT_METHODS.has(method);
    const hasBody = request.body !== undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ...forwardableHeaders(request.headers ?? {}),
          ':method': method,
          ':path': request.path,
          [FORWARD_HEADERS.provider]: request.providerId,
          ...(request.service ? { [FORWARD_HEADERS.service]: request.service } : {}),
          [FORWARD_HEADERS.deadline]: String(remaining),
          [FORWARD_HEADERS.idempotent]: idempotent ? '1' : '0',
          ...(request.toAgent ? { [FORWARD_HEADERS.toAgent]: '1' } : {}),
        },
        { endStream: !hasBody },
      );
    } catch (error) {
      throw new InsituError('INSITU_TUNNEL_UNAVAILABLE', `node ${nodeId} connection is closing`, { cause: error });
    }
    return new Promise<TunnelResponse>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        stream.close(NGHTTP2_CANCEL);
        if (!settled) {
          settled = true;
          reject(
            new InsituError(
              'INSITU_TUNNEL_TIMEOUT',
              `provider ${request.providerId} did not answer in time (via node ${nodeId})`,
            ),
          );
        }
      }, remaining);
      const onAbort = (): void => stream.close(NGHTTP2_CANCEL);
      request.signal?.addEventListener('abort', onAbort, { once: true });
      stream.on('error', () => undefined);
      stream.on('response', (headers) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        const status = Number(headers[':status'] ?? 502);
        const tunnelError = headerValue(headers[FORWARD_HEADERS.error]);
        if (tunnelError) {
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            let message = `node ${nodeId} answered ${tunnelError}`;
            try {
              message = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: { message: string } }).error
                .message;
            } catch {
              // keep the generic message
            }
            reject(
              new InsituError(
                tunnelError === 'INSITU_TUNNEL_NO_ROUTE' ||
                  tunnelError === 'INSITU_TUNNEL_TIMEOUT' ||
                  tunnelError === 'INSITU_TUNNEL_UPSTREAM_FAILED'
                  ? tunnelError
                  : 'INSITU_TUNNEL_UPSTREAM_FAILED',
                message,
                { details: { node: nodeId } },
              ),
            );
          });
          return;
        }
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(headers)) {
          if (
            !name.startsWith(':') &&
            value !== undefined &&
            name !== 'insitu-agent' &&
            name !== SESSION_HEADER &&
            name !== NODE_HEADER
          )
            out[name] = typeof value === 'number' ? String(value) : value;
        }
        stream.setTimeout(this.#options.idleTimeoutMs ?? 60_000, () => stream.close(NGHTTP2_CANCEL));
        resolve({
          status,
          headers: out,
          body: stream,
          sessionId: headerValue(headers[SESSION_HEADER]) ?? '',
          nodeId: headerValue(headers[NODE_HEADER]) ?? nodeId,
          agentId: headerValue(headers['insitu-agent']) ?? '',
          forwarded: true,
        });
      });
      stream.once('close', () => {
        clearTimeout(timer);
        request.signal?.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        reject(
          new InsituError('INSITU_TUNNEL_UNAVAILABLE', `node ${nodeId} closed the forwarded stream before answering`),
        );
      });
      const body = request.body;
      if (typeof body === 'string' || Buffer.isBuffer(body)) stream.end(body);
      else if (body) {
        body.on('error', () => breakOff(stream));
        body.pipe(stream);
      }
    });
  }

  /** Send a control command to one session of an agent (any of its sessions on this node). */
  async command(agentId: string, name: string, payload?: unknown, timeoutMs?: number): Promise<unknown> {
    const session = (this.#byAgent.get(agentId) ?? []).find((s) => s.open && s.ready);
    if (!session) throw new InsituError('INSITU_TUNNEL_NO_ROUTE', `agent ${agentId} has no session on this node`);
    return session.command(name, payload, timeoutMs);
  }

  /** Close every session of an agent at once (its credential was revoked). Returns how many. */
  closeAgent(agentId: string): number {
    const sessions = this.#byAgent.get(agentId) ?? [];
    for (const session of [...sessions]) session.destroy('INSITU_UNAUTHENTICATED', 'the agent credential was revoked');
    return sessions.length;
  }

  /** Sessions held by this node. */
  sessions(): SessionInfo[] {
    const now = Date.now();
    return [...this.#byAgent.values()].flat().map((s) => ({
      sessionId: s.id,
      agentId: s.identity.agentId,
      providerId: s.identity.providerId,
      nodeId: this.nodeId,
      remoteAddress: s.remoteAddress,
      connectedAt: new Date(s.connectedAt).toISOString(),
      services: s.services.map((x) => ({ ...x })),
      inFlight: s.inFlight,
      rttMs: Math.round(s.rttMs * 1000) / 1000,
      ewmaMs: Math.round(s.ewmaMs(now) * 1000) / 1000,
      ejected: s.isEjected(now),
      requests: s.requests,
    }));
  }

  /** Drain every session (GOAWAY, let requests in flight finish for up to `graceMs`) and stop. */
  async close(graceMs = 5000): Promise<void> {
    this.#closing = true;
    const all = [...this.#byAgent.values()].flat();
    await Promise.all(all.map((session) => session.drain(graceMs)));
    await this.#peers?.close();
    // Forwarded requests in flight get the same grace as agent sessions.
    await Promise.all(
      [...this.#peerSessions].map(
        (session) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              session.destroy();
              resolve();
            }, graceMs);
            timer.unref();
            session.close(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    this.#peerServer?.close();
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
