import swagger from '@fastify/swagger';
import {
  answerClientError,
  createHttpMetrics,
  createLogger,
  createMetricsRegistry,
  echo,
  errorJson,
  InsituError,
  isId,
  type Logger,
  newId,
} from '@insitu/core';
import type { Store } from '@insitu/store';
import type { Coordinator } from '@insitu/coord';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import { Ajv, type Options as AjvOptions } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { App } from './app.js';
import { bearerToken, resolvePrincipal } from './auth/principal.js';
import { cookieSessionToken, registerConsole } from './console.js';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { AllowedMethods } from './allowed-methods.js';
import { toApiError } from './errors.js';
import { parseJsonBody } from './json-body.js';
import { DeploymentReconciler } from './apps/reconciler.js';
import { createClusterSignals } from './cluster-signals.js';
import { CallRecorder } from './gateway/call-recorder.js';
import type { ServiceDispatcher } from './gateway/dispatcher.js';
import { tunnelDispatcher } from './gateway/tunnel-dispatcher.js';
import { desiredStateFor } from './apps/desired-state.js';
import { createGateway, type Gateway } from './gateway/gateway.js';
import { registerAccountRoutes } from './routes/accounts.js';
import { registerAgentControlRoutes } from './routes/agent-control.js';
import { registerAppRoutes } from './routes/apps.js';
import { registerApprovalRoutes } from './routes/approvals.js';
import { registerDeploymentRoutes } from './routes/deployments.js';
import { jobsFor, registerJobRoutes } from './routes/jobs.js';
import { registerPrivacyBudgetRoutes } from './routes/privacy-budget.js';
import { ResultStore } from './jobs/result-store.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerRecordRoutes } from './routes/records.js';
import { registerOperatorClusterRoutes } from './routes/operator-cluster.js';
import { registerOperationsRoutes } from './routes/operations.js';
import { registerDatabaseAdminRoutes } from './routes/database-admin.js';
import { registerServiceRoutes } from './routes/services.js';
import { registerAgentRoutes } from './routes/agents.js';
import { registerDatasetRoutes } from './routes/datasets.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerSchemaRoutes } from './routes/schemas.js';
import { registerOrgRoutes } from './routes/orgs.js';
import { registerProviderRoutes } from './routes/providers.js';
import { mountTunnel, readTlsFiles } from './tunnel-endpoint.js';
import { setUpAuditAnchoring, type AuditAnchoring } from './audit/anchoring.js';
import { API_ERROR_ID, documentErrorResponses, type RouteEntry } from './openapi-responses.js';
import { VERSION } from './version.js';
import { lazySerializers, lazyValidator } from './lazy-compilers.js';

/** Options for {@link buildServer}. */
export interface BuildServerOptions {
  config: Readonly<ServerConfig>;
  store: Store;
  logger?: Logger;
  now?: () => number;
  nodeId?: string;
  /** How the gateway reaches application instances; the tunnel by default. Tests pass their own. */
  dispatcher?: ServiceDispatcher;
  /** Coordination store to use instead of the one the config names (the caller closes it). */
  coordinator?: Coordinator;
  /**
   * The data dir, against which relative files of the config resolve (the audit anchor
   * key and file). Without it, relative ones are not used: no audit anchors are signed.
   */
  dataDir?: string;
}

/** The platform services a built server runs, for whoever wires the tunnel and tests. */
export interface PlatformParts {
  reconciler: DeploymentReconciler;
  recorder: CallRecorder;
  /** Every route the router holds (method, URL pattern, hidden from the OpenAPI document or not). */
  routes: readonly RouteEntry[];
  /** Signs and publishes audit chain heads; undefined when no anchor key is configured. */
  anchoring: AuditAnchoring | undefined;
  gateway: Gateway;
  /** `draining: true` turns readiness off (shutdown). */
  lifecycle: { draining: boolean };
  /** Replace the dispatcher (the tunnel is attached after the server is built). */
  setDispatcher(dispatcher: ServiceDispatcher): void;
  /** Delete the job results whose retention ended (run every minute); returns how many. */
  sweepJobResults(): Promise<number>;
}

declare module 'fastify' {
  interface FastifyInstance {
    insitu: PlatformParts;
  }
}

