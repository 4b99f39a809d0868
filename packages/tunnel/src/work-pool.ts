import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from '@insitu/core';

/** How a session's pool of work connections is sized. */
export interface WorkPoolOptions {
  /** Most work connections (idle + bound to a service) of one session (the agent's ask, capped by ours). */
  max: number;
  /** Unbound connections kept ready ahead of demand (default 8). */
  spare?: number;
  /** A token not used within this long is forgotten (default 30 s). */
  tokenTtlMs?: number;
  /**
   * Idle bound connections are closed after this long (default 4 s: below the 5 s
   * keep-alive timeout of Node's and uvicorn's HTTP servers, so that we, not the
   * application, close an idle connection, and a request rarely meets one being closed;
   * an application's `Keep-Alive: timeout=N` hint shortens it to N - 1 s).
   */
  idleTimeoutMs?: number;
  /** Send tokens to the agent (a `work` frame on the control stream). */
  sendTokens(tokens: string[]): void;
  logger: Logger;
}

/** How often idle connections are checked against their time (they close at most this late). */
const SWEEP_MS = 250;

/** What uses a work connection while it carries a request (see `attemptWork`). */
export interface WorkUser {
  onData(chunk: Buffer): void;
  /** The agent closed its end (FIN). */
  onEnd(): void;
  onClose(): void;
  onTimeout(): void;
}

/** One work connection: the socket, the service it is bound to, and what it does now. */
export class WorkConnection {
  /** The service it is bound to (undefined while spare). */
  service: string | undefined;
  /** The binding line still to write before the first request (one write with its head). */
  binding: string | undefined;
  /** The request it carries now. */
  user: WorkUser | undefined;
  /** While idle: closed when the clock passes this. */
  idleUntil = 0;
  constructor(readonly socket: Socket) {}

  /** Open both ways (not destroyed, no FIN either way). */
  get usable(): boolean {
    const socket = this.socket;
    return !socket.destroyed && !socket.readableEnded && !socket.writableEnded;
  }
}

/**
 * The data plane of one agent session on the platform: work connections the agent
 * dialled (each with a one-time token this pool issued over the control stream), over
 * which the platform speaks plain HTTP/1.1 keep-alive (`attemptWork`, `work-http.ts`)
 * while the agent pipes bytes to the application. The pool keeps `spare` unbound
 * connections ready, binds one to a service on first use (`<service key>\n`), keeps
 * bound connections idle per service between requests, and replaces connections that die.
 */
