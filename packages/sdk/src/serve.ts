import { unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** What a handler receives. */
export interface AppRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Values of `{name}` segments of the matched route. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The body as text (read on first call). */
  text(): Promise<string>;
  /** The body parsed as JSON. */
  json(): Promise<unknown>;
  raw: IncomingMessage;
}

/** A handler's answer: any JSON value (sent with status 200), or an explicit response. */
export interface AppResponse {
  status?: number;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is; anything else as JSON. */
  body?: unknown;
}

export type Handler = (request: AppRequest) => unknown;

/** Routes: `'GET /totals/{store}'` → handler. `GET /healthz` answers 200 unless you define it. */
export type Handlers = Record<string, Handler>;

const RESPONSE = Symbol.for('insitu.sdk.response');

/** A value handlers may return to choose the status and headers. */
export function respond(
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): AppResponse & { [RESPONSE]: true } {
  return { status, body, headers, [RESPONSE]: true };
}

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

function compile(handlers: Handlers): Route[] {
  return Object.entries(handlers).map(([key, handler]) => {
    const match = /^([A-Z]+)\s+(\/\S*)$/.exec(key.trim());
    if (!match) throw new Error(`route "${key}" must look like "GET /path/{param}"`);
    return { method: match[1] as string, parts: (match[2] as string).split('/').slice(1), handler };
  });
}

/** A path parameter decoded, or undefined when its percent-escapes are broken or not UTF-8 (never a thrown URIError). */
function decodeParam(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

function matchRoute(
  routes: Route[],
  method: string,
  path: string,
): { route: Route; params: Record<string, string> } | 'method' | 'bad-path' | undefined {
  const parts = path.split('/').slice(1);
  let wrongMethod = false;
  for (const route of routes) {
    if (route.parts.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let badPath = false;
    const ok = route.parts.every((part, i) => {
      const actual = parts[i] as string;
      if (part.startsWith('{') && part.endsWith('}')) {
        const decoded = decodeParam(actual);
        if (decoded === undefined) badPath = true;
        params[part.slice(1, -1)] = decoded ?? '';
        return actual !== '' && decoded !== undefined;
      }
      return part === actual;
    });
    if (badPath) return 'bad-path';
    if (!ok) continue;
    if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params };
    wrongMethod = true;
  }
  return wrongMethod ? 'method' : undefined;
}

/**
 * Every answer carries its content-length: `writeHead` without one makes Node send the body
 * chunked, and the closing chunk costs each proxy on the way (the gateway) one more socket
 * write per call (issue 12). A handler's own headers still win.
 */
function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    res.writeHead(status, {
      'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(body);
    return;
  }
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * Serve HTTP handlers on the listening socket the agent hands over as descriptor
 * `INSITU_LISTEN_FD` (or on the Unix socket path `options.socketPath`, or `INSITU_LISTEN`,
 * for running outside the agent). A handler returns a JSON value, or `respond(status, body)`;
 * a thrown error answers 500 with its message logged to stderr, not sent.
 *
 * @example
 * serve({ 'GET /totals/{store}': async ({ params }) => ({ store: params.store, total: await total(params.store) }) });
 */
export function serve(handlers: Handlers, options: { socketPath?: string } = {}): Promise<Server> {
  const fdText = options.socketPath === undefined ? process.env.INSITU_LISTEN_FD : undefined;
  const socketPath = options.socketPath ?? process.env.INSITU_LISTEN;
  if (!fdText && !socketPath)
    throw new Error(
      'no socket to serve on: neither INSITU_LISTEN_FD nor INSITU_LISTEN is set (is this running under the Insitu agent?)',
    );
  const fd = fdText ? Number(fdText) : undefined;
  if (fd !== undefined && !(Number.isInteger(fd) && fd >= 0))
    throw new Error(`INSITU_LISTEN_FD is not a descriptor: ${fdText}`);
  const routes = compile(handlers);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://app');
    const method = req.method ?? 'GET';
    const found = matchRoute(routes, method, url.pathname);
    if (found === 'bad-path')
      return send(res, 400, {
        error: { code: 'BAD_PATH', message: 'a path parameter is not valid percent-encoded UTF-8' },
      });
    if (found === undefined || found === 'method') {
      if (found === undefined && url.pathname === '/healthz') return send(res, 200, { ok: true });
      return send(res, found === 'method' ? 405 : 404, {
        error: { code: found === 'method' ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', message: `${method} ${url.pathname}` },
      });
    }
    let bodyText: Promise<string> | undefined;
    const text = () => {
      bodyText ??= (async () => {
        req.setEncoding('utf8');
        let out = '';
        for await (const chunk of req) out += chunk as string;
        return out;
      })();
      return bodyText;
    };
    const request: AppRequest = {
      method,
      path: url.pathname,
      params: found.params,
      query: url.searchParams,
      headers: req.headers,
      text,
      json: async () => JSON.parse(await text()) as unknown,
      raw: req,
    };
    Promise.resolve()
      .then(() => found.route.handler(request))
      .then(
        (result) => {
          if (res.headersSent) return;
          if (typeof result === 'object' && result !== null && RESPONSE in result) {
            const r = result as AppResponse;
            send(res, r.status ?? 200, r.body, r.headers);
          } else send(res, 200, result);
        },
        (error: unknown) => {
          process.stderr.write(
            `insitu app: ${method} ${url.pathname} failed: ${(error as Error)?.stack ?? String(error)}\n`,
          );
          if (!res.headersSent)
            send(res, 500, { error: { code: 'APP_ERROR', message: 'the application failed to answer' } });
          else res.destroy();
        },
      );
  });
  if (fd === undefined && socketPath) {
    try {
      unlinkSync(socketPath);
    } catch {
      // no stale socket
    }
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The agent binds the socket itself and passes it already listening: the app never
    // chooses where the agent connects.
    server.listen(fd !== undefined ? { fd } : { path: socketPath }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
