import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { errorJson, InsituError, type Logger, toInsituError } from '@insitu/core';
import { IDEMPOTENT_METHODS } from './attempt-failure.js';
import type { TunnelMetrics } from './metrics.js';
import { checkPeer, PeerPool } from './peer.js';
import {
  FORWARD_HEADERS,
  MAX_FRAME_SIZE,
  NODE_HEADER,
  SESSION_HEADER,
  SESSION_WINDOW,
  STREAM_WINDOW,
  breakOff,
  forwardableHeaders,
  headerValue,
} from './protocol.js';
import type { TunnelRequest, TunnelResponse, TunnelServerOptions } from './server-types.js';
import { http2Transport } from './tls-stream.js';

/** A connection to a peer node is given this long to be made (well under a call's deadline). */
const PEER_DIAL_TIMEOUT_MS = 2000;
/** While a forwarded request waits for its answer, the peer is asked for a PING this often. */
const PEER_CHECK_INTERVAL_MS = 1000;

/**
 * A forward that failed before the request reached any agent (the peer was shutting down,
 * could not be dialled, or had lost the session): the route is re-forming, and the request
 * may be sent again once it has (see `TunnelServer`). A 503: nothing was sent.
 */
export class RouteLost extends InsituError {
  constructor(message: string, cause?: unknown) {
    super('INSITU_TUNNEL_UNAVAILABLE', message, { headers: { 'retry-after': '1' }, cause });
  }
}

/** What {@link PeerForwarding} works with. */
export interface PeerForwardingOptions {
  nodeId: string;
  cluster: NonNullable<TunnelServerOptions['cluster']>;
  logger: Logger;
  metrics: TunnelMetrics | undefined;
  /** The server's default deadline, for forwarded requests that carry none. */
  deadlineMs: number | undefined;
  /** A response body idle this long is cut. */
  idleTimeoutMs: number;
  /** Serve a forwarded request from this node's own sessions. */
  serveLocal: (request: TunnelRequest, deadline: number) => Promise<TunnelResponse>;
}

/**
 * Peer forwarding (cluster only): sends a request to a node that holds a session of the
 * provider when this one has none, and serves the requests other nodes forward here
 * (from this node's own sessions, never forwarding again).
 */
export class PeerForwarding {
  readonly #o: PeerForwardingOptions;
  readonly #peers: PeerPool;
  readonly #server: http2.Http2Server;
  readonly #sessions = new Set<http2.ServerHttp2Session>();

