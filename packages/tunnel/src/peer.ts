import { createHmac } from 'node:crypto';
import http2 from 'node:http2';
import { safeEqual, type Logger } from '@insitu/core';
import { dialUpgrade } from './dial.js';
import { http2Transport } from './tls-stream.js';
import {
  MAX_FRAME_SIZE,
  PEER_AUTH_HEADER,
  PEER_PATH,
  PEER_PROTOCOL,
  SESSION_WINDOW,
  STREAM_WINDOW,
} from './protocol.js';

/**
 * How long a peer has to answer an HTTP/2 PING. A node cut off from the network sends no FIN:
 * without this, a request forwarded to it waited out the whole call deadline (3+2 bed,
 * partition of a management node). Not shorter: at a load average of 18 on two cores a live
 * peer missed a 1 s PING once in a bed run, and destroying its connection fails every stream on it.
 */
export const PEER_PING_TIMEOUT_MS = 2500;

const pings = new WeakMap<http2.ClientHttp2Session, Promise<boolean>>();

/**
 * Ask the peer for a PING answer (one in flight per connection); when none comes within
 * `timeoutMs`, destroy the connection, which fails every stream on it at once (their
 * callers try another node). Resolves true when the peer answered.
 */
export function checkPeer(session: http2.ClientHttp2Session, timeoutMs = PEER_PING_TIMEOUT_MS): Promise<boolean> {
  const inFlight = pings.get(session);
  if (inFlight) return inFlight;
  const check = new Promise<boolean>((resolve) => {
    if (session.closed || session.destroyed) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      session.destroy(new Error(`the peer did not answer a PING within ${timeoutMs} ms`));
      resolve(false);
    }, timeoutMs);
    timer.unref();
    try {
      session.ping((error) => {
        clearTimeout(timer);
        resolve(error === null);
      });
    } catch {
      clearTimeout(timer);
      resolve(false);
    }
  }).finally(() => pings.delete(session));
  pings.set(session, check);
  return check;
}

/** How long a peer token is accepted after it was made (clock skew between nodes included). */
const PEER_TOKEN_MAX_AGE_MS = 5 * 60_000;

function mac(secret: string, nodeId: string, timestamp: string): string {
  return createHmac('sha256', secret).update(`${PEER_PROTOCOL}\n${nodeId}\n${timestamp}`).digest('base64url');
}

/**
 * A node-to-node token: `<nodeId>.<ms>.<HMAC-SHA256(cluster secret)>`. The secret
 * itself never crosses the wire; a token is good for five minutes.
 */
export function peerToken(secret: string, nodeId: string, now = Date.now()): string {
  const timestamp = String(now);
  return `${nodeId}.${timestamp}.${mac(secret, nodeId, timestamp)}`;
}

/** The node id of a valid token, or undefined. */
export function verifyPeerToken(secret: string, token: string | undefined, now = Date.now()): string | undefined {
  if (!token) return undefined;
  const match = /^([A-Za-z0-9_.-]{1,100})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return undefined;
  const [, nodeId = '', timestamp = '', given = ''] = match;
  if (Math.abs(now - Number(timestamp)) > PEER_TOKEN_MAX_AGE_MS) return undefined;
  return safeEqual(mac(secret, nodeId, timestamp), given) ? nodeId : undefined;
}

/** Options of the pool of connections to other nodes. */
export interface PeerPoolOptions {
  nodeId: string;
  secret: string;
  ca?: string | Buffer;
  allowPlainText: boolean;
  dialTimeoutMs: number;
  logger: Logger;
}

/**
 * One pooled HTTP/2 connection per peer node, dialled like an agent session (an
 * HTTP/1.1 upgrade on the API port) but with this node as the HTTP/2 client and the
 * peer as the server. Many forwarded requests share it as streams.
 */
export class PeerPool {
  readonly #sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
  /** Sessions whose peer sent GOAWAY: a new stream on them would be refused. */
  readonly #goneAway = new WeakSet<http2.ClientHttp2Session>();
  readonly #options: PeerPoolOptions;
  #closed = false;

  constructor(options: PeerPoolOptions) {
    this.#options = options;
  }

  async session(url: string): Promise<http2.ClientHttp2Session> {
    const existing = this.#sessions.get(url);
    if (existing) {
      // A peer that sent GOAWAY (it is shutting down) is forgotten on the next tick; never
      // hand out its closing session in between: connect afresh instead.
      const current = await existing.catch(() => undefined);
      if (current && !current.closed && !current.destroyed && !this.#goneAway.has(current)) return current;
      if (this.#sessions.get(url) === existing) this.#sessions.delete(url);
      const again = this.#sessions.get(url);
      if (again) return again;
    }
    const created = this.#connect(url);
    this.#sessions.set(url, created);
    created.catch(() => this.#sessions.delete(url));
    return created;
  }

  async #connect(url: string): Promise<http2.ClientHttp2Session> {
    const { socket } = await dialUpgrade({
      url,
      path: PEER_PATH,
      protocol: PEER_PROTOCOL,
      headers: { [PEER_AUTH_HEADER]: peerToken(this.#options.secret, this.#options.nodeId) },
      ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
      allowPlainText: this.#options.allowPlainText,
      timeoutMs: this.#options.dialTimeoutMs,
    });
    const transport = http2Transport(socket);
    const session = http2.connect(url.replace(/^https:/, 'http:'), {
      createConnection: () => transport,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false, maxFrameSize: MAX_FRAME_SIZE },
    });
    const forget = (): void => {
      const current = this.#sessions.get(url);
      void current?.then(
        (s) => {
          if (s === session) this.#sessions.delete(url);
        },
        () => undefined,
      );
    };
    session.on('error', (error: Error) =>
      this.#options.logger.info({ err: error.message, peer: url }, 'peer connection failed'),
    );
    session.on('close', forget);
    session.on('goaway', () => {
      this.#goneAway.add(session);
      forget();
    });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
    session.setLocalWindowSize(SESSION_WINDOW);
    if (this.#closed) session.destroy();
    return session;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const sessions = await Promise.allSettled([...this.#sessions.values()]);
    this.#sessions.clear();
    for (const result of sessions) if (result.status === 'fulfilled') result.value.destroy();
  }
}
