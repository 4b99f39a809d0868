import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import net, { type Socket } from 'node:net';
import { createLogger, errorJson, InsituError, type Logger, Sleeper, toInsituError } from '@insitu/core';
import { encodeFrame, readFrames } from './control-frames.js';
import { dialUpgrade } from './dial.js';
import { http2Transport } from './tls-stream.js';
import {
  CONTROL_PATH,
  MAX_FRAME_SIZE,
  NODE_HEADER,
  PlatformFrameSchema,
  SESSION_HEADER,
  SESSION_WINDOW,
  STREAM_WINDOW,
  TUNNEL_PATH,
  TUNNEL_PROTOCOL,
  MAX_BINDING_BYTES,
  MAX_WORK_CONNECTIONS,
  SERVICE_KEY_PATTERN,
  WORK_PATH,
  WORK_PROTOCOL,
  WORK_TOKEN_HEADER,
  breakOff,
  type PlatformFrame,
  type ServiceAnnouncement,
} from './protocol.js';

/** The local handler that serves the platform's requests (Node's HTTP/2 compatibility API). */
export type TunnelHandler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

/** Serves one request on the core HTTP/2 stream API (faster than `(req, res)`). */
export type RawStreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** Marks a {@link TunnelHandler} that also has a {@link RawStreamHandler}, used instead when present. */
export const RAW_STREAM_HANDLER: unique symbol = Symbol.for('insitu.tunnel.rawStreamHandler');

/** A handler carrying a raw stream implementation under {@link RAW_STREAM_HANDLER}. */
export interface RawStreamCapable {
  [RAW_STREAM_HANDLER]: RawStreamHandler;
}

/**
 * Where a service's bytes go when a work connection is bound to it: a TCP port or a Unix
 * socket. With `signal`, the connection (both ends) is closed when it aborts: the target
 * stopped serving (an instance that ended or restarted). `release` is called once when the
 * connection ends, whichever way.
 */
export type WorkTarget = ({ host: string; port: number } | { socketPath: string }) & {
  signal?: AbortSignal;
  release?: () => void;
  /** Called when the target refused the connection or is not there (`ECONNREFUSED`, `ENOENT`). */
  unreachable?: () => void;
};

/** Marks a handler that can also serve a service by piping raw bytes (see {@link TunnelClientOptions.workTarget}). */
export const WORK_TARGET: unique symbol = Symbol.for('insitu.tunnel.workTarget');

/** A handler carrying a work-target resolver under {@link WORK_TARGET}. */
export interface WorkTargetCapable {
  [WORK_TARGET]: (service: string) => WorkTarget | undefined;
}

/** A control command handler: its result (JSON) goes back to the platform. */
export type CommandHandler = (payload: unknown) => unknown;

/** Reconnection back-off (capped, full jitter). */
export interface BackoffOptions {
  /** First delay cap (default 250 ms). */
  baseMs?: number;
  /** Largest delay (default 30 s). */
  maxMs?: number;
  /** A session that lived this long resets the back-off (default 30 s). */
  stableAfterMs?: number;
  /** Delay after the platform refused the credential (default 10 min): no retry storm. */
  rejectedMs?: number;
  /**
   * For the first `fastForMs` of an outage (default 60 s) delays are capped at `fastMaxMs`
   * (default 2 s) instead of `maxMs`: a node restarting (a rolling restart, a crash the
   * operator repairs in seconds) gets its agents back within about a second of being ready,
   * while a long outage still backs off to `maxMs`. Full jitter spreads a thousand agents
   * over the cap. (Counted in time, not attempts: with jitter, ten quick failed dials can
   * fit in a few seconds of a restart.)
   */
  fastMaxMs?: number;
  fastForMs?: number;
  /**
   * A session that lived this long (default 1 s) ends the outage: the next failure starts a new
   * one with its own fast phase (the attempt count still resets only after `stableAfterMs`).
   * Without it, a node restarted twice within a minute found its agents in the slow phase
   * (delays up to `maxMs`: service calls failed for 16–23 s after the third restart).
   */
  outageEndsAfterMs?: number;
}

