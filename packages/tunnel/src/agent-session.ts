import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { InsituError, type Logger } from '@insitu/core';
import { encodeFrame, readFrames } from './control-frames.js';
import { http2Transport } from './tls-stream.js';
import { WorkPool } from './work-pool.js';
import {
  AgentFrameSchema,
  CONTROL_PATH,
  MAX_FRAME_SIZE,
  MAX_WORK_CONNECTIONS,
  SESSION_WINDOW,
  STREAM_WINDOW,
  type AgentFrame,
  type ServiceAnnouncement,
} from './protocol.js';

/** Who an agent session belongs to, as the credential check found. */
export interface AgentIdentity {
  agentId: string;
  providerId: string;
}

/** Liveness and limits of a session (platform side). */
export interface SessionTimings {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** Close a session whose control `hello` has not arrived by then. */
  helloTimeoutMs: number;
  commandTimeoutMs: number;
  /** Most streams in flight on one session; more are refused before they are sent (and retried elsewhere). */
  maxStreams: number;
  /** Most work connections per session (default and ceiling {@link MAX_WORK_CONNECTIONS}). */
  maxWorkConnections?: number;
  /** Unbound work connections kept ready ahead of demand (default 8). */
  workSpares?: number;
  /** Idle work connections bound to a service are closed after this long (default 4 s, see `WorkPoolOptions`). */
  workIdleMs?: number;
}

const EWMA_DECAY_MS = 10_000;

/**
 * The platform's side of one agent session: the HTTP/2 *client* over the upgraded
 * socket, the control stream, and the numbers the balancer reads (in-flight streams,
 * EWMA latency, failures, ejection). Emits `ready` once the agent said hello, `services`
 * when it announces, and `closed` once.
 */
export class AgentSession extends EventEmitter {
  readonly id: string;
  readonly identity: AgentIdentity;
  readonly connectedAt = Date.now();
  readonly remoteAddress: string;
  services: ServiceAnnouncement[] = [];
  agentVersion = '';
  inFlight = 0;
  /** Latency estimate (ms) of the time to response headers; decays toward the RTT when idle. */
  #ewmaMs = 1;
  #ewmaAt = Date.now();
  rttMs = 1;
  consecutiveFailures = 0;
  ejections = 0;
  ejectedUntil = 0;
  lastFailureAt = 0;
  requests = 0;
  /** The data plane: work connections the agent dialled (absent when the agent serves HTTP/2 streams only). */
  work: WorkPool | undefined;
  closed = false;
  ready = false;
  readonly socket: Socket;
  readonly #h2: http2.ClientHttp2Session;
  readonly #logger: Logger;
  readonly #timings: SessionTimings;
  #control: http2.ClientHttp2Stream | undefined;
  #commandSeq = 0;
  readonly #pendingCommands = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  #pingTimer: NodeJS.Timeout | undefined;
  #missedPings = 0;

