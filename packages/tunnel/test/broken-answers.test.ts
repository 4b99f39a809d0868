import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { InsituError, waitFor } from '@insitu/core';
import {
  createHttpProxyHandler,
  createLocalDirectory,
  RAW_STREAM_HANDLER,
  type RawStreamCapable,
  type TunnelClient,
  type TunnelHandler,
} from '@insitu/tunnel';
import { startAgent, startPlatform, waitRoutable, type TestPlatform } from './helpers.js';

/*
 * An answer broken off upstream (an application that dies mid-answer, a handler that
 * throws after its headers) must reach the caller as an abort, never as a clean end: a
 * truncated body that ends cleanly passes for a complete answer. `stream.close(code)` on
 * an HTTP/2 stream whose writable side is open first ends it (END_STREAM), so each place
 * that breaks off an answer is checked here.
 */

/**
 * An HTTP/1.1 application that sends 1,000 bytes of a chunked answer and dies. Chunked,
 * not a Content-Length: nghttp2 itself resets a stream whose END_STREAM comes short of
 * its content-length, which would hide a clean end.
 */
async function startDyingApp(): Promise<{
  target: { host: string; port: number };
  /** The Host header of each request it got (a work connection sends `localhost`). */
  hosts: string[];
  close(): Promise<void>;
}> {
  const hosts: string[] = [];
  const server = http.createServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(1000, 1), () => res.socket?.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    target: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    hosts,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How a body finished: 'ended' (a clean end) or 'aborted' (an error, or closed without its end). */
function outcome(body: Readable): Promise<'ended' | 'aborted'> {
  return new Promise((resolve) => {
    let ended = false;
    body.on('end', () => {
      ended = true;
    });
    body.on('error', () => resolve('aborted'));
    body.on('close', () => resolve(ended ? 'ended' : 'aborted'));
    body.resume();
  });
}

describe('tunnel: an answer broken off upstream reaches the caller as an abort', () => {
  const platforms: TestPlatform[] = [];
  const agents: TunnelClient[] = [];
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    await Promise.all(agents.map((agent) => agent.close(200)));
    await Promise.all(platforms.map((p) => p.close().catch(() => undefined)));
    for (const close of closers) await close();
  });

  async function through(handler: TunnelHandler, providerId: string): Promise<TestPlatform> {
    const platform = await startPlatform();
    platforms.push(platform);
    agents.push(await startAgent([platform.url], handler, { providerId, sessions: 1 }));
    await waitRoutable(platform.tunnel, 1, providerId);
    return platform;
  }

  async function request(platform: TestPlatform, providerId: string): Promise<'ended' | 'aborted'> {
    const response = await platform.tunnel.request({ providerId, service: 'app@1.0.0', method: 'GET', path: '/big' });
    assert.equal(response.status, 200);
    return outcome(response.body);
  }

  it('the HTTP proxy handler (raw stream form, what the client uses) resets the stream when the application dies', async () => {
    const app = await startDyingApp();
    closers.push(() => app.close());
    const proxy = createHttpProxyHandler(app.target);
    closers.push(() => proxy.close());
    const platform = await through(proxy, 'prv_raw');
    assert.equal(await request(platform, 'prv_raw'), 'aborted');
  });

  it('a work connection carries the death of the application to the caller as an abort', async () => {
    const app = await startDyingApp();
    closers.push(() => app.close());
    const proxy = createHttpProxyHandler(app.target);
    closers.push(() => proxy.close());
    const platform = await startPlatform();
    platforms.push(platform);
    agents.push(await startAgent([platform.url], proxy, { providerId: 'prv_work', sessions: 1, workConnections: 2 }));
    await waitRoutable(platform.tunnel, 1, 'prv_work');
    const [candidate] = platform.tunnel.table.candidates('prv_work', 'app@1.0.0');
    await waitFor(() => (candidate?.session.work?.spares ?? 0) > 0, {
      timeoutMs: 10_000,
      what: 'a spare work connection',
    });
    assert.equal(await request(platform, 'prv_work'), 'aborted');
    assert.deepEqual(app.hosts, ['localhost'], 'the request went over the work connection');
  });

  it('the HTTP proxy handler ((req, res) form) resets the stream when the application dies', async () => {
    const app = await startDyingApp();
    closers.push(() => app.close());
    const proxy = createHttpProxyHandler(app.target);
    closers.push(() => proxy.close());
    // The compatibility form on a plain HTTP/2 server: no raw-stream shortcut.
    const server = http2.createServer((req, res) => proxy(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    client.on('error', () => undefined);
    closers.push(async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const stream = client.request({ ':path': '/big' });
    stream.on('error', () => undefined);
    const status = await new Promise<number>((resolve) =>
      stream.once('response', (headers) => resolve(Number(headers[':status']))),
    );
    assert.equal(status, 200);
    assert.equal(await outcome(stream), 'aborted');
  });

  it('the tunnel client resets a (req, res) answer whose handler threw after its headers', async () => {
    const handler: TunnelHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      throw new Error('the handler broke mid-answer');
    };
    const platform = await through(handler, 'prv_threw');
    assert.equal(await request(platform, 'prv_threw'), 'aborted');
  });

  it('the tunnel client resets a raw-stream answer whose handler threw after its headers', async () => {
    const handler: TunnelHandler & RawStreamCapable = Object.assign<TunnelHandler, RawStreamCapable>(
      (_req, res) => res.end(),
      {
        [RAW_STREAM_HANDLER]: (stream) => {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          throw new Error('the handler broke mid-answer');
        },
      },
    );
    const platform = await through(handler, 'prv_raw_threw');
    assert.equal(await request(platform, 'prv_raw_threw'), 'aborted');
  });

  it('a node serving a forwarded request resets the forwarded stream when the agent breaks the answer off', async () => {
    const app = await startDyingApp();
    closers.push(() => app.close());
    const proxy = createHttpProxyHandler(app.target);
    closers.push(() => proxy.close());
    const directory = createLocalDirectory();
    const secret = 'cluster-secret-for-tests-only-0123456789';
    const holder = await startPlatform({ nodeId: 'node-holder', cluster: { directory, secret } });
    const front = await startPlatform({ nodeId: 'node-front', cluster: { directory, secret } });
    platforms.push(holder, front);
    for (const p of [holder, front]) await directory.registerNode(p.tunnel.nodeId, p.url);
    agents.push(await startAgent([holder.url], proxy, { providerId: 'prv_fw', sessions: 1 }));
    await waitFor(() => directory.lookup('prv_fw').length === 1, { what: 'the session published' });
    const response = await front.tunnel.request({
      providerId: 'prv_fw',
      service: 'app@1.0.0',
      method: 'GET',
      path: '/big',
    });
    assert.equal(response.forwarded, true);
    assert.equal(response.status, 200);
    assert.equal(await outcome(response.body), 'aborted');
  });

  // The request direction: a caller that gives up (abort, deadline) while its body is still
  // streaming must not leave the application with half a body that ended cleanly.
  for (const cut of ['abort', 'deadline'] as const) {
    it(`a request body cut by the caller's ${cut} reaches the application as an abort, not a clean end`, async () => {
      const providerId = `prv_cut_${cut}`;
      const seen: Array<Promise<'ended' | 'aborted'>> = [];
      let received = 0;
      const handler: TunnelHandler = (req, res) => {
        req.on('data', (chunk: Buffer) => (received += chunk.length));
        const finished = outcome(req);
        seen.push(finished);
        void finished.then((how) => {
          if (how === 'ended' && !res.writableEnded) res.end(`got ${received} bytes`);
        });
      };
      const platform = await through(handler, providerId);
      const body = new PassThrough();
      const abort = new AbortController();
      const call = platform.tunnel.request({
        providerId,
        service: 'app@1.0.0',
        method: 'POST',
        path: '/upload',
        body,
        ...(cut === 'abort' ? { signal: abort.signal } : { deadlineMs: 1500 }),
      });
      call.catch(() => undefined);
      body.write(Buffer.alloc(1000, 1));
      await waitFor(() => received >= 1000, { timeoutMs: 10_000, what: 'the first part of the body at the app' });
      if (cut === 'abort') abort.abort();
      await assert.rejects(call, (error: unknown) => error instanceof InsituError);
      await waitFor(() => seen[0], { timeoutMs: 5000, what: 'the request at the app' });
      assert.equal(await seen[0], 'aborted', 'the application saw the body end cleanly after 1,000 bytes');
      body.destroy();
    });
  }
});