export class WorkPool {
  closing = false;
  readonly #options: WorkPoolOptions;
  readonly #tokens = new Map<string, number>();
  readonly #spares: WorkConnection[] = [];
  readonly #idle = new Map<string, WorkConnection[]>();
  readonly #busy = new Map<string, number>();
  readonly #all = new Set<WorkConnection>();
  readonly #idleTimeoutMs: number;
  /** Closes idle connections past their time (one timer for the pool, only while some are idle). */
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: WorkPoolOptions) {
    this.#options = options;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 4000;
  }

  /** Connections held now (spare and bound). */
  get size(): number {
    return this.#all.size;
  }

  /** Unbound connections ready now. */
  get spares(): number {
    return this.#spares.length;
  }

  /** Tokens handed out and not yet used. */
  get pendingTokens(): number {
    return this.#tokens.size;
  }

  /** Bound connections of `service` idle now (kept alive for its next request). */
  idle(service: string): number {
    return this.#idle.get(service)?.length ?? 0;
  }

  /** Every work connection held now (spare and bound). */
  connections(): Socket[] {
    return [...this.#all].map((connection) => connection.socket);
  }

  /** Issue tokens until spares + pending reach `spare`, within `max`. */
  refill(now = Date.now()): void {
    if (this.closing) return;
    for (const [token, expires] of this.#tokens) if (expires <= now) this.#tokens.delete(token);
    const spare = Math.min(this.#options.spare ?? 8, this.#options.max);
    const room = this.#options.max - this.#all.size - this.#tokens.size;
    const want = Math.min(spare - this.#spares.length - this.#tokens.size, room, 64);
    if (want <= 0) return;
    const ttl = this.#options.tokenTtlMs ?? 30_000;
    const tokens: string[] = [];
    for (let i = 0; i < want; i++) {
      const token = randomBytes(32).toString('base64url');
      this.#tokens.set(token, now + ttl);
      tokens.push(token);
    }
    this.#options.sendTokens(tokens);
  }

  /** Use up a token (true once, for a token this pool issued that has not expired). */
  claim(token: string, now = Date.now()): boolean {
    const expires = this.#tokens.get(token);
    if (expires === undefined) return false;
    this.#tokens.delete(token);
    return expires > now && !this.closing;
  }

  /** Take in an authenticated work connection as a spare. */
  add(socket: Socket): void {
    if (this.closing || this.#all.size >= this.#options.max) {
      socket.destroy();
      return;
    }
    const connection = new WorkConnection(socket);
    this.#all.add(connection);
    this.#spares.push(connection);
    // The upgraded socket came from an HTTP server, which allows half-open connections: a
    // FIN from the agent (it closes a connection when the application closed its end)
    // would leave ours open, idle in the pool, for the next request to fail on. Close it.
    socket.allowHalfOpen = false;
    socket.on('error', () => undefined);
    // One set of listeners for the connection's life, handing over to the request it
    // carries, if any (no listeners added and removed per request).
    socket.on('data', (chunk: Buffer) => {
      if (connection.user) return connection.user.onData(chunk);
      // Bytes on a spare, or on an idle connection between answers: a protocol breach.
      this.#options.logger.info(
        { code: 'INSITU_TUNNEL_PROTOCOL' },
        'the agent sent bytes on a work connection that carries no request: closing it',
      );
      socket.destroy();
    });
    socket.on('end', () => connection.user?.onEnd());
    socket.on('timeout', () => {
      if (connection.user) connection.user.onTimeout();
      else socket.destroy();
    });
    socket.once('close', () => {
      this.#all.delete(connection);
      const user = connection.user;
      this.#forget(connection);
      user?.onClose();
      this.refill();
    });
  }

  /** Could a request for `service` go out on a work connection now, without waiting? */
  canServe(service: string): boolean {
    if (this.closing) return false;
    // Destroyed connections leave these lists only on their `close`, a tick later.
    if (this.#idle.get(service)?.some((connection) => connection.usable)) return true;
    return (this.#busy.get(service) ?? 0) < this.#options.max && this.#spares.some((connection) => connection.usable);
  }

  /**
   * A connection for one request to `service`: the most recently idle one bound to it, or
   * a spare bound now (its binding line goes out with the request's head). The caller
   * gives it back with {@link release} or destroys its socket.
   */
  acquire(service: string, user: WorkUser): WorkConnection | undefined {
    if (this.closing) return undefined;
    const idle = this.#idle.get(service);
    let connection: WorkConnection | undefined;
    while (idle && idle.length > 0) {
      const candidate = idle.pop();
      if (candidate?.usable) {
        connection = candidate;
        break;
      }
      candidate?.socket.destroy();
    }
    if (!connection) {
      if ((this.#busy.get(service) ?? 0) >= this.#options.max) return undefined;
      connection = this.#takeSpare(service);
      if (!connection) return undefined;
      connection.binding = `${service}\n`;
    }
    connection.user = user;
    this.#busy.set(service, (this.#busy.get(service) ?? 0) + 1);
    return connection;
  }

  /**
   * A request is over. `reusable`: its answer was complete and the connection may carry
   * another (`keepAliveMs`: the application's own idle limit, if it said); otherwise the
   * connection is closed.
   */
  release(connection: WorkConnection, reusable: boolean, keepAliveMs?: number): void {
    const service = connection.service;
    if (connection.user === undefined || service === undefined) return;
    connection.user = undefined;
    this.#busy.set(service, (this.#busy.get(service) ?? 1) - 1);
    if (!reusable || this.closing || !connection.usable) {
      connection.socket.destroy();
      return;
    }
    // Close it ourselves before the application would (see `idleTimeoutMs`).
    const timeout =
      keepAliveMs !== undefined && keepAliveMs - 1000 < this.#idleTimeoutMs
        ? Math.max(1, keepAliveMs - 1000)
        : this.#idleTimeoutMs;
    connection.idleUntil = Date.now() + timeout;
    let idle = this.#idle.get(service);
    if (!idle) this.#idle.set(service, (idle = []));
    idle.push(connection);
    if (!this.#sweeper) {
      // Not a socket timeout per connection: setting one per request, and refreshing it on
      // every read and write, cost more than this sweep (bench/callpath profiles).
      this.#sweeper = setInterval(() => this.#sweep(), Math.min(SWEEP_MS, timeout));
      this.#sweeper.unref();
    }
  }

  #sweep(): void {
    const now = Date.now();
    let left = 0;
    for (const idle of this.#idle.values()) {
      for (let i = idle.length - 1; i >= 0; i--) {
        const connection = idle[i];
        if (connection && connection.idleUntil <= now) {
          idle.splice(i, 1);
          connection.socket.destroy();
        }
      }
      left += idle.length;
    }
    if (left === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Bind a spare to `service` now (its first line), outside any request. */
  bind(service: string): Socket | undefined {
    const connection = this.#takeSpare(service);
    if (!connection) return undefined;
    connection.socket.write(`${service}\n`);
    return connection.socket;
  }

  #takeSpare(service: string): WorkConnection | undefined {
    let connection = this.#spares.pop();
    while (connection && !connection.usable) {
      connection.socket.destroy();
      connection = this.#spares.pop();
    }
    if (!connection) return undefined;
    connection.service = service;
    this.refill();
    return connection;
  }

  #forget(connection: WorkConnection): void {
    const spare = this.#spares.indexOf(connection);
    if (spare >= 0) this.#spares.splice(spare, 1);
    const service = connection.service;
    if (service === undefined) return;
    const idle = this.#idle.get(service);
    const at = idle?.indexOf(connection) ?? -1;
    if (at >= 0) idle?.splice(at, 1);
    if (connection.user) this.#busy.set(service, (this.#busy.get(service) ?? 1) - 1);
    connection.user = undefined;
  }

  /** Stop issuing, close spares and idle bound connections; requests in flight finish, then their connections close. */
  drain(): void {
    this.closing = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#tokens.clear();
    for (const connection of this.#spares.splice(0)) connection.socket.destroy();
    for (const idle of this.#idle.values()) for (const connection of idle.splice(0)) connection.socket.destroy();
  }

  /** Close everything now (the session is gone). */
  destroy(): void {
    this.drain();
    for (const connection of this.#all) connection.socket.destroy();
  }
}