const REQUEST_ID_HEADER = 'insitu-request-id';
const addFormats = addFormatsModule.default;

function ajv(options: AjvOptions): Ajv {
  const instance = new Ajv({ allErrors: true, removeAdditional: false, useDefaults: true, strict: false, ...options });
  addFormats(instance);
  return instance;
}

/**
 * Build the platform's HTTP server: the REST API under `/api/v1` (with its OpenAPI
 * document), health, readiness and metrics. It does not listen; call `listen()` or
 * use {@link startServer}. Tests use `inject()` on it.
 */
export async function buildServer(options: BuildServerOptions): Promise<App> {
  const { config, store } = options;
  const logger = options.logger ?? createLogger({ name: 'server', level: config.log.level });
  const registry = createMetricsRegistry();
  const ctx: ServerContext = {
    config,
    store,
    logger,
    registry,
    http: createHttpMetrics(registry),
    now: options.now ?? Date.now,
    node: { id: options.nodeId ?? newId('node'), startedAt: Date.now(), version: VERSION },
    passwordCost: { N: 2 ** config.auth.passwordCost, r: 8, p: 1 },
    lifecycle: { draining: false },
  };

  const reconciler = new DeploymentReconciler(ctx);
  const recorder = new CallRecorder(store, logger, config.audit);
  let dispatcher = options.dispatcher;
  // Late-bound: the tunnel and the listening address exist once the app is built.
  const holder: { app?: App } = {};
  const baseUrl = () => {
    if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
    const address = holder.app?.server.address();
    return typeof address === 'object' && address
      ? `http${config.tls ? 's' : ''}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : '';
  };
  // Set once coord is there (below): a change of keys, services or grants through this
  // node is announced to the others.
  let announceGatewayChange = (): void => undefined;
  const gateway = createGateway(ctx, {
    dispatcher: () => (dispatcher ??= tunnelDispatcher(() => (holder.app as App).tunnel)),
    recorder,
    baseUrl,
    onInvalidate: () => announceGatewayChange(),
  });
  const tls = config.tls ? readTlsFiles(config.tls) : undefined;

  const app = Fastify({
    // Calls to services (/s/…) go to the gateway's own handler before the REST framework:
    // the hot path pays for no routing, hooks or reply objects it does not use.
    serverFactory: (fastifyHandler) => {
      const route = (req: IncomingMessage, res: ServerResponse) => {
        if (req.url?.startsWith('/s/')) gateway.handle(req, res);
        else fastifyHandler(req, res);
      };
      return tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, route) : createHttpServer(route);
    },
    loggerInstance: logger,
    // We write one line per request ourselves (onResponse), with the route and principal.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.limits.bodyBytes,
    return503OnClosing: true,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers[REQUEST_ID_HEADER];
      return typeof incoming === 'string' && isId(incoming, 'req') ? incoming : newId('req');
    },
    routerOptions: { maxParamLength: 200 },
    // Response serializers are compiled on a route's first answer, not at start (lazy-compilers.ts).
    schemaController: { compilersFactory: { buildSerializer: lazySerializers(SerializerSelector()) } },
    // Errors the router raises before any route or hook runs (a broken percent-escape, a
    // path parameter over 200 characters) are answered in our shape like every other error.
    frameworkErrors: (error, request, reply) => {
      void reply.header(REQUEST_ID_HEADER, request.id);
      sendError(toApiError(error), request, reply);
    },
    // Requests Node's parser refuses (bytes a URL may not hold, headers over 16 KiB) too.
    clientErrorHandler: answerClientError,
  }) as unknown as App;

  function sendError(apiError: InsituError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    ctx.http.errors.inc({ code: apiError.code });
    if (apiError.isUserError) request.log.info({ code: apiError.code, err: apiError.message }, 'request refused');
    else request.log.error({ code: apiError.code, err: apiError.cause ?? apiError }, 'request failed');
    for (const [name, value] of Object.entries(apiError.headers ?? {})) void reply.header(name, value);
    return reply.status(apiError.status).type('application/json').send(errorJson(apiError, request.id));
  }

  // Bodies are validated strictly; query strings and params may coerce "5" to 5.
  const bodyAjv = ajv({ coerceTypes: false });
  const queryAjv = ajv({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    lazyValidator(() => (httpPart === 'body' ? bodyAjv : queryAjv).compile(schema)),
  );

  // The API speaks JSON only: anything else is 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.decorateRequest('principal', null);

  app.addHook('onRequest', async (request, reply) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    const mode = request.routeOptions.config.auth ?? 'user';
    const token = bearerToken(request.headers.authorization) ?? cookieSessionToken(request.headers);
    if (token) request.principal = (await resolvePrincipal(store, token, config.metrics.token)) ?? null;
    if (mode === 'public' || request.is404) return;
    const principal = request.principal;
    if (!principal) {
      void reply.header('www-authenticate', 'Bearer');
      throw new InsituError(
        'INSITU_UNAUTHENTICATED',
        token ? 'the credential is unknown, expired or revoked' : 'sign in first: send Authorization: Bearer <token>',
      );
    }
    const allowed =
      (mode === 'user' && principal.kind === 'user') ||
      (mode === 'agent' && principal.kind === 'agent') ||
      (mode === 'user-or-agent' && principal.kind !== 'metrics') ||
      (mode === 'metrics' && (principal.kind === 'metrics' || (principal.kind === 'user' && principal.platformAdmin)));
    if (!allowed)
      throw new InsituError(
        'INSITU_FORBIDDEN',
        `this endpoint is not for ${principal.kind === 'metrics' ? 'the metrics token' : `${principal.kind}s`}`,
      );
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.http.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    ctx.http.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    request.log.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        principal: request.principal?.kind,
      },
      'request',
    );
  });

  app.setErrorHandler(async (error, request, reply) => sendError(toApiError(error), request, reply));

  const routes: RouteEntry[] = [];
  const allowed = new AllowedMethods(routes);
  app.setNotFoundHandler(async (request) => {
    const path = request.url.split('?')[0] ?? '';
    const methods = allowed.of(path);
    if (methods.length > 0) {
      throw new InsituError(
        'INSITU_METHOD_NOT_ALLOWED',
        `${echo(path)} does not take ${echo(request.method)}; it takes ${methods.join(', ')}`,
        {
          headers: { allow: methods.join(', ') },
        },
      );
    }
    throw new InsituError('INSITU_ROUTE_NOT_FOUND', `no endpoint ${request.method} ${echo(path)}`);
  });

  await app.register(swagger, {
    // Shared schemas keep their names: the error body is #/components/schemas/ApiError.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Insitu platform API',
        version: VERSION,
        description: `Control plane of Insitu: organisations, providers, agents and the data catalog. Every error answers { error: { code, message, requestId } } (#/components/schemas/${API_ERROR_ID}); each operation lists the error statuses it can answer.`,
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  documentErrorResponses(app, routes);

  await mountTunnel(app, ctx, options.coordinator ? { coordinator: options.coordinator } : {});
  holder.app = app;
  // The same gateway behind a framework route too: for inject() in tests, and should a
  // call ever reach the framework (the server factory sends real traffic past it).
  app.register(async (plugin) => {
    const scoped = plugin as unknown as App;
    scoped.removeAllContentTypeParsers();
    scoped.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
    scoped.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      url: '/s/*',
      exposeHeadRoute: false,
      config: { auth: 'public' },
      schema: { hide: true },
      handler: async (request, reply) => {
        reply.hijack();
        gateway.handle(request.raw, reply.raw);
      },
    });
  });
  const anchoring = await setUpAuditAnchoring({
    config,
    store,
    logger,
    node: ctx.node.id,
    now: ctx.now,
    coordinator: app.coordinator,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  });
  reconciler.on('routes-changed', () => gateway.router.invalidate());
  // A change of a provider's deployments is pushed at once to its agents with a session on
  // this node; in a cluster, changes are also announced to the other nodes, which push to
  // their own agents and forget their gateway caches.
  const signals = await createClusterSignals(app.coordinator, {
    nodeId: ctx.node.id,
    logger: ctx.logger,
    handlers: {
      deployments: (providerId) => {
        gateway.router.invalidate();
        void pushDesired(app, ctx, providerId);
      },
      gateway: () => gateway.forgetCaches(),
    },
  });
  announceGatewayChange = () => signals.announce('gateway');
  // Rate limits and daily quotas hold for the cluster: admitted calls are shared over coord.
  await gateway.limits.start(app.coordinator);
  reconciler.on('desired-changed', (providerId) => {
    void pushDesired(app, ctx, providerId);
    signals.announce('deployments', providerId);
  });
  // Results whose retention ended go, on every node (deleting twice is harmless).
  const resultStore = new ResultStore(ctx.config.jobs.resultsDir);
  app.decorate('insitu', {
    reconciler,
    recorder,
    routes,
    anchoring,
    gateway,
    lifecycle: ctx.lifecycle,
    setDispatcher(next: ServiceDispatcher) {
      dispatcher = next;
    },
    sweepJobResults: () => resultStore.sweep(ctx.store),
  });
  reconciler.start();
  recorder.start();
  const sweepTimer = setInterval(() => {
    resultStore
      .sweep(ctx.store)
      .catch((error: unknown) => ctx.logger.warn({ err: error }, 'sweeping expired job results failed'));
  }, 60_000);
  sweepTimer.unref();
  anchoring?.publisher.start();
  // Before the coordinator closes (its onClose hook was added first).
  app.addHook('preClose', async () => {
    await signals.close().catch(() => undefined);
    await gateway.limits.close();
    // The head so far, signed into coord too while it is open.
    await recorder.flush().catch(() => undefined);
    await anchoring?.publisher.publish().catch(() => undefined);
  });
  app.addHook('onClose', async () => {
    clearInterval(sweepTimer);
    await reconciler.stop();
    await recorder.close();
    // The last records, anchored in the file and the log (the coordinator is closed by now).
    if (anchoring)
      await anchoring.publisher.close({ ...(anchoring.places.file ? { file: anchoring.places.file } : {}) });
  });

  registerHealthRoutes(app, ctx);
  registerSchemaRoutes(app);
  registerAccountRoutes(app, ctx);
  registerOrgRoutes(app, ctx);
  registerProviderRoutes(app, ctx);
  registerAgentRoutes(app, ctx);
  registerAgentControlRoutes(app, ctx, reconciler);
  registerDatasetRoutes(app, ctx, reconciler);
  registerAppRoutes(app, ctx);
  registerApprovalRoutes(app, ctx);
  registerDeploymentRoutes(app, ctx, reconciler);
  registerJobRoutes(app, ctx, reconciler);
  registerPrivacyBudgetRoutes(app, ctx);
  registerServiceRoutes(app, ctx, gateway, baseUrl);
  registerKeyRoutes(app, ctx, gateway);
  registerRecordRoutes(app, ctx, recorder, anchoring);
  registerOperatorClusterRoutes(app, ctx);
  registerOperationsRoutes(app, ctx);
  registerDatabaseAdminRoutes(app, ctx);
  registerConsole(app, ctx);

  app.get('/api/v1/openapi.json', { config: { auth: 'public' }, schema: { hide: true } }, async () => app.swagger());

  return app;
}

/** Send a provider's desired deployments to its agents connected to this node. */
async function pushDesired(app: App, ctx: ServerContext, providerId: string): Promise<void> {
  try {
    const agents = new Set(
      app.tunnel
        .sessions()
        .filter((s) => s.providerId === providerId)
        .map((s) => s.agentId),
    );
    if (agents.size === 0) return;
    const desired = await desiredStateFor(ctx.store, providerId);
    await Promise.all(
      [...agents].map(async (agentId) => {
        await app.tunnel
          .command(agentId, 'desired', desired)
          .catch((error: unknown) =>
            ctx.logger.warn({ err: error, agentId }, 'pushing desired deployments failed; the agent will poll'),
          );
        const jobs = await jobsFor(ctx, providerId, agentId);
        await app.tunnel
          .command(agentId, 'jobs', { jobs })
          .catch((error: unknown) =>
            ctx.logger.warn({ err: error, agentId }, 'pushing jobs failed; the agent will poll'),
          );
      }),
    );
  } catch (error) {
    ctx.logger.warn({ err: error, providerId }, 'pushing desired deployments failed');
  }
}
