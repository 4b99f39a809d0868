import http from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { InsituError } from '@insitu/core';
import type { AgentSession } from './agent-session.js';
import { AttemptFailure, IDEMPOTENT_METHODS, type AttemptContext, type FailureKind } from './attempt-failure.js';
import { forwardableHeaders } from './protocol.js';
import type { TunnelRequest, TunnelResponse } from './server-types.js';
import type { WorkPool } from './work-pool.js';

/**
 * One attempt over a work connection: plain HTTP/1.1 keep-alive, the agent pipes bytes to
 * the application.
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
  ctx.metrics?.streamsActive.inc();
  ctx.metrics?.workRequests.inc();
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
      ctx.metrics?.streams.inc({ outcome: stale ? 'refused' : outcome === 'died' ? 'failed' : outcome });
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
      answer.setTimeout(ctx.idleTimeoutMs, () => answer.destroy());
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
        nodeId: ctx.nodeId,
        agentId: session.identity.agentId,
        forwarded: false,
      });
    });
    outgoing.on('error', (error) => failed(`work connection of session ${session.id}: ${error.message}`));
    outgoing.once('close', () => {
      session.inFlight--;
      ctx.metrics?.streamsActive.dec();
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
