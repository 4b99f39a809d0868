import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as http1Request, type Server } from 'node:http';
import { connect, createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import { LocalBalancer, type BalancerTarget } from '../src/index.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One application instance: an HTTP server on a Unix socket that names itself in each answer. */
async function instance(dir: string, id: string, handler?: Parameters<typeof createServer>[1]): Promise<Server> {
  const server = createServer(
    handler ??
      ((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json', 'x-instance': id });
          res.end(JSON.stringify({ id, method: req.method, url: req.url, host: req.headers.host, body }));
        });
      }),
  );
  server.listen(join(dir, `${id}.sock`));
  await once(server, 'listening');
  return server;
}

/** The two ways the agent hands a request to the balancer: compatibility API (HTTP/1.1 here) and raw HTTP/2 stream. */
const FRONTS = ['compat', 'stream'] as const;
type Front = (typeof FRONTS)[number];

async function front(
  kind: Front,
  balancer: LocalBalancer,
): Promise<{ call: (method: string, path: string, body?: string) => Promise<Answer>; close: () => Promise<void> }> {
  if (kind === 'compat') {
    const server = createServer((req, res) => balancer.handle(req, res));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return {
      call: (method, path, body) =>
        new Promise((resolve, reject) => {
          const req = http1Request(
            { host: '127.0.0.1', port, method, path, headers: { host: 'svc.example' } },
            (res) => {
              let text = '';
              res.on('data', (chunk: Buffer) => (text += chunk.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
            },
          );
          req.on('error', reject);
          req.end(body);
        }),
      close: async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }
  const server: Http2Server = createH2Server();
  server.on('stream', (stream, headers) => balancer.handleStream(stream, headers));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const session = connect(`http://127.0.0.1:${port}`);
  return {
    call: (method, path, body) =>
      new Promise((resolve, reject) => {
        const stream = session.request(
          { ':method': method, ':path': path, ':authority': 'svc.example' },
          { endStream: body === undefined },
        );
        let status = 0;
        let headers: Answer['headers'] = {};
        let text = '';
        stream.on('response', (h) => {
          status = Number(h[':status']);
          headers = h;
        });
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
        stream.on('end', () => resolve({ status, headers, body: text }));
        stream.on('error', reject);
        if (body !== undefined) stream.end(body);
      }),
    close: async () => {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the local balancer', () => {
  let dir: string;
  const servers: Server[] = [];

  before(async () => {
    dir = await makeTempDir('insitu-balancer-');
    servers.push(await instance(dir, 'a'), await instance(dir, 'b'));
    servers.push(
      await instance(dir, 'slow', () => {
        /* never answers */
      }),
    );
  });

  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await removeDir(dir);
  });

  function target(ids: string[], timeoutMs = 10_000): BalancerTarget & { failed: string[] } {
    const failed: string[] = [];
    const instances = ids.map((id) => ({
      id,
      socketPath: join(dir, `${id}.sock`),
      inflight: 0,
      pipes: 0,
      gone: new AbortController(),
    }));
    return {
      name: 'demo',
      ready: () => instances.filter((i) => !failed.includes(i.id)),
      instanceFailed: (id) => failed.push(id),
      requestTimeoutMs: timeoutMs,
      failed,
    };
  }

  for (const kind of FRONTS) {
    describe(`through the ${kind === 'compat' ? 'compatibility API' : 'raw HTTP/2 stream'}`, () => {
      it('forwards method, path, host and body, and takes instances in turn when none is busy', async () => {
        const fe = await front(kind, new LocalBalancer(target(['a', 'b'])));
        try {
          const first = await fe.call('POST', '/sum?x=1', '{"n":2}');
          const second = await fe.call('GET', '/other');
          assert.equal(first.status, 200);
          const one = JSON.parse(first.body) as { id: string; method: string; url: string; host: string; body: string };
          assert.deepEqual(
            { method: one.method, url: one.url, host: one.host, body: one.body },
            { method: 'POST', url: '/sum?x=1', host: 'svc.example', body: '{"n":2}' },
          );
          assert.equal(first.headers['x-instance'], one.id);
          assert.notEqual((JSON.parse(second.body) as { id: string }).id, one.id);
        } finally {
          await fe.close();
        }
      });

      it('retries an idempotent request that never reached an instance on another one, and marks the first failed', async () => {
        const t = target(['gone', 'a']);
        const fe = await front(kind, new LocalBalancer(t));
        try {
          const answer = await fe.call('GET', '/x');
          assert.equal(answer.status, 200);
          assert.equal((JSON.parse(answer.body) as { id: string }).id, 'a');
          assert.deepEqual(t.failed, ['gone']);
        } finally {
          await fe.close();
        }
      });

      it('does not retry a request with a body, and says the instance failed', async () => {
        const t = target(['gone', 'a']);
        const fe = await front(kind, new LocalBalancer(t));
        try {
          const answer = await fe.call('POST', '/x', 'payload');
          assert.equal(answer.status, 503);
          assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'INSITU_APP_UNAVAILABLE');
          assert.deepEqual(t.failed, ['gone']);
        } finally {
          await fe.close();
        }
      });

      it('answers 503 with Retry-After when no instance is ready', async () => {
        const fe = await front(kind, new LocalBalancer(target([])));
        try {
          const answer = await fe.call('GET', '/x');
          assert.equal(answer.status, 503);
          assert.equal(answer.headers['retry-after'], '1');
          assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'INSITU_APP_UNAVAILABLE');
        } finally {
          await fe.close();
        }
      });

      it('answers 504 when the instance does not answer within the timeout, and frees the instance', async () => {
        const t = target(['slow'], 200);
        const balancer = new LocalBalancer(t);
        const fe = await front(kind, balancer);
        try {
          const answer = await fe.call('GET', '/x');
          assert.equal(answer.status, 504);
          assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'INSITU_APP_TIMEOUT');
          assert.equal(t.ready()[0]?.inflight, 0);
        } finally {
          await fe.close();
        }
      });
    });
  }
});
