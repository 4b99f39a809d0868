import http from 'node:http';
import type http2 from 'node:http2';
import { errorJson } from '@insitu/core';
import { breakOff, forwardableHeaders } from './protocol.js';
import {
  RAW_STREAM_HANDLER,
  WORK_TARGET,
  type RawStreamCapable,
  type TunnelHandler,
  type WorkTargetCapable,
} from './tunnel-client.js';

/** Where {@link createHttpProxyHandler} sends requests: a TCP port or a Unix socket. */
export type HttpProxyTarget = { host: string; port: number } | { socketPath: string };

const BAD_GATEWAY = errorJson({
  code: 'INSITU_TUNNEL_UPSTREAM_FAILED',
  message: 'the local application did not answer',
});

/**
 * A tunnel handler that passes each request to a local HTTP/1.1 server (an application
 * on a port or a Unix socket) over kept-alive connections, streaming both bodies. The
 * tunnel client uses its raw-stream form (no compatibility objects per request); the
 * `(req, res)` form works anywhere else.
 */
export function createHttpProxyHandler(
  target: HttpProxyTarget,
  options: { maxSockets?: number } = {},
): TunnelHandler & RawStreamCapable & WorkTargetCapable & { close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
  const handler = ((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const upstream = http.request(
      { ...target, agent, method: req.method, path: req.url, headers: forwardableHeaders(req.headers) },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, forwardableHeaders(answer.headers));
        // pipe(), not pipeline(): pipeline allocates an AbortController (and a
        // DOMException when it finishes) per request, a few per cent of the agent's CPU.
        answer.on('error', () => breakOff(res.stream));
        answer.pipe(res);
      },
    );
    res.on('close', () => {
      if (!upstream.writableFinished || !res.writableFinished) upstream.destroy();
    });
    upstream.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(BAD_GATEWAY);
      } else {
        breakOff(res.stream);
      }
    });
    // A request without a body (END_STREAM on its headers) needs no stream plumbing.
    if (req.stream.endAfterHeaders) upstream.end();
    else {
      req.on('error', () => upstream.destroy());
      req.pipe(upstream);
    }
  }) as TunnelHandler & RawStreamCapable & WorkTargetCapable & { close(): void };
  handler[RAW_STREAM_HANDLER] = (stream, headers) => {
    stream.on('error', () => undefined);
    const upstream = http.request(
      {
        ...target,
        agent,
        method: String(headers[':method'] ?? 'GET'),
        path: String(headers[':path'] ?? '/'),
        headers: forwardableHeaders(headers),
      },
      (answer) => {
        if (stream.destroyed) {
          answer.destroy();
          return;
        }
        stream.respond(forwardableHeaders(answer.headers, { ':status': answer.statusCode ?? 502 }));
        answer.on('error', () => breakOff(stream));
        answer.pipe(stream);
      },
    );
    stream.on('close', () => {
      if (!upstream.writableFinished || !stream.writableFinished) upstream.destroy();
    });
    upstream.on('error', () => {
      if (stream.destroyed) return;
      if (!stream.headersSent) {
        stream.respond({ ':status': 502, 'content-type': 'application/json' });
        stream.end(BAD_GATEWAY);
      } else {
        breakOff(stream);
      }
    });
    if (stream.endAfterHeaders) upstream.end();
    else stream.pipe(upstream);
  };
  // Work connections (the data plane) pipe bytes straight to the application.
  handler[WORK_TARGET] = () => target;
  handler.close = () => agent.destroy();
  return handler;
}