/** Options of {@link TunnelClient}. */
export interface TunnelClientOptions {
  /** Base URLs of platform nodes (`https://host:port`). Sessions go to different ones. */
  platforms: readonly string[];
  /** The agent credential (`isu_agt_...`). */
  credential: string;
  handler: TunnelHandler;
  services?: ServiceAnnouncement[];
  /** PEM of the platform CA: the only CA trusted (pinned). */
  ca?: string | Buffer;
  /** Allow `http://` platform URLs (plain TCP): both sides must allow it. */
  allowPlainText?: boolean;
  /** Sessions to keep, each to a different platform node (default 2; at most one per URL). */
  sessions?: number;
  agentVersion?: string;
  backoff?: BackoffOptions;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  dialTimeoutMs?: number;
  /**
   * The data plane: where a work connection bound to a service pipes its bytes (an
   * HTTP/1.1 application). Default: the handler's {@link WORK_TARGET}, if any. Without
   * one, every request comes as an HTTP/2 stream to `handler`.
   */
  workTarget?: (service: string) => WorkTarget | undefined;
  /** Work connections per session at most (default 0: off, experimental — see the README's "Work connections"). */
  workConnections?: number;
  /** Streams the platform may open at once on one session (default 4096). */
  maxConcurrentStreams?: number;
  logger?: Logger;
}

/** One live session of the client. */
export interface ClientSessionInfo {
  url: string;
  nodeId: string;
  sessionId: string;
  connectedAt: string;
}

interface LiveSession {
  url: string;
  nodeId: string;
  sessionId: string;
  connectedAt: number;
  h2: http2.ServerHttp2Session | undefined;
  socket: Socket;
  control: http2.ServerHttp2Stream | undefined;
  /** Work connections of this session (dialling, idle or piping). */
  work: Set<Socket>;
}

/** Full jitter: a uniform delay in [0, min(max, base × 2^attempt)]. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30)));
}

/**
 * The agent side of the reverse tunnel. Dials the platform, upgrades with the
 * credential, then serves the HTTP/2 streams the platform opens to `handler`. Keeps
 * `sessions` sessions to different nodes, reconnecting with capped full-jitter
 * back-off. Emits `session` (ClientSessionInfo), `disconnect` ({ url, reason }) and
 * `rejected` (the credential was refused; it backs off `rejectedMs`).
 *
 * @example
 * const client = new TunnelClient({ platforms: ['https://platform:7070'], credential, ca, handler: (req, res) => res.end('hi') });
 * client.start();
 */
export class TunnelClient extends EventEmitter {
  readonly #options: TunnelClientOptions;
  readonly #logger: Logger;
  readonly #server: http2.Http2Server;
  readonly #live = new Set<LiveSession>();
  readonly #bySession = new WeakMap<http2.ServerHttp2Session, LiveSession>();
  readonly #commands = new Map<string, CommandHandler>();
  readonly #sleepers: Sleeper[] = [];
  #services: ServiceAnnouncement[];
  #loops: Promise<void>[] = [];
  #closed = false;
  #started = false;
  #lastError: InsituError | undefined;
  #connecting: LiveSession | undefined;
  readonly #workTarget: ((service: string) => WorkTarget | undefined) | undefined;