  constructor(options: PeerForwardingOptions) {
    this.#o = options;
    const { cluster } = options;
    this.#peers = new PeerPool({
      nodeId: options.nodeId,
      secret: cluster.secret,
      ...(cluster.ca === undefined ? {} : { ca: cluster.ca }),
      allowPlainText: cluster.allowPlainText ?? true,
      dialTimeoutMs: PEER_DIAL_TIMEOUT_MS,
      logger: options.logger,
    });
    this.#server = http2.createServer(
      { settings: { initialWindowSize: STREAM_WINDOW, enablePush: false, maxFrameSize: MAX_FRAME_SIZE } },
      (req, res) => void this.#servePeer(req, res),
    );
    this.#server.on('session', (session) => {
      this.#sessions.add(session);
      session.on('close', () => this.#sessions.delete(session));
      session.on('error', () => undefined);
      session.on('connect', () => session.setLocalWindowSize(SESSION_WINDOW));
    });
    if (cluster.selfUrl) {
      cluster.directory.registerNode(options.nodeId, cluster.selfUrl).catch((error: unknown) => {
        options.logger.warn({ err: (error as Error).message }, 'could not register this node in the session directory');
      });
    }
  }

  /** The cluster's shared secret (node-to-node tokens). */
  get secret(): string {
    return this.#o.cluster.secret;
  }

  /** Serve the node-to-node HTTP/2 connection of an accepted upgrade. */
  accept(socket: Socket): void {
    this.#server.emit('connection', http2Transport(socket));
  }

  /** Serve a request forwarded by another node from this node's own sessions (never forwarding again). */
  async #servePeer(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): Promise<void> {
    this.#o.metrics?.forwarded.inc({ direction: 'in' });
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
      const response = await this.#o.serveLocal(
        {
          providerId,
          ...(service ? { service } : {}),
          method: req.method,
          path: req.url,
          headers,
          ...(hasBody ? { body: req } : {}),
          deadlineMs: Number.isFinite(deadlineMs) && deadlineMs > 0 ? deadlineMs : (this.#o.deadlineMs ?? 30_000),
          idempotent,
          ...(toAgent ? { toAgent } : {}),
          signal: abort.signal,
        },
        Date.now() + (Number.isFinite(deadlineMs) && deadlineMs > 0 ? deadlineMs : (this.#o.deadlineMs ?? 30_000)),
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

  /** Send a request to a node that holds a session of the provider (at most two nodes tried). */
  async forward(request: TunnelRequest, deadline: number): Promise<TunnelResponse> {
    const cluster = this.#o.cluster;
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
    const nodes = [
      ...new Set(
        cluster.directory
          .lookup(request.providerId)
          .filter(
            (entry) =>
              entry.nodeId !== this.#o.nodeId &&
              (request.service === undefined || entry.services.includes(request.service)),
          )
          .map((entry) => entry.nodeId),
      ),
    ].filter((nodeId) => cluster.directory.nodeUrl(nodeId) !== undefined);
    // Random order spreads the load over the nodes that hold sessions.
    nodes.sort(() => Math.random() - 0.5);
    const replayable = request.body === undefined || typeof request.body === 'string' || Buffer.isBuffer(request.body);
    let lastError: InsituError | undefined;
    // Whether every node tried failed before the request reached an agent.
    let unsent = true;
    for (const nodeId of nodes.slice(0, replayable ? 2 : 1)) {
      const url = cluster.directory.nodeUrl(nodeId);
      if (!url) continue;
      try {
        return await this.#forwardTo(nodeId, url, peers, request, deadline);
      } catch (error) {
        lastError = toInsituError(error);
        if (!(error instanceof RouteLost) && !(lastError.code === 'INSITU_TUNNEL_NO_ROUTE' && replayable))
          unsent = false;
        if (lastError.code !== 'INSITU_TUNNEL_NO_ROUTE' && lastError.code !== 'INSITU_TUNNEL_UNAVAILABLE')
          throw lastError;
        this.#o.metrics?.retries.inc({ reason: 'forward' });
      }
    }
    if (lastError && unsent) {
      throw new RouteLost(
        `the route to provider ${request.providerId} was lost before the request was sent: ${lastError.message}`,
        lastError,
      );
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
      peers.session(url).catch((error: unknown) => {
        const failure = toInsituError(error);
        throw failure.code === 'INSITU_TUNNEL_UNAVAILABLE'
          ? new RouteLost(`node ${nodeId} could not be reached: ${failure.message}`, failure)
          : failure;
      }),
      new Promise<never>((_resolve, reject) =>
        setTimeout(
          () => reject(new InsituError('INSITU_TUNNEL_TIMEOUT', `node ${nodeId} did not accept a connection in time`)),
          remaining,
        ).unref(),
      ),
    ]);
    this.#o.metrics?.forwarded.inc({ direction: 'out' });
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
      throw new RouteLost(`node ${nodeId} connection is closing`, error);
    }
    return new Promise<TunnelResponse>((resolve, reject) => {
      let settled = false;
      // A slow application answers PINGs all the same; a peer cut off from the network does not,
      // and its connection is destroyed, which closes this stream (INSITU_TUNNEL_UNAVAILABLE:
      // the next node is tried) instead of waiting out the deadline.
      const liveness = setInterval(() => void checkPeer(session), PEER_CHECK_INTERVAL_MS);
      liveness.unref();
      const timer = setTimeout(() => {
        clearInterval(liveness);
        breakOff(stream);
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
      const onAbort = (): void => breakOff(stream);
      request.signal?.addEventListener('abort', onAbort, { once: true });
      stream.on('error', () => undefined);
      stream.on('response', (headers) => {
        clearTimeout(timer);
        clearInterval(liveness);
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
        stream.setTimeout(this.#o.idleTimeoutMs, () => breakOff(stream));
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
        clearInterval(liveness);
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

  /** Close the connections to other nodes, and let forwarded requests in flight finish for up to `graceMs`. */
  async close(graceMs: number): Promise<void> {
    await this.#peers.close();
    // Forwarded requests in flight get the same grace as agent sessions.
    await Promise.all(
      [...this.#sessions].map(
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
    this.#server.close();
  }
}
