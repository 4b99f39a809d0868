import { request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type Http2ServerRequest,
  type Http2ServerResponse,
  type IncomingHttpHeaders as Http2Headers,
  type ServerHttp2Stream,
} from 'node:http2';
import { errorJson, InsituError } from '@insitu/core';
import type { ReadyInstance } from './deployment-runner.js';
import { appUnavailable } from '../errors.js';

/** A request as HTTP/1.1 or HTTP/2 (compatibility API) servers hand it over: the tunnel gives the latter. */
export type InboundRequest = IncomingMessage | Http2ServerRequest;
export type OutboundResponse = ServerResponse | Http2ServerResponse;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-authenticate',
  'http2-settings',
  'host',
]);

/** End-to-end headers only: no hop-by-hop headers and no HTTP/2 pseudo-headers (`:path`…), which HTTP/1.1 cannot carry. */
function headersFrom(raw: IncomingHttpHeaders, authority?: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(raw))
    if (value !== undefined && !HOP_BY_HOP.has(key) && !key.startsWith(':')) out[key] = value;
  if (authority !== undefined) out.host = authority;
  return out;
}

/** The Insitu error body of an answer. */
function errorAnswer(error: InsituError): { headers: Record<string, string | number>; body: string } {
  const body = errorJson(error);
  return {
    headers: {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(error.headers ?? {}),
    },
    body,
  };
}

/**
 * Break off an HTTP/2 answer: RST_STREAM at once. Not `close(code)`: while the stream's
 * writable side is open it first ends it cleanly (END_STREAM), and the platform took the
 * truncated answer of an instance that died mid-answer as complete.
 */
function breakOff(stream: ServerHttp2Stream): void {
  if (stream.destroyed) return;
  stream.on('error', () => undefined);
  stream.destroy(new Error('the answer broke off'));
}

/** Break off an answer that cannot be completed. */
function abort(res: OutboundResponse): void {
  if ('stream' in res) breakOff(res.stream);
  else res.destroy();
}

/** Answer with an Insitu error body (or break the answer off when headers went already). */
export function sendError(res: OutboundResponse, error: InsituError): void {
  if (res.headersSent) {
    abort(res);
    return;
  }
  const { headers, body } = errorAnswer(error);
  res.writeHead(error.status, headers);
  res.end(body);
}

/** Answer an HTTP/2 stream with an Insitu error body (or break it off when headers went already). */
export function sendStreamError(stream: ServerHttp2Stream, error: InsituError): void {
  if (stream.destroyed) return;
  if (stream.headersSent) {
    breakOff(stream);
    return;
  }
  const { headers, body } = errorAnswer(error);
  stream.respond({ ':status': error.status, ...headers });
  stream.end(body);
}

/**
 * The caller's side of one forwarded request, whichever API it came through: the
 * compatibility request/response pair or a raw HTTP/2 stream.
 */
interface Downstream {
  method: string;
  path: string;
  /** End-to-end headers for the instance. */
  headers: Record<string, string | string[]>;
  /** The caller went away or the answer was broken off. */
  gone(): boolean;
  headersSent(): boolean;
  /** The whole answer was written. */
  finished(): boolean;
  respond(status: number, headers: Record<string, string | string[]>): void;
  /** Where the instance's answer body goes. */
  body: NodeJS.WritableStream;
  fail(error: InsituError): void;
  abort(): void;
  onClose(listener: () => void): void;
  /** Send the request body (or its end) to the instance. */
  sendBody(upstream: NodeJS.WritableStream): void;
}

function fromCompat(req: InboundRequest, res: OutboundResponse): Downstream {
  const authority = req.headers[':authority'] ?? req.headers.host;
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers: headersFrom(req.headers, typeof authority === 'string' ? authority : undefined),
    gone: () => 'destroyed' in res && res.destroyed,
    headersSent: () => res.headersSent,
    finished: () => res.writableFinished,
    respond: (status, headers) => void res.writeHead(status, headers),
    body: res as NodeJS.WritableStream,
    fail: (error) => sendError(res, error),
    abort: () => abort(res),
    onClose: (listener) => void res.on('close', listener),
    sendBody: (upstream) => void (req as NodeJS.ReadableStream).pipe(upstream),
  };
}

function fromStream(stream: ServerHttp2Stream, headers: Http2Headers): Downstream {
  const authority = headers[':authority'];
  return {
    method: String(headers[':method'] ?? 'GET'),
    path: String(headers[':path'] ?? '/'),
    headers: headersFrom(headers, typeof authority === 'string' ? authority : undefined),
    gone: () => stream.destroyed,
    headersSent: () => stream.headersSent,
    finished: () => stream.writableFinished,
    respond: (status, answerHeaders) => stream.respond({ ...answerHeaders, ':status': status }),
    body: stream,
    fail: (error) => sendStreamError(stream, error),
    abort: () => breakOff(stream),
    onClose: (listener) => void stream.on('close', listener),
    sendBody: (upstream) => {
      if (stream.endAfterHeaders) upstream.end();
      else stream.pipe(upstream);
    },
  };
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
    this.forward(fromCompat(req, res), new Set(), true);
  }

  /**
   * The same for a raw HTTP/2 stream (the tunnel's fast path: no compatibility objects
   * per request).
   */
  handleStream(stream: ServerHttp2Stream, headers: Http2Headers): void {
    stream.on('error', () => undefined);
    this.forward(fromStream(stream, headers), new Set(), true);
  }

  private forward(down: Downstream, tried: Set<string>, mayRetry: boolean): void {
    const instance = this.pick(tried);
    if (!instance) {
      down.fail(
        appUnavailable(`no instance of ${this.target.name} is ready on this agent`, {
          headers: { 'retry-after': '1' },
        }),
      );
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
    const upstream = request(
      { socketPath: instance.socketPath, method: down.method, path: down.path, headers: down.headers },
      (answer) => {
        if (down.gone()) {
          answer.destroy();
          finish();
          return;
        }
        down.respond(answer.statusCode ?? 502, headersFrom(answer.headers));
        // pipe(), not pipeline(): pipeline costs an AbortController per request.
        answer.pipe(down.body);
        answer.on('end', finish);
        answer.on('error', () => {
          finish();
          down.abort();
        });
      },
    );
    const timer = setTimeout(() => {
      upstream.destroy();
      finish();
      down.fail(
        new InsituError(
          'INSITU_APP_TIMEOUT',
          `${this.target.name} did not answer within ${this.target.requestTimeoutMs} ms`,
        ),
      );
    }, this.target.requestTimeoutMs);
    upstream.on('close', () => clearTimeout(timer));
    down.onClose(() => {
      clearTimeout(timer);
      if (!down.finished()) upstream.destroy();
      finish();
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      finish();
      if (down.gone() || down.headersSent()) {
        down.abort();
        return;
      }
      const neverReached = error.code === 'ECONNREFUSED' || error.code === 'ENOENT';
      if (neverReached) this.target.instanceFailed(instance.id);
      // Only methods without a body: the body of the first attempt has been consumed.
      if (neverReached && mayRetry && ['GET', 'HEAD', 'OPTIONS'].includes(down.method)) {
        this.forward(down, tried, false);
        return;
      }
      down.fail(appUnavailable(`the instance of ${this.target.name} failed: ${error.code ?? error.message}`));
    });
    down.sendBody(upstream);
  }
}
