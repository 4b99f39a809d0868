import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  answerClientError,
  assertValid,
  errorBody,
  InsituError,
  type Logger,
  newId,
  safeEqual,
  toInsituError,
} from '@insitu/core';
import Type from 'typebox';
import type { DbManager } from './manager.js';

const MAX_BODY = 64 * 1024;

const SwitchoverBodySchema = Type.Object(
  { to: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$' }) },
  { additionalProperties: false },
);
const AckBodySchema = Type.Object(
  { by: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  { additionalProperties: false },
);

/** Options of {@link startAdminServer}. */
export interface AdminServerOptions {
  manager: DbManager;
  /** Shared bearer token; every endpoint but `/healthz` requires it. */
  token: string;
  host: string;
  port: number;
  logger: Logger;
}

/** A listening admin API. */
export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'insitu-request-id': requestId,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new InsituError('INSITU_BODY_TOO_LARGE', `request body larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  if (!type.startsWith('application/json'))
    throw new InsituError('INSITU_UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InsituError('INSITU_BAD_JSON', 'the request body is not valid JSON');
  }
}

/**
 * The manager's admin API, which `insitu db status|switchover|ack` talks to:
 * `GET /healthz`, and with `Authorization: Bearer <admin token>`: `GET /v1/status`,
 * `GET /v1/events?limit=N`, `POST /v1/switchover {"to": MEMBER}`, `POST /v1/ack {"by"?}`,
 * `GET /metrics`. A manager that is not the leader answers commands with
 * `INSITU_DBMANAGER_NOT_LEADER` and the leader's URL in the details.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { manager, token, logger } = options;
  const expected = `Bearer ${token}`;
  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    if (route === 'GET /healthz') {
      send(res, 200, { ok: true, manager: manager.id, leader: manager.isLeader() }, requestId);
      return;
    }
    const auth = req.headers.authorization ?? '';
    if (!safeEqual(auth, expected))
      throw new InsituError(
        'INSITU_UNAUTHENTICATED',
        'send the dbmanager admin token as "Authorization: Bearer TOKEN"',
      );
    switch (route) {
      case 'GET /v1/status':
        send(res, 200, manager.status(), requestId);
        return;
      case 'GET /v1/events': {
        const limit = Number(url.searchParams.get('limit') ?? '100');
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
          throw new InsituError('INSITU_VALIDATION', 'limit must be an integer from 1 to 10000');
        send(res, 200, { items: manager.events(limit) }, requestId);
        return;
      }
      case 'POST /v1/switchover': {
        const body = assertValid(SwitchoverBodySchema, await readBody(req), { what: 'switchover request' });
        logger.info({ to: body.to, requestId }, 'switchover requested');
        send(res, 200, await manager.switchover(body.to), requestId);
        return;
      }
      case 'POST /v1/ack': {
        const body = assertValid(AckBodySchema, await readBody(req), { what: 'ack request' });
        send(res, 200, await manager.ack(body.by), requestId);
        return;
      }
      case 'GET /metrics': {
        const text = await manager.registry.metrics();
        res.writeHead(200, { 'content-type': manager.registry.contentType, 'insitu-request-id': requestId });
        res.end(text);
        return;
      }
      default:
        throw new InsituError('INSITU_ROUTE_NOT_FOUND', `no endpoint ${route}`);
    }
  };
  const server: Server = createServer((req, res) => {
    const requestId = newId('req');
    handle(req, res, requestId).catch((error: unknown) => {
      const failure = toInsituError(error);
      if (
        failure.isUserError ||
        failure.code === 'INSITU_DBMANAGER_NOT_LEADER' ||
        failure.code === 'INSITU_DBMANAGER_SWITCHOVER_FAILED'
      ) {
        logger.info({ code: failure.code, requestId, msg: failure.message }, 'admin request refused');
      } else {
        logger.error({ err: error, requestId }, 'admin request failed');
      }
      const internal = failure.code === 'INSITU_INTERNAL';
      send(
        res,
        failure.status,
        errorBody(internal ? { code: failure.code, message: 'internal error' } : failure, requestId),
        requestId,
      );
    });
  });
  server.on('clientError', answerClientError);
  server.headersTimeout = 10_000;
  server.requestTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
