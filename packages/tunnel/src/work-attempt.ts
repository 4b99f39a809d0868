import { Readable } from 'node:stream';
import { InsituError } from '@insitu/core';
import type { AgentSession } from './agent-session.js';
import { AttemptFailure, IDEMPOTENT_METHODS, type AttemptContext, type FailureKind } from './attempt-failure.js';
import { forwardableHeaders } from './protocol.js';
import type { TunnelRequest, TunnelResponse } from './server-types.js';
import { AnswerParser, encodeRequestHead, type AnswerHead, type AnswerSink, type RequestFraming } from './work-http.js';
import type { WorkConnection, WorkPool, WorkUser } from './work-pool.js';

/**
 * One attempt over a work connection: plain HTTP/1.1 keep-alive (`work-http.ts`), the
 * agent pipes bytes to the application.
 *
 * A kept-alive connection can be dead when a request gets it: closed by us a moment ago
 * (its `close` not delivered yet), or by the agent because the application closed its
 * idle connection (the FIN still on its way). Such a failure, before any byte of an
 * answer, is `stale`: `LocalDispatch.attempt` sends the request again over the same session's HTTP/2
 * connection and does not count it against the session. Which requests may go again
 * (RFC 9112 §9.3.1): any method when the connection was already closed or half-closed
 * as the request got it, or none could be had (nothing reached the agent); an idempotent
 * request also when the connection died after we wrote to it; never a request whose
 * streamed body was partly consumed.
 */
