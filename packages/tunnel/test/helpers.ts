import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type http2 from 'node:http2';
import { Readable } from 'node:stream';
import { waitFor } from '@insitu/core';
import {
  TunnelClient,
  createTunnelServer,
  type AgentIdentity,
  type ServiceAnnouncement,
  type TunnelClientOptions,
  type TunnelResponse,
  type TunnelServer,
  type TunnelServerOptions,
} from '@insitu/tunnel';

/** Credentials a test platform accepts; delete one to revoke it. */
export const credentials = new Map<string, AgentIdentity>();

export function credentialFor(agentId: string, providerId = 'prv_test'): string {
  const credential = `isu_agt_${agentId}_${Math.random().toString(36).slice(2)}`;
  credentials.set(credential, { agentId, providerId });
  return credential;
}

export interface TestPlatform {
  url: string;
  port: number;
  tunnel: TunnelServer;
  server: http.Server;
  close(): Promise<void>;
}

/** A bare HTTP server with the tunnel mounted on `upgrade`, on a free loopback port (or `port`). */
export async function startPlatform(
  options: Partial<TunnelServerOptions> & { port?: number } = {},
): Promise<TestPlatform> {
  const tunnel = createTunnelServer({
    nodeId: options.nodeId ?? `node-${Math.random().toString(36).slice(2, 8)}`,
    authenticate: async (credential) => credentials.get(credential),
    timings: { pingIntervalMs: 1000, pingTimeoutMs: 1000, ...options.timings },
    ...options,
  });
  const server = http.createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  server.on('upgrade', (req, socket, head) => {
    if (!tunnel.handleUpgrade(req, socket as Socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    tunnel,
    server,
    async close() {
      await tunnel.close(500);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Start an agent with fast reconnects and wait for `sessions` sessions. */
export async function startAgent(
  platforms: string[],
  handler: TunnelClientOptions['handler'],
  options: Partial<TunnelClientOptions> & {
    agentId?: string;
    providerId?: string;
    services?: ServiceAnnouncement[];
    waitSessions?: number;
  } = {},
): Promise<TunnelClient> {
  const credential =
    options.credential ??
    credentialFor(options.agentId ?? `agt${Math.random().toString(36).slice(2, 8)}`, options.providerId);
  const client = new TunnelClient({
    platforms,
    credential,
    handler,
    allowPlainText: true,
    services: options.services ?? [{ key: 'app@1.0.0' }],
    backoff: { baseMs: 50, maxMs: 500, ...options.backoff },
    pingIntervalMs: 1000,
    pingTimeoutMs: 1000,
    ...options,
  });
  client.start();
  const want = options.waitSessions ?? Math.min(platforms.length, options.sessions ?? 2);
  if (want > 0)
    await waitFor(() => client.status().sessions.length >= want, { timeoutMs: 10_000, what: 'agent sessions' });
  return client;
}

/** Wait until the platform routes `service` of `providerId` to `count` sessions. */
export async function waitRoutable(
  tunnel: TunnelServer,
  count: number,
  providerId = 'prv_test',
  service = 'app@1.0.0',
): Promise<void> {
  await waitFor(() => tunnel.table.candidates(providerId, service).length >= count, {
    timeoutMs: 10_000,
    what: `${count} routable sessions`,
  });
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function text(response: TunnelResponse): Promise<string> {
  return (await readAll(response.body)).toString('utf8');
}

/** A handler that answers JSON describing the request; `name` identifies the agent. */
export function echoHandler(
  name: string,
  delayMs = 0,
): (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const send = (): void => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-agent': name });
        res.end(
          JSON.stringify({
            agent: name,
            method: req.method,
            path: req.url,
            body: Buffer.concat(chunks).toString('utf8'),
            header: req.headers['x-test'] ?? null,
          }),
        );
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  };
}

/** A body stream of `total` bytes made of one reused chunk (no memory grows with size). */
export function zeroStream(total: number, chunkSize = 64 * 1024): Readable {
  const chunk = Buffer.alloc(chunkSize, 7);
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, chunkSize);
      left -= n;
      this.push(n === chunkSize ? chunk : chunk.subarray(0, n));
    },
  });
}