  constructor(options: TunnelClientOptions) {
    super();
    if (options.platforms.length === 0)
      throw new InsituError('INSITU_CONFIG_INVALID', 'the tunnel client needs at least one platform URL');
    if (!/^isu_agt_\S+$/.test(options.credential))
      throw new InsituError('INSITU_CONFIG_INVALID', 'the agent credential must look like isu_agt_...');
    this.#options = options;
    this.#services = options.services ?? [];
    this.#workTarget =
      options.workConnections === 0
        ? undefined
        : (options.workTarget ?? (options.handler as Partial<WorkTargetCapable>)[WORK_TARGET]);
    this.#logger = options.logger ?? createLogger({ name: 'tunnel-client', level: 'silent' });
    this.#server = http2.createServer({
      settings: {
        initialWindowSize: STREAM_WINDOW,
        maxConcurrentStreams: options.maxConcurrentStreams ?? 4096,
        maxFrameSize: MAX_FRAME_SIZE,
        enablePush: false,
      },
      maxSessionMemory: 64,
    });
    // The control stream is served on the core stream API; requests go to a raw stream
    // handler when the handler has one (no compatibility objects per request), else to
    // the (req, res) handler through Node's compatibility layer.
    const raw = (options.handler as Partial<RawStreamCapable>)[RAW_STREAM_HANDLER];
    this.#server.on('stream', (stream, headers) => {
      if (headers[':path'] === CONTROL_PATH) this.#onControl(stream, headers);
      else if (raw) this.#onRawStream(raw, stream, headers);
    });
    if (!raw) {
      this.#server.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
        if (req.url !== CONTROL_PATH) this.#onRequest(req, res);
      });
    }
    this.#server.on('session', (session) => {
      const live = this.#connecting;
      if (live) {
        live.h2 = session;
        this.#bySession.set(session, live);
      }
      session.on('error', (error: Error) => this.#logger.info({ err: error.message }, 'tunnel session error'));
      session.on('connect', () => {
        try {
          session.setLocalWindowSize(SESSION_WINDOW);
        } catch {
          // closing
        }
      });
    });
  }

  /** Register a handler for a platform command (deployments, bundle fetches ...). */
  onCommand(name: string, handler: CommandHandler): this {
    this.#commands.set(name, handler);
    return this;
  }

  /** Start dialling; sessions come up in the background. */
  start(): this {
    if (this.#started) return this;
    this.#started = true;
    const slots = Math.max(1, Math.min(this.#options.sessions ?? 2, this.#options.platforms.length));
    for (let slot = 0; slot < slots; slot++) this.#loops.push(this.#slotLoop(slot));
    return this;
  }

  /** Replace the announced services on every session. */
  announce(services: ServiceAnnouncement[]): void {
    this.#services = services;
    for (const live of this.#live) live.control?.write(encodeFrame({ type: 'announce', services }));
  }

  /** Live sessions, and the last connection error (e.g. a rejected credential). */
  status(): { sessions: ClientSessionInfo[]; lastError?: { code: string; message: string } } {
    return {
      sessions: [...this.#live].map((s) => ({
        url: s.url,
        nodeId: s.nodeId,
        sessionId: s.sessionId,
        connectedAt: new Date(s.connectedAt).toISOString(),
      })),
      ...(this.#lastError ? { lastError: { code: this.#lastError.code, message: this.#lastError.message } } : {}),
    };
  }

  async #slotLoop(slot: number): Promise<void> {
    const sleeper = new Sleeper();
    this.#sleepers.push(sleeper);
    const {
      baseMs = 250,
      maxMs = 30_000,
      stableAfterMs = 30_000,
      rejectedMs = 600_000,
      fastMaxMs = 2000,
      fastForMs = 60_000,
      outageEndsAfterMs = 1000,
    } = this.#options.backoff ?? {};
    // When the current outage began (the end of the last session that lived `outageEndsAfterMs`, or the first failure).
    let troubleSince: number | undefined;
    const cap = (): number =>
      Date.now() - (troubleSince ?? Date.now()) < fastForMs ? Math.min(fastMaxMs, maxMs) : maxMs;
    let attempt = 0;
    let urlIndex = slot;
    while (!this.#closed) {
      const url = this.#chooseUrl(urlIndex);
      let delay: number;
      try {
        const lived = await this.#runSession(url);
        if (lived >= stableAfterMs) attempt = 0;
        else attempt++;
        if (lived >= outageEndsAfterMs) troubleSince = Date.now();
        troubleSince ??= Date.now();
        delay = backoffDelay(attempt, baseMs, cap());
      } catch (error) {
        const failure = toInsituError(error);
        this.#lastError = failure;
        if (failure.code === 'INSITU_TUNNEL_CREDENTIAL_REJECTED') {
          delay = Math.round(rejectedMs * (0.8 + Math.random() * 0.4));
          this.#logger.error(
            { code: failure.code, url, retryInMs: delay },
            `${failure.message}; the agent needs a new credential (re-enrol); retrying in ${Math.round(delay / 1000)} s`,
          );
          this.emit('rejected', failure);
        } else {
          attempt++;
          troubleSince ??= Date.now();
          delay = backoffDelay(attempt, baseMs, cap());
          this.#logger.info(
            { code: failure.code, url, retryInMs: delay, err: failure.message },
            'tunnel connection failed',
          );
        }
        urlIndex++;
      }
      if (this.#closed) return;
      await sleeper.sleep(delay);
    }
  }

  #chooseUrl(index: number): string {
    const { platforms } = this.#options;
    const used = new Set([...this.#live].map((s) => s.url));
    for (let i = 0; i < platforms.length; i++) {
      const url = platforms[(index + i) % platforms.length];
      if (url !== undefined && !used.has(url)) return url;
    }
    return platforms[index % platforms.length] ?? platforms[0] ?? '';
  }

  /** Dial, serve until the session ends; resolves with how long it lived. */
  async #runSession(url: string): Promise<number> {
    const { socket, headers } = await dialUpgrade({
      url,
      path: TUNNEL_PATH,
      protocol: TUNNEL_PROTOCOL,
      headers: { authorization: `Bearer ${this.#options.credential}` },
      ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
      allowPlainText: this.#options.allowPlainText ?? false,
      timeoutMs: this.#options.dialTimeoutMs ?? 10_000,
    });
    const nodeId = String(headers[NODE_HEADER] ?? '');
    const sessionId = String(headers[SESSION_HEADER] ?? '');
    if (this.#closed) {
      socket.destroy();
      return 0;
    }
    if (nodeId && [...this.#live].some((s) => s.nodeId === nodeId)) {
      socket.destroy();
      throw new InsituError(
        'INSITU_TUNNEL_UNAVAILABLE',
        `${url} is node ${nodeId}, which already holds a session of this agent`,
      );
    }
    const live: LiveSession = {
      url,
      nodeId,
      sessionId,
      connectedAt: Date.now(),
      h2: undefined,
      socket,
      control: undefined,
      work: new Set(),
    };
    this.#connecting = live;
    this.#server.emit('connection', http2Transport(socket));
    this.#connecting = undefined;
    const h2 = live.h2;
    if (!h2) {
      socket.destroy();
      throw new InsituError('INSITU_TUNNEL_UNAVAILABLE', 'could not start HTTP/2 on the upgraded connection');
    }
    this.#live.add(live);
    this.#logger.info({ url, nodeId, sessionId }, 'tunnel session up');
    this.emit('session', { url, nodeId, sessionId, connectedAt: new Date(live.connectedAt).toISOString() });
    const pingInterval = this.#options.pingIntervalMs ?? 10_000;
    const pingTimeout = this.#options.pingTimeoutMs ?? 5000;
    const pinger = setInterval(() => {
      if (h2.closed || h2.destroyed) return;
      const timer = setTimeout(() => {
        this.#logger.info(
          { url, code: 'INSITU_TUNNEL_UNAVAILABLE' },
          `no PING answer within ${pingTimeout} ms: dropping the session`,
        );
        h2.destroy();
        socket.destroy();
      }, pingTimeout);
      timer.unref();
      const sent = h2.ping(() => clearTimeout(timer));
      if (!sent) clearTimeout(timer);
    }, pingInterval);
    pinger.unref();
    await new Promise<void>((resolve) => {
      if (h2.destroyed) resolve();
      h2.once('close', () => resolve());
      socket.once('close', () => {
        if (!h2.destroyed) h2.destroy();
      });
    });
    clearInterval(pinger);
    this.#live.delete(live);
    for (const work of live.work) work.destroy();
    const lived = Date.now() - live.connectedAt;
    this.#logger.info({ url, nodeId, sessionId, livedMs: lived }, 'tunnel session down');
    this.emit('disconnect', { url, nodeId, sessionId });
    return lived;
  }

  #onRequest(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void {
    try {
      this.#options.handler(req, res);
    } catch (error) {
      this.#logger.error({ err: error }, 'tunnel handler threw');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(errorJson({ code: 'INSITU_INTERNAL', message: 'the agent failed to handle the request' }));
      } else {
        breakOff(res.stream);
      }
    }
  }

  #onRawStream(raw: RawStreamHandler, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    // The platform breaks a stream off with RST_STREAM when its caller gives up (a deadline, an
    // abort), which Node emits as 'error' on the stream: a handler that listens only for 'close'
    // (the agent's probe and log answers) crashed the agent with it (3+2 bed). The compatibility
    // layer of the (req, res) path listens already.
    stream.on('error', () => undefined);
    try {
      raw(stream, headers);
    } catch (error) {
      this.#logger.error({ err: error }, 'tunnel handler threw');
      if (!stream.headersSent) stream.respond({ ':status': 500 }, { endStream: true });
      else breakOff(stream);
    }
  }

  #onControl(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const live = this.#bySession.get(stream.session as http2.ServerHttp2Session);
    if (!live || headers[':method'] !== 'POST') {
      stream.respond({ ':status': 404 }, { endStream: true });
      return;
    }
    live.control = stream;
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    stream.write(
      encodeFrame({
        type: 'hello',
        agentVersion: this.#options.agentVersion ?? '',
        services: this.#services,
        ...(this.#workConnections > 0 ? { workConnections: this.#workConnections } : {}),
      }),
    );
    readFrames(
      stream,
      PlatformFrameSchema,
      'control frame from the platform',
      (frame) => void this.#onPlatformFrame(live, frame),
      (error) => {
        this.#logger.warn(
          { code: error.code, err: error.message },
          'bad control frame from the platform: dropping the session',
        );
        live.h2?.destroy();
      },
    );
    stream.on('close', () => {
      if (live.control === stream) live.control = undefined;
    });
  }

  async #onPlatformFrame(live: LiveSession, frame: PlatformFrame): Promise<void> {
    if (frame.type === 'welcome') {
      live.sessionId = frame.sessionId;
      live.nodeId = frame.nodeId;
      return;
    }
    if (frame.type === 'work') {
      for (const token of frame.tokens) this.#dialWork(live, token);
      return;
    }
    const handler = this.#commands.get(frame.name);
    let reply: unknown;
    if (!handler) {
      reply = {
        type: 'reply',
        id: frame.id,
        ok: false,
        error: { code: 'INSITU_TUNNEL_UNKNOWN_COMMAND', message: `this agent has no command ${frame.name}` },
      };
    } else {
      try {
        const result = await handler(frame.payload);
        reply = { type: 'reply', id: frame.id, ok: true, ...(result === undefined ? {} : { result }) };
      } catch (error) {
        // The agent's own failure, told to its platform: the message helps the operator.
        const code = error instanceof InsituError ? error.code : 'INSITU_INTERNAL';
        reply = {
          type: 'reply',
          id: frame.id,
          ok: false,
          error: { code, message: String((error as Error).message).slice(0, 4000) },
        };
      }
    }
    live.control?.write(encodeFrame(reply));
  }

  get #workConnections(): number {
    if (!this.#workTarget) return 0;
    return Math.max(0, Math.min(this.#options.workConnections ?? 0, MAX_WORK_CONNECTIONS));
  }

  /**
   * Dial one work connection with a token from the platform, wait for its binding line
   * (`<service key>\n`), connect to that service's application and pipe bytes both ways.
   * Nothing is parsed beyond the binding line; a bad one closes the connection.
   */
  #dialWork(live: LiveSession, token: string): void {
    if (this.#closed || !this.#live.has(live) || live.work.size >= this.#workConnections) return;
    const resolveTarget = this.#workTarget;
    if (!resolveTarget) return;
    const placeholder = { destroy: () => undefined } as unknown as Socket;
    live.work.add(placeholder);
    dialUpgrade({
      url: live.url,
      path: WORK_PATH,
      protocol: WORK_PROTOCOL,
      headers: { [SESSION_HEADER]: live.sessionId, [WORK_TOKEN_HEADER]: token },
      ...(this.#options.ca === undefined ? {} : { ca: this.#options.ca }),
      allowPlainText: this.#options.allowPlainText ?? false,
      timeoutMs: this.#options.dialTimeoutMs ?? 10_000,
    }).then(
      ({ socket }) => {
        live.work.delete(placeholder);
        if (this.#closed || !this.#live.has(live)) {
          socket.destroy();
          return;
        }
        live.work.add(socket);
        socket.once('close', () => live.work.delete(socket));
        socket.on('error', () => undefined);
        this.#awaitBinding(socket, resolveTarget);
      },
      (error: unknown) => {
        live.work.delete(placeholder);
        this.#logger.info({ err: (error as Error).message }, 'could not dial a work connection');
      },
    );
  }

  #awaitBinding(socket: Socket, resolveTarget: (service: string) => WorkTarget | undefined): void {
    let pending: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const newline = pending.indexOf(10);
      if (newline < 0) {
        if (pending.length > MAX_BINDING_BYTES) {
          this.#logger.info({ code: 'INSITU_TUNNEL_BAD_FRAME' }, 'work connection binding line too long');
          socket.destroy();
        }
        return;
      }
      socket.removeListener('data', onData);
      socket.pause();
      const service = pending.subarray(0, newline).toString('latin1');
      const rest = pending.subarray(newline + 1);
      // Only a service this agent announced: the platform is not trusted to pick any other.
      const target =
        SERVICE_KEY_PATTERN.test(service) && this.#services.some((s) => s.key === service)
          ? resolveTarget(service)
          : undefined;
      if (!target) {
        this.#logger.info(
          { code: 'INSITU_TUNNEL_BAD_FRAME', service: service.slice(0, 200) },
          'work connection bound to a service this agent does not serve',
        );
        socket.destroy();
        return;
      }
      const { signal, release, unreachable } = target;
      // Node names a Unix socket `path` here (`socketPath` is the http module's word).
      const upstream =
        'socketPath' in target ? net.connect({ path: target.socketPath }) : net.connect(target.port, target.host);
      upstream.setNoDelay(true);
      const stop = () => socket.destroy();
      signal?.addEventListener('abort', stop, { once: true });
      upstream.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') unreachable?.();
        socket.destroy();
      });
      socket.on('error', () => upstream.destroy());
      socket.once('close', () => {
        upstream.destroy();
        signal?.removeEventListener('abort', stop);
        release?.();
      });
      upstream.once('close', () => socket.destroy());
      if (signal?.aborted) {
        socket.destroy();
        return;
      }
      if (rest.length > 0) upstream.write(rest);
      socket.pipe(upstream);
      upstream.pipe(socket);
      socket.resume();
    };
    socket.on('data', onData);
  }

  /** Stop: GOAWAY on every session, let requests in flight finish for up to `graceMs`, stop reconnecting. */
  async close(graceMs = 5000): Promise<void> {
    this.#closed = true;
    for (const sleeper of this.#sleepers) sleeper.wake();
    await Promise.all(
      [...this.#live].map(
        (live) =>
          new Promise<void>((resolve) => {
            const h2 = live.h2;
            if (!h2 || h2.destroyed) {
              live.socket.destroy();
              resolve();
              return;
            }
            const timer = setTimeout(() => {
              h2.destroy();
              live.socket.destroy();
            }, graceMs);
            timer.unref();
            h2.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            live.control?.end();
            h2.close();
          }),
      ),
    );
    await Promise.all(this.#loops);
    this.#server.close();
  }
}
