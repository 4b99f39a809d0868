import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { InsituError, hashSecret, type AppManifest } from '@insitu/core';
import type { ApiKeyRow, AuditInput, ServiceRow } from '@insitu/store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../app.js';
import type { ServerContext } from '../context.js';
import { toApiError } from '../errors.js';
import type { CallRecorder } from './call-recorder.js';
import type { ServiceDispatcher } from './dispatcher.js';
import { QuotaCounter } from './quota-counter.js';
import { RateLimiter } from './rate-limiter.js';
import { ServiceRouter } from './service-router.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/** Headers never forwarded in either direction: hop-by-hop, and the caller's credentials. */
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host', 'authorization', 'x-api-key', 'cookie', 'content-length']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length', 'set-cookie']);

interface Cached<T> {
  value: T | undefined;
  at: number;
}

/** Short-lived caches on the hot path; writes through this node invalidate them at once. */
class TtlCache<T> {
  private readonly entries = new Map<string, Cached<T>>();
  constructor(private readonly ttlMs: number, private readonly now: () => number) {}
  async get(id: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const hit = this.entries.get(id);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    const value = await load();
    if (this.entries.size > 100_000) this.entries.clear();
    this.entries.set(id, { value, at: this.now() });
    return value;
  }
  clear(): void {
    this.entries.clear();
  }
}

/** The parts of the gateway other modules talk to. */
export interface Gateway {
  router: ServiceRouter;
  /** Forget cached keys, services and grants (after a change through the API). */
  invalidate(): void;
}

function apiKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header.length > 0) return header.trim();
  const match = /^Bearer\s+(isu_key_\S{1,256})\s*$/i.exec(headers.authorization ?? '');
  return match?.[1];
}

/** Counts bytes through a stream and fails past `limit`. */
function counter(limit: number, code: 'INSITU_REQUEST_TOO_LARGE' | 'INSITU_RESPONSE_TOO_LARGE'): Transform & { bytes: number } {
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      stream.bytes += chunk.length;
      if (stream.bytes > limit) callback(new InsituError(code, `more than ${limit} bytes`, { details: { where: 'gateway' } }));
      else callback(null, chunk);
    },
  }) as Transform & { bytes: number };
  stream.bytes = 0;
  return stream;
}

function openApiOf(service: ServiceRow, manifest: AppManifest, version: string, baseUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const endpoint of manifest.endpoints ?? []) {
    paths[endpoint.path] ??= {};
    const entry = paths[endpoint.path];
    if (entry) entry[endpoint.method.toLowerCase()] = { summary: endpoint.description ?? '', responses: { default: { description: 'The application answer' } } };
  }
  return {
    openapi: '3.1.0',
    info: { title: service.name, version, description: service.description },
    servers: [{ url: `${baseUrl}/s/${service.name}` }],
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An Insitu API key (isu_key_…)' } } },
    security: [{ apiKey: [] }],
    paths,
  };
}

/**
 * The invocation path `/s/{service}/[v{major}/]…`: authenticate the API key, check the
 * grant, rate limit and daily quota, cap sizes, pick the newest running version, send the
 * call down the tunnel (the {@link ServiceDispatcher}) and stream the answer back with a
 * deadline. Every call with a known key and service is metered and audited (batched).
 */
