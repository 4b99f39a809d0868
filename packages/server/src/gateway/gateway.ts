import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  InsituError,
  checkPathEncoding,
  echo,
  hashSecret,
  isId,
  newId,
  type Counter,
  type Histogram,
} from '@insitu/core';
import { Counter as PromCounter, Histogram as PromHistogram } from '@insitu/core';
import type { ApiKeyRow, AuditInput, ServiceRow } from '@insitu/store';
import type { ServerContext } from '../context.js';
import { toApiError, notFound } from '../errors.js';
import type { CallRecorder } from './call-recorder.js';
import type { ServiceDispatcher } from './dispatcher.js';
import { ClusterLimits } from './cluster-limits.js';
import { QuotaCounter } from './quota-counter.js';
import { RateLimiter, type RateDecision } from './rate-limiter.js';
import { ServiceRouter } from './service-router.js';
import { serviceOpenApi } from './service-openapi.js';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
/**
 * Headers never forwarded in either direction: hop-by-hop, and the caller's credentials.
 * A request's `content-length` is forwarded (set below) when the caller sent one: the
 * body is passed through unchanged and capped before, and applications (the Python SDK
 * among them) may read the body by it.
 */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'authorization',
  'x-api-key',
  'cookie',
  'content-length',
]);
/**
 * An answer's `content-length` is kept: its body is passed through unchanged (or cut off,
 * the connection destroyed, past the service's cap), and without it every answer went out
 * chunked, one more write to the caller's socket per call for the closing chunk (issue 12).
 */
const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'set-cookie',
]);
const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAJOR = /^v\d{1,6}$/;

interface Cached<T> {
  value: T | undefined;
  at: number;
}

/** Short-lived caches on the hot path; a write through any node of the cluster clears them at once. */
class TtlCache<T> {
  private readonly entries = new Map<string, Cached<T>>();
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}
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

/** The gateway: a raw Node request handler for `/s/…`, and what other modules talk to. */
export interface Gateway {
  /** Serve one call (the server hands every `/s/` request here, before the REST framework). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  router: ServiceRouter;
  /** Forget cached keys, services and grants after a change through the API, here and (through `onInvalidate`) on the other nodes. */
  invalidate(): void;
  /** Forget them on this node only (another node announced a change). */
  forgetCaches(): void;
  /** Rate and quota counts shared with the other nodes of a cluster (started by the server once coord is there). */
  limits: ClusterLimits;
}

/**
 * The `RateLimit-*` fields (IETF draft-ietf-httpapi-ratelimit-headers) of a decision on a
 * token bucket of `burst` calls refilled at `rate` per second: the limit is the bucket's
 * size, the remaining calls what it holds now, the reset the seconds until it is full.
 */
function rateLimitHeaders(decision: RateDecision, rate: number, burst: number): Record<string, string> {
  return {
    'ratelimit-limit': String(burst),
    'ratelimit-remaining': String(Math.max(0, decision.remaining)),
    'ratelimit-reset': String(Math.max(0, decision.resetSeconds)),
    'ratelimit-policy': `${burst};w=${Math.max(1, Math.ceil(burst / rate))};burst=${burst};rate=${rate}`,
  };
}

function apiKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const header = headers['x-api-key'];
  if (typeof header === 'string' && header.length > 0) return header.trim();
  const match = /^Bearer\s+(isu_key_\S{1,256})\s*$/i.exec(headers.authorization ?? '');
  return match?.[1];
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * The invocation path `/s/{service}/[v{major}/]…`: authenticate the API key, check the
 * grant, rate limit and daily quota, cap sizes, pick the newest running version, send the
 * call down the tunnel (the {@link ServiceDispatcher}) and stream the answer back with a
 * deadline. Every call with a known key and service is metered and audited (batched).
 *
 * It is a plain Node handler that the server calls before the REST framework: the hot
 * path pays for no routing, hooks or reply objects it does not use (measured in
 * bench/invoke). It keeps the API's error shape and request ids.
 */