export function attemptWork(
  ctx: AttemptContext,
  session: AgentSession,
  work: WorkPool,
  service: string,
  request: TunnelRequest,
  method: string,
  deadline: number,
): Promise<TunnelResponse> {
  const body = request.body;
  const headers = forwardableHeaders(request.headers ?? {}, { host: 'localhost' });
  const given = typeof body === 'string' || Buffer.isBuffer(body);
  if (given && headers['content-length'] === undefined) headers['content-length'] = String(Buffer.byteLength(body));
  let encoded: { head: string; framing: RequestFraming };
  try {
    encoded = encodeRequestHead(method, request.path, headers, given ? 'given' : body ? 'stream' : 'none');
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
  return new Promise<TunnelResponse>((resolve, reject) => {
    new WorkExchange(ctx, session, work, request, method, deadline, resolve, reject).start(
      service,
      encoded.head,
      encoded.framing,
    );
  });
}

/** The answer's body: bytes of the work connection, with its backpressure. */
class WorkAnswer extends Readable {
  constructor(readonly exchange: WorkExchange) {
    super();
  }

  override _read(): void {
    this.exchange.resumeConnection();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.answerDestroyed();
    callback(error);
  }
}

/** One request and its answer on one work connection (one object, its handlers as methods). */
class WorkExchange implements WorkUser, AnswerSink {
  readonly #started = Date.now();
  readonly #idempotent: boolean;
  readonly #parser: AnswerParser;
  #connection: WorkConnection | undefined;
  #timer: NodeJS.Timeout | undefined;
  #settled = false;
  #finished = false;
  #gotBytes = false;
  #deadOnArrival = false;
  #bodyStarted = false;
  #requestDone = false;
  #answer: WorkAnswer | undefined;
  #answerDone = false;
  #answerTimeout = false;
  #paused = false;
  #chunked = false;
  /** The answer allows the connection to be reused (kept for a request body still going out). */
  #reusable = false;
  /** Counted in the session's in-flight requests until the attempt is over. */
  #inFlight = true;
  #onAbort: (() => void) | undefined;

  constructor(
    readonly ctx: AttemptContext,
    readonly session: AgentSession,
    readonly pool: WorkPool,
    readonly request: TunnelRequest,
    readonly method: string,
    readonly deadline: number,
    readonly resolve: (response: TunnelResponse) => void,
    readonly reject: (error: AttemptFailure) => void,
  ) {
    this.#idempotent = request.idempotent ?? IDEMPOTENT_METHODS.has(method);
    this.#parser = new AnswerParser(this, method === 'HEAD');
  }

  start(service: string, head: string, framing: RequestFraming): void {
    const session = this.session;
    session.inFlight++;
    session.requests++;
    this.ctx.metrics?.streamsActive.inc();
    this.ctx.metrics?.workRequests.inc();
    const connection = this.pool.acquire(service, this);
    if (!connection) {
      this.#done();
      this.#failed('no free work connection');
      return;
    }
    this.#connection = connection;
    this.#timer = setTimeout(
      () => {
        connection.socket.destroy();
        this.#settle(
          'timeout',
          new AttemptFailure('timeout', 'deadline passed before the response headers', this.#bodyStarted),
        );
      },
      Math.max(1, this.deadline - Date.now()),
    );
    const signal = this.request.signal;
    if (signal) {
      this.#onAbort = () => {
        connection.socket.destroy();
        this.#settle('aborted', new AttemptFailure('aborted', 'aborted by the caller', this.#bodyStarted));
      };
      if (signal.aborted) return this.#onAbort();
      signal.addEventListener('abort', this.#onAbort);
    }
    // Written a tick later, as Node's HTTP client did: a connection closed in this very
    // tick (by us: its `close` comes later) is seen as dead on arrival, before a byte goes out.
    queueMicrotask(() => this.#send(connection, head, framing));
  }

  #send(connection: WorkConnection, head: string, framing: RequestFraming): void {
    if (this.#settled) return;
    const socket = connection.socket;
    if (!connection.usable) {
      this.#deadOnArrival = true;
      this.#failed(`work connection of session ${this.session.id} closed`);
      socket.destroy();
      return;
    }
    const prefix = connection.binding;
    connection.binding = undefined;
    const text = prefix === undefined ? head : prefix + head;
    const body = this.request.body;
    if (body === undefined) {
      socket.write(text, 'latin1');
      this.#requestDone = true;
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      // One system call for the head and the body.
      socket.cork();
      socket.write(text, 'latin1');
      if (body.length > 0) socket.write(body);
      socket.uncork();
      this.#requestDone = true;
    } else {
      socket.write(text, 'latin1');
      this.#chunked = framing === 'chunked';
      if (body.readableEnded) return this.#onBodyEnd();
      body.on('data', this.#onBodyData);
      body.on('end', this.#onBodyEnd);
      body.on('error', this.#onBodyError);
      // As `pipe` does: a caller may hand over a paused stream (the gateway pauses it until
      // a session is chosen), and a 'data' listener alone does not resume one paused explicitly.
      body.resume();
    }
  }

  readonly #onBodyData = (data: Buffer | string): void => {
    this.#bodyStarted = true;
    const socket = this.#connection?.socket;
    if (!socket || socket.destroyed) return;
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    if (chunk.length === 0) return;
    if (this.#chunked) {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      socket.write('\r\n', 'latin1');
      socket.uncork();
    } else socket.write(chunk);
    if (socket.writableNeedDrain) {
      const body = this.request.body as Readable;
      body.pause();
      socket.once('drain', () => {
        if (!this.#requestDone && !this.#finished) body.resume();
      });
    }
  };

  readonly #onBodyEnd = (): void => {
    const socket = this.#connection?.socket;
    this.#detachBody();
    this.#requestDone = true;
    if (!socket || socket.destroyed) return;
    if (this.#chunked) socket.write('0\r\n\r\n', 'latin1');
    if (this.#answerDone) this.#release(this.#reusable);
  };

  readonly #onBodyError = (): void => {
    this.#connection?.socket.destroy();
  };

  #detachBody(): void {
    const body = this.request.body;
    if (!(body instanceof Readable)) return;
    body.removeListener('data', this.#onBodyData);
    body.removeListener('end', this.#onBodyEnd);
    body.removeListener('error', this.#onBodyError);
    // Left as `unpipe` leaves it: paused, not flowing to no one.
    if (!body.readableEnded) body.pause();
  }

  // --- the connection (WorkUser) ---

  onData(chunk: Buffer): void {
    this.#gotBytes = true;
    try {
      this.#parser.execute(chunk);
    } catch (error) {
      this.#connection?.socket.destroy();
      if (!this.#settled) this.#failed(`work connection of session ${this.session.id}: ${(error as Error).message}`);
      else this.#breakAnswer(error as Error);
      return;
    }
    if (this.#answer && !this.#answerDone && !this.#answerTimeout) {
      // A body idle this long is cut (armed only when an answer spans reads).
      this.#answerTimeout = true;
      this.#connection?.socket.setTimeout(this.ctx.idleTimeoutMs);
    }
  }

  onEnd(): void {
    // A close-delimited answer ends here; any other one is cut short (`onClose` follows).
    this.#parser.end();
  }

  onTimeout(): void {
    this.#answer?.destroy();
    this.#connection?.socket.destroy();
  }

  onClose(): void {
    if (!this.#settled) this.#failed(`work connection of session ${this.session.id} closed`);
    else if (!this.#answerDone) {
      this.#breakAnswer(
        new InsituError(
          'INSITU_TUNNEL_UPSTREAM_FAILED',
          `agent session ${this.session.id} ended before the answer was complete: its work connection closed`,
        ),
      );
    }
    this.#finished = true;
    this.#detachBody();
    this.#done();
  }

  // --- the answer (AnswerSink) ---

  onHead(head: AnswerHead): void {
    const session = this.session;
    session.recordSuccess(Date.now() - this.#started);
    const answer = new WorkAnswer(this);
    this.#answer = answer;
    this.#settle('ok', {
      status: head.status,
      headers: forwardableHeaders(head.headers),
      body: answer,
      sessionId: session.id,
      nodeId: this.ctx.nodeId,
      agentId: session.identity.agentId,
      forwarded: false,
    });
  }

  onBody(chunk: Buffer): void {
    if (chunk.length === 0 || !this.#answer) return;
    if (!this.#answer.push(chunk) && !this.#paused) {
      this.#paused = true;
      this.#connection?.socket.pause();
    }
  }

  onComplete(reusable: boolean): void {
    this.#answerDone = true;
    this.#reusable = reusable;
    this.#answer?.push(null);
    // An answer before the whole request went out (an early 413…): the connection is not reused.
    this.#release(reusable && this.#requestDone);
  }

  /**
   * The answer broke off: its body ends in an error, never cleanly. Not before the caller
   * could listen: the head and the break can come in one read, and the promise that hands
   * the caller the body resolves only after the error would be emitted.
   */
  #breakAnswer(error: Error): void {
    const answer = this.#answer;
    if (!answer || answer.destroyed) return;
    setImmediate(() => answer.destroy(error));
  }

  resumeConnection(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#connection?.socket.resume();
  }

  answerDestroyed(): void {
    // Destroyed before its end (the caller went away): the connection cannot carry another request.
    if (!this.#answerDone) this.#connection?.socket.destroy();
  }

  // --- the end of the attempt ---

  #release(reusable: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    const connection = this.#connection;
    if (!connection) return;
    if (!this.#requestDone) this.#detachBody();
    if (this.#paused) {
      this.#paused = false;
      connection.socket.resume();
    }
    if (this.#answerTimeout) connection.socket.setTimeout(0);
    this.pool.release(connection, reusable, this.#parser.keepAliveMs);
    this.#done();
  }

  #done(): void {
    if (!this.#inFlight) return;
    this.#inFlight = false;
    this.session.inFlight--;
    this.ctx.metrics?.streamsActive.dec();
  }

  #failed(message: string): void {
    if (this.#settled) return;
    const stale =
      !this.#gotBytes &&
      !this.#bodyStarted &&
      (this.#connection === undefined || this.#deadOnArrival || this.#idempotent) &&
      Date.now() < this.deadline;
    // Untouched: the HTTP/2 stream that takes the request over reads it from the start.
    if (stale) this.#detachBody();
    this.#settle('died', new AttemptFailure('died', message, this.#bodyStarted, false, stale));
  }

  #settle(outcome: 'ok' | FailureKind, value: TunnelResponse | AttemptFailure): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    if (this.#onAbort) this.request.signal?.removeEventListener('abort', this.#onAbort);
    const stale = value instanceof AttemptFailure && value.stale;
    this.ctx.metrics?.streams.inc({ outcome: stale ? 'refused' : outcome === 'died' ? 'failed' : outcome });
    if (value instanceof AttemptFailure) this.reject(value);
    else this.resolve(value);
  }
}
