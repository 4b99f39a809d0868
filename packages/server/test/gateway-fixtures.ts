import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { InsituError, canonicalTar, type BundleEntry } from '@insitu/core';
import type { DispatchRequest, DispatchResult, ServiceDispatcher } from '../src/index.js';

/** A bundle tarball from a manifest and files. */
export function bundle(
  manifest: Record<string, unknown>,
  files: Record<string, string> = { 'index.js': 'export default 1;\n' },
): Buffer {
  const entries: BundleEntry[] = [
    { path: 'insitu.json', kind: 'file', executable: false, data: Buffer.from(JSON.stringify(manifest)) },
    ...Object.entries(files).map(([path, text]) => ({
      path,
      kind: 'file' as const,
      executable: false,
      data: Buffer.from(text),
    })),
  ];
  return canonicalTar(entries);
}

/** A real HTTP application standing in for the instances of one deployment. */
export interface TestApp {
  url: string;
  server: Server;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

export async function startTestApp(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<TestApp> {
  const requests: TestApp['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (handler) return handler(req, res, body);
      res.setHeader('content-type', 'application/json');
      // The application's own "not found", with its own body (the gateway must keep it).
      if (req.url?.startsWith('/missing')) res.statusCode = 404;
      res.end(JSON.stringify({ app: name, method: req.method, url: req.url, echo: body }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A dispatcher that sends calls over real HTTP to test applications, by deployment id:
 * what the tunnel does in production, minus the tunnel. Tests of the gateway's own work
 * (keys, grants, limits, quotas, metering, audit, streaming, deadlines) use it.
 */
export class HttpDispatcher implements ServiceDispatcher {
  readonly targets = new Map<string, string>();

  async dispatch(request: DispatchRequest): Promise<DispatchResult> {
    const target = request.targets.find((t) => this.targets.has(t.deploymentId));
    const base = target ? this.targets.get(target.deploymentId) : undefined;
    if (!target || !base)
      throw new InsituError('INSITU_SERVICE_UNAVAILABLE', 'no test app for these deployments', {
        details: { where: 'tunnel' },
      });
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest(
        `${base}${request.path}`,
        { method: request.method, headers: request.headers, signal: request.signal },
        (response) => {
          const headers: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(response.headers)) if (v !== undefined) headers[k] = v;
          resolve({
            status: response.statusCode ?? 502,
            headers,
            body: response,
            providerId: target.providerId,
            deploymentId: target.deploymentId,
            agentId: 'agt_test',
          });
        },
      );
      outgoing.on('error', (error) =>
        reject(new InsituError('INSITU_SERVICE_UNAVAILABLE', error.message, { details: { where: 'application' } })),
      );
      if (request.body) request.body.pipe(outgoing);
      else outgoing.end();
    });
  }
}