export function createGateway(
  ctx: ServerContext,
  options: {
    dispatcher: () => ServiceDispatcher;
    recorder: CallRecorder;
    baseUrl: () => string;
    onInvalidate?: () => void;
  },
): Gateway {
  const { store, now, logger } = ctx;
  const keys = new TtlCache<ApiKeyRow>(2000, now);
  const services = new TtlCache<ServiceRow>(2000, now);
  const grants = new TtlCache<boolean>(2000, now);
  // A key's services, parsed once per cached row (the row is reloaded, and parsed again, after the cache's TTL).
  const scopes = new WeakMap<ApiKeyRow, Set<string>>();
  const scopesOf = (key: ApiKeyRow): Set<string> => {
    let set = scopes.get(key);
    if (!set) {
      set = new Set(JSON.parse(key.services) as string[]);
      scopes.set(key, set);
    }
    return set;
  };
  const limiter = new RateLimiter(now);
  const quotas = new QuotaCounter((keyId, serviceId, since) => store.usage.callsSince(keyId, serviceId, since), now);
  const limits = new ClusterLimits(limiter, quotas, { nodeId: ctx.node.id, logger, now });
  const router = new ServiceRouter(store, { ttlMs: 1000, staleAfterMs: 60_000, now });
  const calls: Counter<'status'> = new PromCounter({
    name: 'insitu_gateway_calls_total',
    help: 'Calls through the gateway, by status class',
    labelNames: ['status'] as const,
    registers: [ctx.registry],
  });
  const duration: Histogram<'status'> = new PromHistogram({
    name: 'insitu_gateway_call_duration_seconds',
    help: 'Time from a call arriving to its answer completing, by status class',
    labelNames: ['status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [ctx.registry],
  });

  // The metric children of each status class, looked up once instead of by labels on every call.
  const byStatusClass = new Map<number, { calls: { inc(): void }; duration: { observe(value: number): void } }>();
  const metricsOf = (statusCode: number) => {
    const statusClass = Math.floor(statusCode / 100);
    let metrics = byStatusClass.get(statusClass);
    if (!metrics) {
      const status = `${statusClass}xx`;
      metrics = { calls: calls.labels({ status }), duration: duration.labels({ status }) };
      byStatusClass.set(statusClass, metrics);
    }
    return metrics;
  };

  async function serve(req: IncomingMessage, res: ServerResponse, requestId: string, started: number): Promise<void> {
    const ts = now();
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const pathname = queryAt >= 0 ? url.slice(0, queryAt) : url;
    const query = queryAt >= 0 ? url.slice(queryAt) : '';
    // The application gets the path as sent; one that no edge could decode is refused here, as by the REST API.
    checkPathEncoding(pathname);
    // `/s/{name}/[v{major}/]{rest}` cut with indexOf, without arrays (every call).
    const afterPrefix = pathname.slice('/s/'.length);
    const nameEnd = afterPrefix.indexOf('/');
    const name = nameEnd < 0 ? afterPrefix : afterPrefix.slice(0, nameEnd);
    let rest = nameEnd < 0 ? '' : afterPrefix.slice(nameEnd + 1);
    let major: number | undefined;
    const segmentEnd = rest.indexOf('/');
    const first = segmentEnd < 0 ? rest : rest.slice(0, segmentEnd);
    if (nameEnd >= 0 && MAJOR.test(first)) {
      major = Number(first.slice(1));
      rest = segmentEnd < 0 ? '' : rest.slice(segmentEnd + 1);
    }
    const path = `/${rest}`;

    const service = SERVICE_NAME.test(name)
      ? await services.get(name, () => store.services.getByName(name))
      : undefined;
    if (!service) throw notFound('service', echo(name), { details: { where: 'gateway' } });
    const chosen = ServiceRouter.pick(await router.routes(service.app_id), major);
    const unavailable = () =>
      new InsituError(
        'INSITU_SERVICE_UNAVAILABLE',
        `${name} has no running version${major !== undefined ? ` ${major}.x` : ''}`,
        { details: { where: 'gateway' } },
      );
    const wantsDoc = path === '/openapi.json' && req.method === 'GET';
    if (wantsDoc && service.access === 'public') {
      if (!chosen) throw unavailable();
      sendJson(res, 200, serviceOpenApi(service, chosen.manifest, chosen.version, options.baseUrl()));
      return;
    }

    const secret = apiKeyOf(req.headers);
    const key = secret?.startsWith('isu_key_')
      ? await keys.get(hashSecret(secret), () => store.services.findLiveKey(hashSecret(secret)))
      : undefined;
    if (!key || (key.expires_at !== null && Number(key.expires_at) <= ts)) {
      throw new InsituError(
        'INSITU_KEY_INVALID',
        secret ? 'the API key is unknown, expired or revoked' : 'send an API key: Authorization: Bearer isu_key_…',
        {
          headers: { 'www-authenticate': 'Bearer' },
          details: { where: 'gateway' },
        },
      );
    }

    const call = {
      status: 0,
      errorCode: '',
      bytesIn: 0,
      bytesOut: 0,
      version: chosen?.version ?? '',
      providerId: '',
      agentId: '',
      recorded: false,
    };
    const record = () => {
      if (call.recorded) return;
      call.recorded = true;
      const entry: AuditInput = {
        ts,
        requestId,
        keyId: key.id,
        callerOrgId: key.org_id,
        serviceId: service.id,
        serviceOrgId: service.org_id,
        serviceName: service.name,
        version: call.version,
        providerId: call.providerId,
        agentId: call.agentId,
        method: req.method ?? 'GET',
        status: call.status,
        errorCode: call.errorCode,
        bytesIn: call.bytesIn,
        bytesOut: call.bytesOut,
        durationMs: performance.now() - started,
      };
      options.recorder.record(entry);
    };

    try {
      const scoped = scopesOf(key).has(service.id);
      const visible =
        service.access === 'public' ||
        key.org_id === service.org_id ||
        (await grants.get(
          `${service.id}:${key.org_id}`,
          async () => (await store.services.isGranted(service.id, key.org_id)) || undefined,
        )) === true;
      if (!scoped && !visible) {
        // Another organisation's restricted service, never granted to the key's: answer
        // exactly as for a name nobody uses, so no key can probe which names exist.
        throw notFound('service', echo(name), {
          details: { where: 'gateway' },
        });
      }
      if (!scoped || !visible) {
        throw new InsituError(
          'INSITU_KEY_FORBIDDEN',
          scoped
            ? `the owner of ${name} has not granted your organisation access`
            : `this key is not scoped to ${name}`,
          { details: { where: 'gateway' } },
        );
      }
      if (wantsDoc) {
        if (!chosen) throw unavailable();
        call.status = 200;
        record();
        sendJson(res, 200, serviceOpenApi(service, chosen.manifest, chosen.version, options.baseUrl()));
        return;
      }
      const rate = limiter.take(`${key.id}:${service.id}`, service.rate_per_second, service.burst);
      const limitHeaders = rateLimitHeaders(rate, service.rate_per_second, service.burst);
      if (!rate.ok) {
        throw new InsituError(
          'INSITU_RATE_LIMITED',
          `rate limit of ${service.rate_per_second}/s (burst ${service.burst}) exceeded`,
          {
            headers: { ...limitHeaders, 'retry-after': String(rate.retryAfterSeconds) },
            details: { where: 'gateway' },
          },
        );
      }
      const quota = await quotas.take(key.id, service.id, service.daily_quota);
      if (!quota.ok) {
        throw new InsituError('INSITU_QUOTA_EXCEEDED', `daily quota of ${service.daily_quota} calls used up`, {
          headers: { ...limitHeaders, 'retry-after': String(quota.retryAfterSeconds) },
          details: { where: 'gateway' },
        });
      }
      limits.admitted(key.id, service.id, service.rate_per_second, service.burst);
      for (const header in limitHeaders) res.setHeader(header, limitHeaders[header] as string);
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > service.max_request_bytes) {
        throw new InsituError(
          'INSITU_BODY_TOO_LARGE',
          `${name} accepts at most ${service.max_request_bytes} bytes per call`,
          { details: { where: 'gateway' } },
        );
      }
      if (!chosen) throw unavailable();
      call.version = chosen.version;
      const headers: Record<string, string> = {};
      for (const header in req.headers) {
        const value = req.headers[header];
        if (value === undefined || DROP_REQUEST.has(header) || header.startsWith('insitu-')) continue;
        headers[header] = Array.isArray(value) ? value.join(', ') : value;
      }
      headers['insitu-request-id'] = requestId;
      headers['insitu-caller-org'] = key.org_id;
      const chunked = req.headers['transfer-encoding'] !== undefined;
      // Node refuses a request with both framings, so a content-length here is the body's exact size.
      if (!chunked && req.headers['content-length'] !== undefined) headers['content-length'] = String(declared);
      // The request body streams through as it is, counted and capped.
      const hasBody = declared > 0 || chunked;
      const abort = new AbortController();
      // A chunked body found too large on the way: the call upstream is abandoned and the
      // caller told 413 (its remaining bytes are read and dropped, then the connection closed).
      let tooLarge = false;
      const refuseTooLarge = () =>
        new InsituError(
          'INSITU_BODY_TOO_LARGE',
          `${name} accepts at most ${service.max_request_bytes} bytes per call`,
          {
            headers: { connection: 'close' },
            details: { where: 'gateway' },
          },
        );
      if (hasBody) {
        req.on('data', (chunk: Buffer) => {
          // What is drained after the refusal is not counted (the connection closes after the 413).
          if (tooLarge) return;
          call.bytesIn += chunk.length;
          if (call.bytesIn > service.max_request_bytes) {
            tooLarge = true;
            req.unpipe();
            abort.abort();
            // The upstream stream may see an unfinished body; it is cancelled, never completed.
            req.resume();
          }
        });
        req.pause();
      }
      const onGone = () => {
        if (!res.writableFinished) abort.abort();
      };
      res.on('close', onGone);
      // One deadline for the call, whichever way it travels: the service's timeout, or the
      // version's own request timeout when shorter (the agent enforces that one on HTTP/2
      // streams; a work connection only pipes bytes, so it must be the platform's).
      const timeoutMs = Math.min(service.timeout_ms, chosen.manifest.limits?.requestTimeoutMs ?? Infinity);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        abort.abort();
      }, timeoutMs);
      let result;
      try {
        result = await options.dispatcher().dispatch({
          targets: chosen.targets,
          method: req.method ?? 'GET',
          path: `${path}${query}`,
          headers,
          ...(hasBody ? { body: req } : {}),
          idempotent: IDEMPOTENT.has(req.method ?? 'GET') || !hasBody,
          deadline: Date.now() + timeoutMs,
          requestId,
          signal: abort.signal,
        });
      } catch (error) {
        clearTimeout(timer);
        if (tooLarge) throw refuseTooLarge();
        // Our own deadline passed: whatever the layer below made of the abort, it is a 504.
        if (timedOut || (abort.signal.aborted && !(error instanceof InsituError))) {
          throw new InsituError('INSITU_GATEWAY_TIMEOUT', `${name} did not answer within ${timeoutMs} ms`, {
            details: { where: 'gateway' },
          });
        }
        throw error;
      }
      if (tooLarge) {
        result.body.destroy();
        throw refuseTooLarge();
      }
      call.providerId = result.providerId;
      call.agentId = result.agentId;
      call.status = result.status;
      const outgoing: Record<string, string | string[]> = {};
      for (const header in result.headers) {
        const value = result.headers[header];
        if (value !== undefined && !DROP_RESPONSE.has(header.toLowerCase()) && !header.startsWith(':'))
          outgoing[header] = value;
      }
      outgoing['insitu-service-version'] = chosen.version;
      // Every answer carries the request id, the application's own (a 404 of its router) too.
      outgoing['insitu-request-id'] = requestId;
      res.writeHead(result.status, outgoing);
      const body = result.body;
      const max = Number(service.max_response_bytes);
      body.on('data', (chunk: Buffer) => {
        call.bytesOut += chunk.length;
        if (call.bytesOut > max) {
          call.errorCode = 'INSITU_RESPONSE_TOO_LARGE';
          body.destroy();
          res.destroy();
        }
      });
      body.on('error', () => {
        call.errorCode ||= 'INSITU_RESPONSE_ABORTED';
        res.destroy();
      });
      // Recorded when the answer is complete ('finish'), or when the connection ends without it ('close').
      res.on('finish', () => {
        clearTimeout(timer);
        record();
      });
      res.on('close', () => {
        clearTimeout(timer);
        if (!res.writableFinished) {
          if (!call.errorCode) call.errorCode = abort.signal.aborted ? 'INSITU_GATEWAY_TIMEOUT' : 'INSITU_CALLER_GONE';
          body.destroy();
        }
        record();
      });
      body.pipe(res);
    } catch (error) {
      const apiError = toApiError(error);
      call.status = apiError.status;
      call.errorCode = apiError.code;
      record();
      throw apiError;
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const incoming = req.headers['insitu-request-id'];
    const requestId = typeof incoming === 'string' && isId(incoming, 'req') ? incoming : newId('req');
    res.setHeader('insitu-request-id', requestId);
    res.on('close', () => {
      const metrics = metricsOf(res.statusCode);
      metrics.calls.inc();
      metrics.duration.observe((performance.now() - started) / 1000);
    });
    serve(req, res, requestId, started).catch((error: unknown) => {
      const apiError = toApiError(error);
      ctx.http.errors.inc({ code: apiError.code });
      if (apiError.isUserError)
        logger.debug({ reqId: requestId, code: apiError.code, err: apiError.message }, 'call refused');
      else logger.error({ reqId: requestId, code: apiError.code, err: apiError.cause ?? error }, 'call failed');
      req.resume();
      const body: { code: string; message: string; requestId: string; details?: unknown } = {
        code: apiError.code,
        message: apiError.message,
        requestId,
      };
      if (apiError.details !== undefined) body.details = apiError.details;
      sendJson(res, apiError.status, { error: body }, apiError.headers);
    });
  }

  function forgetCaches(): void {
    keys.clear();
    services.clear();
    grants.clear();
    router.invalidate();
  }

  return {
    handle,
    router,
    limits,
    invalidate() {
      forgetCaches();
      options.onInvalidate?.();
    },
    forgetCaches,
  };
}