  constructor(init: {
    id: string;
    identity: AgentIdentity;
    socket: Socket;
    nodeId: string;
    logger: Logger;
    timings: SessionTimings;
    remoteAddress: string;
  }) {
    super();
    this.id = init.id;
    this.identity = init.identity;
    this.socket = init.socket;
    this.remoteAddress = init.remoteAddress;
    this.#logger = init.logger.child({
      sessionId: init.id,
      agentId: init.identity.agentId,
      providerId: init.identity.providerId,
    });
    this.#timings = init.timings;
    // A connection reset (or any socket error) is given a code before HTTP/2 hands it to
    // the streams in flight: a response body cut by it then fails with
    // INSITU_TUNNEL_UPSTREAM_FAILED, not a raw `read ECONNRESET`. Prepended, so it runs
    // before the session's own socket error handler.
    // The upgraded socket came from an HTTP server, which allows half-open connections: the
    // FIN of an agent that died (kill -9, its process gone but its host up) left the session
    // open and routable until two PINGs went unanswered (~20 s of calls hanging on it).
    // HTTP/2 has no half-close: a FIN ends the session.
    init.socket.allowHalfOpen = false;
    init.socket.prependListener('error', (error: Error) => {
      if (!this.#h2.destroyed) this.#h2.destroy(this.#cut(`its connection failed: ${error.message}`, error));
    });
    const transport = http2Transport(init.socket);
    this.#h2 = http2.connect('http://agent.insitu', {
      createConnection: () => transport,
      settings: { initialWindowSize: STREAM_WINDOW, enablePush: false, maxFrameSize: MAX_FRAME_SIZE },
      // Node counts queued outbound data against this (MB); a reader that never reads
      // is bounded by flow control, not by it.
      maxSessionMemory: 64,
    });
    this.#h2.on('connect', () => {
      try {
        this.#h2.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // the session died during the handshake; 'close' follows
      }
    });
    this.#h2.on('error', (error: NodeJS.ErrnoException) => {
      this.#logger.info(
        { code: 'INSITU_TUNNEL_PROTOCOL', err: error.message, h2code: error.code },
        'agent session failed',
      );
    });
    this.#h2.on('goaway', (errorCode: number) => {
      this.#logger.info({ errorCode }, 'agent sent GOAWAY: draining the session');
      this.#markGone();
    });
    this.#h2.on('close', () => this.#onClosed());
    this.#h2.on('frameError', (type: number, code: number) => {
      this.#logger.info(
        { code: 'INSITU_TUNNEL_PROTOCOL', frameType: type, h2code: code },
        'HTTP/2 frame error on an agent session',
      );
    });
    this.#openControl(init.nodeId);
    const helloTimer = setTimeout(() => {
      if (!this.ready)
        this.destroy(
          'INSITU_TUNNEL_BAD_FRAME',
          `no hello on the control stream within ${this.#timings.helloTimeoutMs} ms`,
        );
    }, this.#timings.helloTimeoutMs);
    helloTimer.unref();
    this.once('closed', () => clearTimeout(helloTimer));
    this.#pingTimer = setInterval(() => this.#ping(), this.#timings.pingIntervalMs);
    this.#pingTimer.unref();
  }

  /** The HTTP/2 session, for requests. */
  get h2(): http2.ClientHttp2Session {
    return this.#h2;
  }

  /** True while new streams may be opened on it. */
  get open(): boolean {
    return !this.closed && !this.#h2.closed && !this.#h2.destroyed;
  }

  ewmaMs(now = Date.now()): number {
    // Idle sessions drift back toward their RTT, so a once-slow agent gets traffic again.
    const w = Math.exp(-(now - this.#ewmaAt) / EWMA_DECAY_MS);
    return this.rttMs + (this.#ewmaMs - this.rttMs) * w;
  }

  /** Record a successful exchange: latency to response headers. */
  recordSuccess(latencyMs: number): void {
    const now = Date.now();
    const current = this.ewmaMs(now);
    this.#ewmaMs = current * 0.8 + latencyMs * 0.2;
    this.#ewmaAt = now;
    this.consecutiveFailures = 0;
  }

  recordFailure(): void {
    this.consecutiveFailures++;
    this.lastFailureAt = Date.now();
  }

  isEjected(now = Date.now()): boolean {
    return now < this.ejectedUntil;
  }

  /** Eject for a growing period: 1 s, 2 s, 4 s ... up to 30 s; forgiven after a minute without failures. */
  eject(reason: string): number {
    const now = Date.now();
    if (now - this.lastFailureAt > 60_000 && this.ejectedUntil < now - 60_000) this.ejections = 0;
    this.ejections++;
    const forMs = Math.min(30_000, 1000 * 2 ** (this.ejections - 1));
    this.ejectedUntil = now + forMs;
    this.#logger.info({ code: 'INSITU_TUNNEL_EJECTED', forMs, reason }, 'session ejected from load balancing');
    this.emit('ejected', forMs);
    return forMs;
  }

  #openControl(nodeId: string): void {
    let control: http2.ClientHttp2Stream;
    try {
      control = this.#h2.request(
        { ':method': 'POST', ':path': CONTROL_PATH, 'content-type': 'application/x-ndjson' },
        { endStream: false },
      );
    } catch (error) {
      this.#logger.info({ err: (error as Error).message }, 'could not open the control stream');
      return;
    }
    this.#control = control;
    control.setEncoding('utf8');
    control.on('error', () => undefined);
    control.on('close', () => {
      if (!this.closed) this.destroy('INSITU_TUNNEL_PROTOCOL', 'the control stream closed');
    });
    control.on('response', (headers) => {
      if (headers[':status'] !== 200)
        this.destroy(
          'INSITU_TUNNEL_PROTOCOL',
          `the agent answered ${String(headers[':status'])} on the control stream`,
        );
    });
    readFrames(
      control,
      AgentFrameSchema,
      'control frame from the agent',
      (frame) => this.#onFrame(frame),
      (error) => {
        this.destroy(error.code, error.message);
      },
    );
    control.write(encodeFrame({ type: 'welcome', sessionId: this.id, nodeId }));
  }

  #onFrame(frame: AgentFrame): void {
    switch (frame.type) {
      case 'hello':
        this.agentVersion = frame.agentVersion;
        this.services = frame.services;
        if (!this.ready && !this.work && (frame.workConnections ?? 0) > 0) {
          const control = this.#control;
          this.work = new WorkPool({
            max: Math.min(frame.workConnections ?? 0, this.#timings.maxWorkConnections ?? MAX_WORK_CONNECTIONS),
            ...(this.#timings.workSpares === undefined ? {} : { spare: this.#timings.workSpares }),
            ...(this.#timings.workIdleMs === undefined ? {} : { idleTimeoutMs: this.#timings.workIdleMs }),
            logger: this.#logger,
            sendTokens: (tokens) => {
              if (this.open) control?.write(encodeFrame({ type: 'work', tokens }));
            },
          });
          this.work.refill();
        }
        if (!this.ready) {
          this.ready = true;
          this.emit('ready');
        }
        this.emit('services', frame.services);
        break;
      case 'announce':
        this.services = frame.services;
        this.emit('services', frame.services);
        break;
      case 'reply': {
        const pending = this.#pendingCommands.get(frame.id);
        if (!pending) return;
        this.#pendingCommands.delete(frame.id);
        clearTimeout(pending.timer);
        if (frame.ok) pending.resolve(frame.result);
        else
          pending.reject(
            new InsituError(
              'INSITU_TUNNEL_COMMAND_FAILED',
              `the agent could not run the command: ${frame.error?.message ?? 'no reason given'}`,
              { details: { agentCode: frame.error?.code } },
            ),
          );
        break;
      }
    }
  }

  /** Send a command to the agent and wait for its reply. */
  command(name: string, payload: unknown, timeoutMs = this.#timings.commandTimeoutMs): Promise<unknown> {
    const control = this.#control;
    if (!control || !this.open)
      return Promise.reject(new InsituError('INSITU_TUNNEL_UNAVAILABLE', `session ${this.id} is closed`));
    const id = ++this.#commandSeq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pendingCommands.delete(id);
        reject(
          new InsituError('INSITU_TUNNEL_TIMEOUT', `the agent did not answer command ${name} within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#pendingCommands.set(id, { resolve, reject, timer });
      control.write(encodeFrame({ type: 'command', id, name, payload }));
    });
  }

  #ping(): void {
    if (!this.open) return;
    let answered = false;
    const timer = setTimeout(() => {
      if (answered || this.closed) return;
      this.#missedPings++;
      this.recordFailure();
      this.emit('missed-ping', this.#missedPings);
      if (this.#missedPings >= 2)
        this.destroy('INSITU_TUNNEL_UNAVAILABLE', `${this.#missedPings} PINGs unanswered: the session is dead`);
    }, this.#timings.pingTimeoutMs);
    timer.unref();
    const sent = this.#h2.ping((error, duration) => {
      answered = true;
      clearTimeout(timer);
      if (error) return;
      this.#missedPings = 0;
      this.rttMs = duration;
      this.emit('rtt', duration);
    });
    if (!sent) clearTimeout(timer);
  }

  /** Stop routing to it (GOAWAY received, or draining). */
  #markGone(): void {
    this.work?.drain();
    if (this.closed) return;
    this.closed = true;
    this.emit('gone');
  }

  #onClosed(): void {
    this.#markGone();
    this.work?.destroy();
    clearInterval(this.#pingTimer);
    for (const [id, pending] of this.#pendingCommands) {
      clearTimeout(pending.timer);
      pending.reject(
        new InsituError(
          'INSITU_TUNNEL_UNAVAILABLE',
          `session ${this.id} closed before the agent answered command ${id}`,
        ),
      );
    }
    this.#pendingCommands.clear();
    this.emit('closed');
  }

  /** Drain: GOAWAY, let streams in flight finish, then close. */
  async drain(graceMs: number): Promise<void> {
    if (this.#h2.destroyed) return;
    this.#markGone();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#h2.destroy();
        resolve();
      }, graceMs);
      timer.unref();
      this.#h2.close(() => {
        clearTimeout(timer);
        resolve();
      });
      // The control stream never ends on its own: end it so close() can complete.
      this.#control?.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  }

  /** Tear the session down now, logging why with a stable code. */
  destroy(code: string, reason: string): void {
    if (this.#h2.destroyed) return;
    this.#logger.info({ code, reason }, 'closing agent session');
    this.#markGone();
    // Streams in flight (response bodies being read) fail with a coded error that says why.
    this.#h2.destroy(this.#cut(`it was closed (${code}): ${reason}`));
    this.socket.destroy();
  }

  /** The error that streams still in flight fail with when the session goes down under them. */
  #cut(why: string, cause?: Error): InsituError {
    return new InsituError(
      'INSITU_TUNNEL_UPSTREAM_FAILED',
      `agent session ${this.id} ended before the answer was complete: ${why}`,
      {
        ...(cause ? { cause } : {}),
        details: { sessionId: this.id, agentId: this.identity.agentId },
      },
    );
  }
}
