import http from 'node:http';
import http2 from 'node:http2';
import { pipeline } from 'node:stream';
import { forwardableHeaders } from './protocol.js';
import type { TunnelHandler } from './tunnel-client.js';

/** Where {@link createHttpProxyHandler} sends requests: a TCP port or a Unix socket. */
export type HttpProxyTarget = { host: string; port: number } | { socketPath: string };

/**
 * A tunnel handler that passes each request to a local HTTP/1.1 server (an application
 * on a port or a Unix socket) over kept-alive connections, streaming both bodies.
 */
export function createHttpProxyHandler(target: HttpProxyTarget, options: { maxSockets?: number } = {}): TunnelHandler & { close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
  const handler = ((req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const upstream = http.request(
      { ...target, agent, method: req.method, path: req.url, headers: forwardableHeaders(req.headers) },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, forwardableHeaders(answer.headers));
        pipeline(answer, res, () => undefined);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INSITU_TUNNEL_UPSTREAM_FAILED', message: 'the local application did not answer' } }));
      } else {
        res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    pipeline(req, upstream, () => undefined);
  }) as TunnelHandler & { close(): void };
  handler.close = () => agent.destroy();
  return handler;
}