export function registerGateway(app: App, ctx: ServerContext, options: { dispatcher: () => ServiceDispatcher; recorder: CallRecorder; baseUrl: () => string }): Gateway {
  const { store, now } = ctx;
  const keys = new TtlCache<ApiKeyRow>(2000, now);
  const services = new TtlCache<ServiceRow>(2000, now);
  const grants = new TtlCache<boolean>(2000, now);
  const limiter = new RateLimiter(now);
  const quotas = new QuotaCounter((keyId, serviceId, since) => store.usage.callsSince(keyId, serviceId, since), now);
  const router = new ServiceRouter(store, { ttlMs: 1000, staleAfterMs: 60_000, now });

  async function handle(request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const started = performance.now();
    const ts = now();
    const wildcard = (request.params as { '*': string })['*'];
    const [name = '', ...rest] = wildcard.split('/');
    let major: number | undefined;
    if (rest[0] !== undefined && /^v\d{1,6}$/.test(rest[0])) major = Number(rest.shift()?.slice(1));
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    const path = `/${rest.join('/')}`;

    const service = /^[a-z0-9][a-z0-9-]{0,62}$/.test(name) ? await services.get(name, () => store.services.getByName(name)) : undefined;
    if (!service) throw new InsituError('INSITU_SERVICE_NOT_FOUND', `no service ${name}`, { details: { where: 'gateway' } });
    const routes = await router.routes(service.app_id);
    const chosen = ServiceRouter.pick(routes, major);

    if (path === '/openapi.json' && request.method === 'GET') {
      if (!chosen) throw new InsituError('INSITU_SERVICE_UNAVAILABLE', `${name} has no running version${major !== undefined ? ` ${major}.x` : ''}`, { details: { where: 'gateway' } });
      if (service.access === 'public') return reply.send(openApiOf(service, chosen.manifest, chosen.version, options.baseUrl()));
    }

    const secret = apiKeyOf(request.headers);
    const key = secret?.startsWith('isu_key_') ? await keys.get(hashSecret(secret), () => store.services.findLiveKey(hashSecret(secret))) : undefined;
    if (!key || (key.expires_at !== null && Number(key.expires_at) <= ts)) {
      void reply.header('www-authenticate', 'Bearer');
      throw new InsituError('INSITU_KEY_INVALID', secret ? 'the API key is unknown, expired or revoked' : 'send an API key: Authorization: Bearer isu_key_…', { details: { where: 'gateway' } });
    }

    let status = 0;
    let errorCode = '';
    let bytesIn = 0;
    let bytesOut = 0;
    let version = chosen?.version ?? '';
    let providerId = '';
    let agentId = '';
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const call: AuditInput = {
        ts,
        requestId: request.id,
        keyId: key.id,
        callerOrgId: key.org_id,
        serviceId: service.id,
        serviceOrgId: service.org_id,
        serviceName: service.name,
        version,
        providerId,
        agentId,
        method: request.method,
        status,
        errorCode,
        bytesIn,
        bytesOut,
        durationMs: performance.now() - started,
      };
      options.recorder.record(call);
    };

    try {
      const scoped = (JSON.parse(key.services) as string[]).includes(service.id);
      const allowed =
        scoped &&
        (service.access === 'public' ||
          key.org_id === service.org_id ||
          (await grants.get(`${service.id}:${key.org_id}`, async () => (await store.services.isGranted(service.id, key.org_id)) || undefined)) === true);
      if (!allowed) {
        throw new InsituError('INSITU_KEY_FORBIDDEN', scoped ? `the owner of ${name} has not granted your organisation access` : `this key is not scoped to ${name}`, { details: { where: 'gateway' } });
      }
      if (path === '/openapi.json' && request.method === 'GET' && chosen) {
        status = 200;
        record();
        return reply.send(openApiOf(service, chosen.manifest, chosen.version, options.baseUrl()));
      }
      const rate = limiter.take(`${key.id}:${service.id}`, service.rate_per_second, service.burst);
      if (!rate.ok) {
        throw new InsituError('INSITU_RATE_LIMITED', `rate limit of ${service.rate_per_second}/s (burst ${service.burst}) exceeded`, {
          headers: { 'retry-after': String(rate.retryAfterSeconds) },
          details: { where: 'gateway' },
        });
      }
      const quota = await quotas.take(key.id, service.id, service.daily_quota);
      if (!quota.ok) {
        throw new InsituError('INSITU_QUOTA_EXCEEDED', `daily quota of ${service.daily_quota} calls used up`, {
          headers: { 'retry-after': String(quota.retryAfterSeconds) },
          details: { where: 'gateway' },
        });
      }
      const declared = Number(request.headers['content-length'] ?? 0);
      if (declared > service.max_request_bytes) {
        throw new InsituError('INSITU_REQUEST_TOO_LARGE', `${name} accepts at most ${service.max_request_bytes} bytes per call`, { details: { where: 'gateway' } });
      }
      if (!chosen) {
        throw new InsituError('INSITU_SERVICE_UNAVAILABLE', `${name} has no running version${major !== undefined ? ` ${major}.x` : ''}`, { details: { where: 'gateway' } });
      }
      version = chosen.version;
      const headers: Record<string, string> = {};
      for (const [header, value] of Object.entries(request.headers)) {
        if (value === undefined || DROP_REQUEST.has(header) || header.startsWith('insitu-')) continue;
        headers[header] = Array.isArray(value) ? value.join(', ') : value;
      }
      headers['insitu-request-id'] = request.id;
      headers['insitu-caller-org'] = key.org_id;
      const inbound = request.body as Readable | undefined;
      const requestCounter = counter(service.max_request_bytes, 'INSITU_REQUEST_TOO_LARGE');
      const body = inbound && typeof (inbound).pipe === 'function' ? inbound.pipe(requestCounter) : undefined;
      const abort = new AbortController();
      request.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      const deadline = Date.now() + service.timeout_ms;
      const timer = setTimeout(() => abort.abort(), service.timeout_ms);
      timer.unref();
      try {
        const result = await options.dispatcher().dispatch({
          targets: chosen.targets,
          method: request.method,
          path: `${path}${query}`,
          headers,
          ...(body ? { body } : {}),
          idempotent: IDEMPOTENT.has(request.method) || body === undefined,
          deadline,
          requestId: request.id,
          signal: abort.signal,
        });
        providerId = result.providerId;
        agentId = result.agentId;
        bytesIn = requestCounter.bytes;
        status = result.status;
        for (const [header, value] of Object.entries(result.headers)) {
          if (!DROP_RESPONSE.has(header.toLowerCase()) && !header.startsWith(':')) void reply.header(header, value);
        }
        void reply.header('insitu-service-version', chosen.version);
        const responseCounter = counter(service.max_response_bytes, 'INSITU_RESPONSE_TOO_LARGE');
        responseCounter.on('error', (error: Error) => {
          errorCode = (error as InsituError).code ?? 'INSITU_INTERNAL';
        });
        result.body.on('error', () => {
          errorCode ||= 'INSITU_RESPONSE_ABORTED';
        });
        // Recorded when the answer is complete ('finish'), or when the connection ends without it ('close').
        reply.raw.on('finish', () => {
          clearTimeout(timer);
          bytesOut = responseCounter.bytes;
          record();
        });
        reply.raw.on('close', () => {
          clearTimeout(timer);
          bytesOut = responseCounter.bytes;
          if (!reply.raw.writableFinished && !errorCode) errorCode = abort.signal.aborted ? 'INSITU_GATEWAY_TIMEOUT' : 'INSITU_CALLER_GONE';
          record();
        });
        return reply.status(result.status).send(result.body.pipe(responseCounter));
      } catch (error) {
        clearTimeout(timer);
        bytesIn = requestCounter.bytes;
        if (abort.signal.aborted && !(error instanceof InsituError)) {
          throw new InsituError('INSITU_GATEWAY_TIMEOUT', `${name} did not answer within ${service.timeout_ms} ms`, { details: { where: 'gateway' } });
        }
        throw error;
      }
    } catch (error) {
      const apiError = toApiError(error);
      status = apiError.status;
      errorCode = apiError.code;
      record();
      throw apiError;
    }
  }

  app.register(async (plugin) => {
    const scoped = plugin as unknown as App;
    // Bodies go to the application untouched, as a stream.
    scoped.removeAllContentTypeParsers();
    scoped.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scoped.route({
      method: [...METHODS],
      url: '/s/*',
      exposeHeadRoute: false,
      config: { auth: 'public' },
      schema: { hide: true },
      handler: handle,
    });
  });

  return {
    router,
    invalidate() {
      keys.clear();
      services.clear();
      grants.clear();
      router.invalidate();
    },
  };
}
