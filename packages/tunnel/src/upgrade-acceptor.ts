import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { errorJson, isLoopback, type Logger, newId } from '@insitu/core';
import { AgentSession, type AgentIdentity, type SessionTimings } from './agent-session.js';
import type { TunnelMetrics } from './metrics.js';
import type { PeerForwarding } from './peer-forwarding.js';
import { verifyPeerToken } from './peer.js';
import {
  NODE_HEADER,
  PEER_AUTH_HEADER,
  PEER_PATH,
  PEER_PROTOCOL,
  SESSION_HEADER,
  TUNNEL_PATH,
  TUNNEL_PROTOCOL,
  WORK_PATH,
  WORK_PROTOCOL,
  WORK_TOKEN_HEADER,
  headerValue,
} from './protocol.js';
import type { TunnelServerOptions } from './server-types.js';
import type { SessionRegistry } from './session-registry.js';

/** What {@link UpgradeAcceptor} works with. */
export interface UpgradeAcceptorOptions {
  /** The server's options (`authenticate`, `allowPlainText`). */
  options: TunnelServerOptions;
  nodeId: string;
  logger: Logger;
  metrics: TunnelMetrics | undefined;
  timings: SessionTimings;
  /** Where accepted agent sessions go, and where work connections find theirs. */
  sessions: SessionRegistry;
  /** True once the server is shutting down. */
  closing: () => boolean;
  /** Cluster only: takes node-to-node connections. */
  peers: PeerForwarding | undefined;
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

/**
 * Upgrade acceptance: the HTTP/1.1 upgrades of agent sessions (credential checked),
 * work connections (one-time token of their session) and node-to-node connections
 * (HMAC token); anything else is refused with a coded JSON answer.
 */
export class UpgradeAcceptor {
  readonly #o: UpgradeAcceptorOptions;

  constructor(options: UpgradeAcceptorOptions) {
    this.#o = options;
  }

  /**
   * Handle an HTTP `upgrade` for the tunnel or peer path; returns false (touching
   * nothing) for any other path so the caller can refuse it.
   */
  handle(req: IncomingMessage, socket: Socket, head: Buffer): boolean {
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
    this.#o.metrics?.rejected.inc({ code });
    this.#o.logger.info({ code, remoteAddress: socket.remoteAddress, message }, 'tunnel upgrade refused');
    answer(socket, status, reason, code, message);
  }

  #plainTextAllowed(socket: Socket): boolean {
    if ((socket as TLSSocket).encrypted) return true;
    return this.#o.options.allowPlainText ? this.#o.options.allowPlainText(socket) : isLoopback(socket.remoteAddress);
  }

  async #acceptAgent(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => undefined);
    if (this.#o.closing())
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
      identity = await this.#o.options.authenticate(credential);
    } catch (error) {
      this.#o.logger.error({ err: error }, 'credential check failed');
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
    if (socket.destroyed || this.#o.closing()) return;
    const sessionId = newId('tun');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\n${SESSION_HEADER}: ${sessionId}\r\n${NODE_HEADER}: ${this.#o.nodeId}\r\n\r\n`,
    );
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    if (head.length > 0) socket.unshift(head);
    this.#o.sessions.attach(
      new AgentSession({
        id: sessionId,
        identity,
        socket,
        nodeId: this.#o.nodeId,
        logger: this.#o.logger,
        timings: this.#o.timings,
        remoteAddress: socket.remoteAddress ?? '',
      }),
    );
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
    const session = this.#o.sessions.get(sessionId);
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
    const peers = this.#o.peers;
    if (!peers)
      return this.#refuse(socket, 404, 'Not Found', 'INSITU_ROUTE_NOT_FOUND', 'this node is not part of a cluster');
    if ((req.headers.upgrade ?? '').toLowerCase() !== PEER_PROTOCOL) {
      return this.#refuse(socket, 400, 'Bad Request', 'INSITU_TUNNEL_BAD_UPGRADE', `send Upgrade: ${PEER_PROTOCOL}`);
    }
    const peer = verifyPeerToken(peers.secret, headerValue(req.headers[PEER_AUTH_HEADER]));
    if (!peer)
      return this.#refuse(socket, 401, 'Unauthorized', 'INSITU_UNAUTHENTICATED', 'bad or expired node-to-node token');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${PEER_PROTOCOL}\r\n${NODE_HEADER}: ${this.#o.nodeId}\r\n\r\n`,
    );
    socket.setTimeout(0);
    socket.setNoDelay(true);
    // As for agent sessions: a peer node's FIN ends the link (no half-open HTTP/2).
    socket.allowHalfOpen = false;
    if (head.length > 0) socket.unshift(head);
    peers.accept(socket);
  }
}
