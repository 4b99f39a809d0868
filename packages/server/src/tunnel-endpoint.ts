import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createCoordinator, type Coordinator } from '@insitu/coord';
import { errorJson, hashSecret, InsituError, isLoopback } from '@insitu/core';
import { createTunnelServer, type TunnelServer } from '@insitu/tunnel';
import type { App } from './app.js';
import { createCoordSessionDirectory, type CoordSessionDirectory } from './coord-session-directory.js';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The tunnel to providers' agents: `app.tunnel.request(...)` (the gateway uses it). */
    tunnel: TunnelServer;
    /** The coordination store of this node (in-memory unless the cluster uses etcd). */
    coordinator: Coordinator;
  }
}

export function clusterSecret(config: Readonly<ServerConfig>): string | undefined {
  if (config.cluster.secretFile) {
    try {
      return readFileSync(config.cluster.secretFile, 'utf8').trim();
    } catch (error) {
      throw new InsituError('INSITU_CONFIG_INVALID', `cannot read cluster.secretFile: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return config.cluster.secret;
}

/** The certificate and key named by `config.tls`, read once at start. */
export function readTlsFiles(tls: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  } catch (error) {
    throw new InsituError(
      'INSITU_CONFIG_INVALID',
      `cannot read tls.certFile or tls.keyFile: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new InsituError('INSITU_CONFIG_INVALID', `cannot read cluster.caFile: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The coordinator the config asks for (the caller owns it). */
export function coordinatorFor(config: Readonly<ServerConfig>, ctx: Pick<ServerContext, 'logger'>): Coordinator {
  if (config.cluster.coordination === 'etcd' && config.cluster.etcdEndpoints.length === 0) {
    throw new InsituError('INSITU_CONFIG_INVALID', 'cluster.coordination is etcd but cluster.etcdEndpoints is empty');
  }
  return createCoordinator({
    kind: config.cluster.coordination,
    endpoints: config.cluster.etcdEndpoints,
    namespace: config.cluster.etcdNamespace,
    logger: ctx.logger,
  });
}

/**
 * Mount the tunnel endpoint on the API port: agents upgrade `GET /api/v1/tunnel` with
 * their `isu_agt_` credential (checked against the store: revoked or unknown is
 * refused); other nodes upgrade `/api/v1/tunnel/peer` to forward requests. With etcd,
 * this node's sessions are published under its lease so the other nodes can forward to
 * it. Decorates `app.tunnel` and `app.coordinator`; everything stops with the app.
 */
export async function mountTunnel(
  app: App,
  ctx: ServerContext,
  options: { coordinator?: Coordinator } = {},
): Promise<TunnelServer> {
  const { config, store, logger } = ctx;
  const ownsCoordinator = options.coordinator === undefined;
  const coordinator = options.coordinator ?? coordinatorFor(config, ctx);
  let directory: CoordSessionDirectory | undefined;
  let secret: string | undefined;
  if (coordinator.kind === 'etcd') {
    secret = clusterSecret(config);
    if (!secret)
      throw new InsituError(
        'INSITU_CONFIG_INVALID',
        'a cluster on etcd needs cluster.secret, cluster.secretFile or INSITU_CLUSTER_SECRET (node-to-node authentication)',
      );
    directory = await createCoordSessionDirectory(coordinator, { nodeId: ctx.node.id, logger });
  }
  const tunnel = createTunnelServer({
    nodeId: ctx.node.id,
    logger: logger.child({ subsystem: 'tunnel' }),
    registry: ctx.registry,
    balancer: config.tunnel.balancer,
    deadlineMs: config.tunnel.deadlineMs,
    idleTimeoutMs: config.tunnel.idleTimeoutMs,
    timings: { pingIntervalMs: config.tunnel.pingIntervalMs, pingTimeoutMs: config.tunnel.pingTimeoutMs },
    maxSessionsPerAgent: config.tunnel.maxSessionsPerAgent,
    allowPlainText: (socket: Socket) =>
      config.tunnel.plainText === 'allow' ||
      (config.tunnel.plainText === 'loopback' && isLoopback(socket.remoteAddress)),
    authenticate: async (credential) => {
      if (!credential.startsWith('isu_agt_')) return undefined;
      const agent = await store.providers.findLiveAgent(hashSecret(credential));
      if (!agent) return undefined;
      void store.providers.touchAgent(agent.id).catch(() => undefined);
      return { agentId: agent.id, providerId: agent.provider_id };
    },
    ...(directory && secret
      ? {
          cluster: {
            directory,
            secret,
            allowPlainText: config.tunnel.plainText !== 'refuse',
            ...(config.cluster.caFile ? { ca: readCa(config.cluster.caFile) } : {}),
          },
        }
      : {}),
  });
  app.decorate('tunnel', tunnel);
  app.decorate('coordinator', coordinator);
  app.server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    if (!tunnel.handleUpgrade(req, socket, head)) {
      socket.on('error', () => undefined);
      const body = errorJson({
        code: 'INSITU_ROUTE_NOT_FOUND',
        message: `no upgrade endpoint at ${(req.url ?? '').split('?')[0] ?? ''}`,
      });
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
  });
  app.addHook('onListen', async () => {
    if (!directory) return;
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.listen.port;
    const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
    const url =
      config.cluster.nodeUrl ??
      config.publicUrl ??
      `http${config.tls ? 's' : ''}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    await directory.registerNode(ctx.node.id, url);
  });
  app.addHook('preClose', async () => {
    await tunnel.close(2000);
  });
  app.addHook('onClose', async () => {
    await directory?.close();
    if (ownsCoordinator) await coordinator.close();
  });
  return tunnel;
}
