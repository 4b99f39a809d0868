import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants as h2, type Http2ServerRequest, type Http2ServerResponse, type IncomingHttpHeaders as Http2Headers, type ServerHttp2Stream } from 'node:http2';
import { InsituError } from '@insitu/core';
import type { ReadyInstance } from './deployment-runner.js';

/** A request as HTTP/1.1 or HTTP/2 (compatibility API) servers hand it over: the tunnel gives the latter. */
export type InboundRequest = IncomingMessage | Http2ServerRequest;
export type OutboundResponse = ServerResponse | Http2ServerResponse;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate', 'http2-settings', 'host']);

/** End-to-end headers only: no hop-by-hop headers and no HTTP/2 pseudo-headers (`:path`…), which HTTP/1.1 cannot carry. */
function headersFrom(raw: IncomingHttpHeaders, authority?: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(raw)) if (value !== undefined && !HOP_BY_HOP.has(key) && !key.startsWith(':')) out[key] = value;
  if (authority !== undefined) out.host = authority;
  return out;
}

/** Break off an answer that cannot be completed. */
function abort(res: OutboundResponse): void {
  if ('stream' in res) res.stream.close();
  else res.destroy();
}

/** Answer with an Insitu error body (when nothing was sent yet). */
export function sendError(res: OutboundResponse, error: InsituError): void {
  if (res.headersSent) {
    abort(res);
    return;
  }
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  res.writeHead(error.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answer an HTTP/2 stream with an Insitu error body (or break it off when headers went already). */
export function sendStreamError(stream: ServerHttp2Stream, error: InsituError): void {
  if (stream.destroyed) return;
  if (stream.headersSent) {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  stream.respond({ ':status': error.status, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(error.headers ?? {}) });
  stream.end(body);
}

/** What the balancer needs from a deployment. */
export interface BalancerTarget {
  name: string;
  ready(): ReadyInstance[];
  instanceFailed(id: string): void;
  requestTimeoutMs: number;
}

/**
 * Spreads requests over the ready instances of one application on this agent: the
 * instance with the fewest requests in flight, ties taken in turn. A request that could
 * not reach an instance at all (its socket refused the connection) is tried once more on
 * another one when its method is idempotent. A request running past the manifest's
 * timeout is answered 504.
 */
export class LocalBalancer {
  private turn = 0;

  constructor(private readonly target: BalancerTarget) {}

  private pick(exclude: Set<string>): ReadyInstance | undefined {
    const ready = this.target.ready().filter((i) => !exclude.has(i.id));
    if (ready.length === 0) return undefined;
    const least = Math.min(...ready.map((i) => i.inflight));
    const candidates = ready.filter((i) => i.inflight === least);
    return candidates[this.turn++ % candidates.length];
  }

  /** Proxy one HTTP request to an instance; never throws (errors become answers). */
  handle(req: InboundRequest, res: OutboundResponse): void {
    this.forward(req, res, new Set(), true);
  }

  private forward(req: InboundRequest, res: OutboundResponse, tried: Set<string>, mayRetry: boolean): void {
    const instance = this.pick(tried);
    if (!instance) {
      sendError(res, new InsituError('INSITU_APP_UNAVAILABLE', `no instance of ${this.target.name} is ready on this agent`, { headers: { 'retry-after': '1' } }));
      return;
    }
    tried.add(instance.id);
    instance.inflight++;
    let finished = false;
    const finish = () => {
      if (!finished) {
        finished = true;
        instance.inflight--;
      }
    };
    const authority = req.headers[':authority'] ?? req.headers.host;
    const headers = headersFrom(req.headers, typeof authority === 'string' ? authority : undefined);
    const upstream = request({ socketPath: instance.socketPath, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, headersFrom(answer.headers));
      answer.pipe(res as NodeJS.WritableStream);
      answer.on('end', finish);
      answer.on('error', () => {
        finish();
        abort(res);
      });
    });
    const timer = setTimeout(() => {
      upstream.destroy();
      finish();
      sendError(res, new InsituError('INSITU_APP_TIMEOUT', `${this.target.name} did not answer within ${this.target.requestTimeoutMs} ms`));
    }, this.target.requestTimeoutMs);
    upstream.on('close', () => clearTimeout(timer));
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished) upstream.destroy();
      finish();
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      finish();
      if (res.headersSent || ('destroyed' in res && res.destroyed)) {
        abort(res);
        return;
      }
      const neverReached = error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      if (neverReached) this.target.instanceFailed(instance.id);
      // Only methods without a body: the body of the first attempt has been consumed.
      const idempotent = ['GET', 'HEAD', 'OPTIONS'].includes(req.method ?? 'GET');
      if (neverReached && mayRetry && idempotent) {
        this.forward(req, res, tried, false);
        return;
      }
      sendError(res, new InsituError('INSITU_APP_UNAVAILABLE', `the instance of ${this.target.name} failed: ${error.code ?? error.message}`));
    });
    (req as NodeJS.ReadableStream).pipe(upstream);
  }

  /**
   * The same for a raw HTTP/2 stream (the tunnel's fast path: no compatibility objects
   * per request). Same choice of instance, retry, timeout and errors as {@link handle}.
   */
  handleStream(stream: ServerHttp2Stream, headers: Http2Headers): void {
    stream.on('error', () => undefined);
    this.forwardStream(stream, headers, new Set(), true);
  }

  private forwardStream(stream: ServerHttp2Stream, headers: Http2Headers, tried: Set<string>, mayRetry: boolean): void {
    const instance = this.pick(tried);
    if (!instance) {
      sendStreamError(stream, new InsituError('INSITU_APP_UNAVAILABLE', `no instance of ${this.target.name} is ready on this agent`, { headers: { 'retry-after': '1' } }));
      return;
    }
    tried.add(instance.id);
    instance.inflight++;
    let finished = false;
    const finish = () => {
      if (!finished) {
        finished = true;
        instance.inflight--;
      }
    };
    const method = String(headers[':method'] ?? 'GET');
    const authority = headers[':authority'];
    const upstream = request(
      { socketPath: instance.socketPath, method, path: String(headers[':path'] ?? '/'), headers: headersFrom(headers, typeof authority === 'string' ? authority : undefined) },
      (answer) => {
        if (stream.destroyed) {
          answer.destroy();
          finish();
          return;
        }
        stream.respond({ ...headersFrom(answer.headers), ':status': answer.statusCode ?? 502 });
        // pipe(), not pipeline(): pipeline costs an AbortController per request.
        answer.pipe(stream);
        answer.on('end', finish);
        answer.on('error', () => {
          finish();
          stream.close(h2.NGHTTP2_INTERNAL_ERROR);
        });
      },
    );
    const timer = setTimeout(() => {
      upstream.destroy();
      finish();
      sendStreamError(stream, new InsituError('INSITU_APP_TIMEOUT', `${this.target.name} did not answer within ${this.target.requestTimeoutMs} ms`));
    }, this.target.requestTimeoutMs);
    upstream.on('close', () => clearTimeout(timer));
    stream.on('close', () => {
      clearTimeout(timer);
      if (!stream.writableFinished) upstream.destroy();
      finish();
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      finish();
      if (stream.destroyed || stream.headersSent) {
        if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      const neverReached = error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      if (neverReached) this.target.instanceFailed(instance.id);
      if (neverReached && mayRetry && ['GET', 'HEAD', 'OPTIONS'].includes(method)) {
        this.forwardStream(stream, headers, tried, false);
        return;
      }
      sendStreamError(stream, new InsituError('INSITU_APP_UNAVAILABLE', `the instance of ${this.target.name} failed: ${error.code ?? error.message}`));
    });
    if (stream.endAfterHeaders) upstream.end();
    else stream.pipe(upstream);
  }
}
