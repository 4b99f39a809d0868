import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
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

/**
 * Node's HTTP/1.1 keep-alive agent over work connections: one connection pool per
 * service key (the agent's `name`), and a new connection is an unbound work connection
 * taken from the session's spares and bound to that service by its first line.
 */
class WorkAgent extends http.Agent {
  constructor(
    readonly pool: WorkPool,
    maxSockets: number,
    idleTimeoutMs: number,
  ) {
    // FIFO: Node's agent skips connections destroyed while idle only at the head of the list.
    super({ keepAlive: true, maxSockets, scheduling: 'fifo', timeout: idleTimeoutMs });
  }

  override getName(options?: http.ClientRequestArgs): string {
    return String(options?.host ?? '');
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): Duplex | undefined {
    const socket = this.pool.bind(String(options.host ?? ''));
    if (!socket) {
      callback?.(new Error('no free work connection'), undefined as unknown as Duplex);
      return undefined;
    }
    return socket;
  }

  override keepSocketAlive(socket: Socket): boolean {
    if (this.pool.closing) return false;
    return super.keepSocketAlive(socket) as unknown as boolean;
  }
}

/**
 * The data plane of one agent session on the platform: work connections the agent
 * dialled (each with a one-time token this pool issued over the control stream), over
 * which the platform speaks plain HTTP/1.1 keep-alive while the agent pipes bytes to the
 * application. The pool keeps `spare` unbound connections ready, binds one to a service
 * on first use (`<service key>\n`), and replaces connections that die.
 */
export class WorkPool {
  readonly agent: WorkAgent;
  closing = false;
  readonly #options: WorkPoolOptions;
  readonly #tokens = new Map<string, number>();
  readonly #spares: Socket[] = [];
  readonly #all = new Set<Socket>();
  readonly #maxSockets: number;

  constructor(options: WorkPoolOptions) {
    this.#options = options;
    this.#maxSockets = options.max;
    this.agent = new WorkAgent(this, options.max, options.idleTimeoutMs ?? 4000);
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

  /** Every work connection held now (spare and bound). */
  connections(): Socket[] {
    return [...this.#all];
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
    this.#all.add(socket);
    this.#spares.push(socket);
    // The upgraded socket came from an HTTP server, which allows half-open connections: a
    // FIN from the agent (it closes a connection when the application closed its end)
    // would leave ours open, idle in the pool, for the next request to fail on. Close it.
    socket.allowHalfOpen = false;
    socket.on('error', () => undefined);
    // Anything the agent sends on an unbound connection is a protocol breach.
    const onData = (): void => {
      this.#options.logger.info(
        { code: 'INSITU_TUNNEL_PROTOCOL' },
        'the agent sent bytes on an unbound work connection: closing it',
      );
      socket.destroy();
    };
    socket.on('data', onData);
    socket.once('bound', () => socket.removeListener('data', onData));
    socket.once('close', () => {
      this.#all.delete(socket);
      const at = this.#spares.indexOf(socket);
      if (at >= 0) this.#spares.splice(at, 1);
      this.refill();
    });
  }

  /** Could a request for `service` go out on a work connection now, without waiting? */
  canServe(service: string): boolean {
    if (this.closing) return false;
    // Destroyed connections leave these lists only on their `close`, a tick later.
    if (this.agent.freeSockets[service]?.some((socket) => !socket.destroyed)) return true;
    const busy = this.agent.sockets[service]?.length ?? 0;
    return busy < this.#maxSockets && this.#spares.some((socket) => !socket.destroyed);
  }

  /** Bind a spare to `service` (its first line), for the HTTP agent. */
  bind(service: string): Socket | undefined {
    let socket = this.#spares.pop();
    while (socket?.destroyed) socket = this.#spares.pop();
    if (!socket) return undefined;
    socket.emit('bound');
    socket.write(`${service}\n`);
    this.refill();
    return socket;
  }

  /** Stop issuing, close spares and idle bound connections; requests in flight finish, then their connections close. */
  drain(): void {
    this.closing = true;
    this.#tokens.clear();
    for (const socket of this.#spares.splice(0)) socket.destroy();
    for (const list of Object.values(this.agent.freeSockets)) for (const socket of list ?? []) socket.destroy();
  }

  /** Close everything now (the session is gone). */
  destroy(): void {
    this.drain();
    for (const socket of this.#all) socket.destroy();
    this.agent.destroy();
  }
}
