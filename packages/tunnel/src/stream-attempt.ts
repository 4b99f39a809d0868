import http2 from 'node:http2';
import type { AgentSession } from './agent-session.js';
import { AttemptFailure, type AttemptContext, type FailureKind } from './attempt-failure.js';
import { breakOff, forwardableHeaders } from './protocol.js';
import type { TunnelRequest, TunnelResponse } from './server-types.js';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

/** One attempt over an HTTP/2 stream of the session. */
export function attemptStream(
  ctx: AttemptContext,
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
  ctx.metrics?.streamsActive.inc();
  const started = Date.now();
  let bodyStarted = false;
  return new Promise<TunnelResponse>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: 'ok' | FailureKind, value: TunnelResponse | AttemptFailure): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.signal?.removeEventListener('abort', onAbort);
      ctx.metrics?.streams.inc({ outcome: outcome === 'died' ? 'failed' : outcome });
      if (value instanceof AttemptFailure) reject(value);
      else resolve(value);
    };
    const timer = setTimeout(
      () => {
        breakOff(stream);
        settle('timeout', new AttemptFailure('timeout', 'deadline passed before the response headers', bodyStarted));
      },
      Math.max(1, deadline - Date.now()),
    );
    const onAbort = (): void => {
      breakOff(stream);
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
      stream.setTimeout(ctx.idleTimeoutMs, () => breakOff(stream));
      settle('ok', {
        status,
        headers: out,
        body: stream,
        sessionId: session.id,
        nodeId: ctx.nodeId,
        agentId: session.identity.agentId,
        forwarded: false,
      });
    });
    stream.on('error', () => undefined);
    stream.once('close', () => {
      session.inFlight--;
      ctx.metrics?.streamsActive.dec();
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
