import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@insitu/core';
import { createHttpProxyHandler, WORK_PATH, WORK_PROTOCOL, type TunnelClient } from '@insitu/tunnel';
import { readAll, startAgent, startPlatform, text, waitRoutable, type TestPlatform } from './helpers.js';

/** A real HTTP/1.1 application: echoes the method, path, body length and digest, and whether the body came chunked. */
async function startApp(): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/big/')) {
      const size = Number(req.url.slice(5));
      const chunk = Buffer.alloc(64 * 1024, 'z');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let left = size;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      length += chunk.length;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          method: req.method,
          path: req.url,
          length,
          sha256: hash.digest('hex'),
          chunked: req.headers['transfer-encoding'] === 'chunked',
          contentLength: req.headers['content-length'] ?? null,
          remotePort: req.socket.remotePort,
        }),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A raw upgrade to the work path; resolves with the status line and the socket. */
function rawUpgrade(port: number, headers: Record<string, string>): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.on('error', reject);
    socket.on('data', function onData(chunk: Buffer) {
      received += chunk.toString('latin1');
      if (!received.includes('\r\n\r\n')) return;
      socket.removeListener('data', onData);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0), socket });
    });
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(
      `GET ${WORK_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${WORK_PROTOCOL}\r\n${lines.join('')}\r\n`,
    );
  });
}

describe('work connections (the data plane)', () => {
  let platform: TestPlatform;
  let app: { port: number; server: http.Server };
  let agent: TunnelClient;
  const cleanups: Array<() => Promise<void> | void> = [];

  before(async () => {
    app = await startApp();
    platform = await startPlatform({
      timings: { pingIntervalMs: 1000, pingTimeoutMs: 1000, workSpares: 4, workIdleMs: 60_000 },
    });
    const handler = createHttpProxyHandler({ host: '127.0.0.1', port: app.port });
    agent = await startAgent([platform.url], handler, { agentId: 'agtwork', sessions: 1, workConnections: 16 });
    cleanups.push(() => handler.close());
    await waitRoutable(platform.tunnel, 1);
  });

  after(async () => {
    await agent?.close(500);
    await platform?.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
    app?.server.closeAllConnections();
    await new Promise<void>((resolve) => (app ? app.server.close(() => resolve()) : resolve()));
  });

  const session = () => {
    const chosen = platform.tunnel.table
      .candidates('prv_test', 'app@1.0.0')
      .find((c) => c.session.identity.agentId === 'agtwork')?.session;
    assert.ok(chosen, 'a routable session');
    return chosen;
  };

  it('fills a pool of spares ahead of demand and serves requests over it, keeping connections alive', async () => {
    await waitFor(() => (session().work?.spares ?? 0) >= 4, { timeoutMs: 10_000, what: 'spare work connections' });
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const res = await platform.tunnel.request({
        providerId: 'prv_test',
        service: 'app@1.0.0',
        method: 'GET',
        path: `/hello?i=${i}`,
      });
      assert.equal(res.status, 200);
      const body = JSON.parse(await text(res)) as { path: string; remotePort: number };
      assert.equal(body.path, `/hello?i=${i}`);
      ports.add(body.remotePort);
    }
    // Sequential requests reuse one kept-alive connection to the app: bytes were piped, not re-proxied.
    assert.equal(ports.size, 1);
    assert.ok((session().work?.size ?? 0) >= 4);
  });

  it('carries request bodies with a length, chunked, and large bodies both ways', async () => {
    const small = Buffer.from('{"a":1}');
    const withLength = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/echo',
      headers: { 'content-type': 'application/json', 'content-length': String(small.length) },
      body: small,
    });
    const a = JSON.parse(await text(withLength)) as { length: number; chunked: boolean; contentLength: string };
    assert.deepEqual([a.length, a.chunked, a.contentLength], [small.length, false, String(small.length)]);

    const big = Buffer.alloc(8 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const chunks: Buffer[] = [];
    for (let i = 0; i < big.length; i += 100_000) chunks.push(big.subarray(i, i + 100_000));
    const chunked = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'PUT',
      path: '/echo',
      body: Readable.from(chunks),
    });
    const b = JSON.parse(await text(chunked)) as { length: number; chunked: boolean; sha256: string };
    assert.equal(b.length, big.length);
    assert.equal(b.chunked, true);
    assert.equal(b.sha256, sha256(big));

    const size = 32 * 1024 * 1024 + 5;
    const down = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'GET',
      path: `/big/${size}`,
    });
    assert.equal((await readAll(down.body)).length, size);
  });

  it('carries a request body handed over paused (as the gateway does) or already ended', async () => {
    await waitFor(() => (session().work?.spares ?? 0) >= 1, { timeoutMs: 10_000, what: 'a spare' });
    const paused = Readable.from([Buffer.from('paused '), Buffer.from('body')]);
    paused.pause();
    const a = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/paused',
      headers: { 'content-length': '11' },
      body: paused,
    });
    const echoed = JSON.parse(await text(a)) as { length: number; chunked: boolean; remotePort: number };
    assert.deepEqual([echoed.length, echoed.chunked], [11, false]);
    const ended = Readable.from([]);
    await readAll(ended);
    const b = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/ended',
      body: ended,
    });
    assert.deepEqual((JSON.parse(await text(b)) as { length: number }).length, 0);
  });

  const pool = () => {
    const work = session().work;
    assert.ok(work, 'the session has a work pool');
    return work;
  };

  it('refuses a work connection without a token, with a wrong or reused token, or claiming another session', async () => {
    const sessionId = session().id;
    const none = await rawUpgrade(platform.port, { 'insitu-session': sessionId });
    assert.equal(none.status, 401);
    none.socket.destroy();
    const wrong = await rawUpgrade(platform.port, {
      'insitu-session': sessionId,
      'insitu-work-token': 'A'.repeat(43),
    });
    assert.equal(wrong.status, 401);
    wrong.socket.destroy();
    const badUpgrade = await new Promise<number>((resolve) => {
      const socket = net.connect(platform.port, '127.0.0.1');
      socket.on('data', (chunk: Buffer) => {
        resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? 0));
        socket.destroy();
      });
      socket.write(`GET ${WORK_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: something-else\r\n\r\n`);
    });
    assert.equal(badUpgrade, 400);

    // A second agent's real tokens, caught on their way (a proxy in front of the platform
    // that keeps work upgrades to itself), tried against the first agent's session.
    const caught: Array<{ session: string; token: string }> = [];
    const proxy = net.createServer((client) => {
      client.on('error', () => undefined);
      client.once('data', (first: Buffer) => {
        client.pause();
        const head = first.toString('latin1');
        const token = /insitu-work-token: (\S+)/i.exec(head)?.[1];
        if (token) {
          caught.push({ session: /insitu-session: (\S+)/i.exec(head)?.[1] ?? '', token });
          client.destroy();
          return;
        }
        const upstream = net.connect(platform.port, '127.0.0.1', () => {
          upstream.write(first);
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyHandler = createHttpProxyHandler({ host: '127.0.0.1', port: app.port });
    let other: TunnelClient | undefined;
    try {
      other = await startAgent([`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`], proxyHandler, {
        agentId: 'agtother',
        sessions: 1,
        workConnections: 4,
      });
      // The other agent stays up until its tokens are used: closing it earlier (before its
      // hello was answered) is what made this test flaky — a closed agent dials nothing.
      await waitFor(() => caught.length > 0, { timeoutMs: 10_000, what: 'a token of the other agent' });
      const stolen = caught[0] as { session: string; token: string };
      assert.notEqual(stolen.session, sessionId);
      const claimed = await rawUpgrade(platform.port, {
        'insitu-session': sessionId,
        'insitu-work-token': stolen.token,
      });
      assert.equal(claimed.status, 401, "another session's token never joins this session");
      claimed.socket.destroy();
      // The same token for its own session is accepted (it was valid all along), once.
      const own = await rawUpgrade(platform.port, {
        'insitu-session': stolen.session,
        'insitu-work-token': stolen.token,
      });
      assert.equal(own.status, 101);
      // Bytes from the agent side on an unbound work connection: the platform closes it.
      const closed = new Promise<void>((resolve) => own.socket.once('close', () => resolve()));
      own.socket.on('error', () => undefined);
      own.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
      await closed;
      const again = await rawUpgrade(platform.port, {
        'insitu-session': stolen.session,
        'insitu-work-token': stolen.token,
      });
      assert.equal(again.status, 401, 'a token is used once');
      again.socket.destroy();
    } finally {
      await other?.close(200);
      proxyHandler.close();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it('the agent closes a work connection bound to a service it does not serve or to garbage', async () => {
    const work = pool();
    await waitFor(() => work.spares > 0, { timeoutMs: 10_000, what: 'a spare' });
    const before = work.size;
    const unknown = work.bind('not-served@9');
    assert.ok(unknown);
    await waitFor(() => unknown.closed, { what: 'the connection bound to an unknown service to close' });
    await waitFor(() => work.spares > 0, { timeoutMs: 10_000, what: 'a spare again' });
    const garbage = work.bind('\u0000../../etc/passwd');
    assert.ok(garbage);
    await waitFor(() => garbage.closed, { what: 'the connection bound to garbage to close' });
    await waitFor(() => work.size >= Math.min(before, 4), { timeoutMs: 10_000, what: 'the pool refilled' });
    // And the session still serves over work connections.
    const res = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'GET',
      path: '/z',
    });
    assert.equal(res.status, 200);
    await text(res);
  });

  it('a work connection killed just before reuse: the same session serves the request over HTTP/2, unblamed', async () => {
    const work = pool();
    await waitFor(() => work.spares >= 4, { timeoutMs: 10_000, what: 'spares' });
    // Some connections bound and kept alive, some spare.
    const warm = await Promise.all(
      [1, 2, 3].map(async (i) => {
        const res = await platform.tunnel.request({
          providerId: 'prv_test',
          service: 'app@1.0.0',
          method: 'GET',
          path: `/warm${i}`,
        });
        return text(res);
      }),
    );
    assert.equal(warm.length, 3);
    assert.ok(work.idle('app@1.0.0') > 0, 'kept-alive work connections');
    const failuresBefore = session().consecutiveFailures;
    // The requests take their connections now (synchronously); killing every connection in
    // the same tick is the worst moment: what they hold is dead before a byte is written.
    const get = platform.tunnel.request({ providerId: 'prv_test', service: 'app@1.0.0', method: 'GET', path: '/x' });
    const post = platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/y',
      body: 'after the kill',
    });
    for (const socket of work.connections()) socket.destroy();
    const [got, posted] = await Promise.all([get, post]);
    assert.equal(got.status, 200);
    assert.equal((JSON.parse(await text(got)) as { path: string }).path, '/x');
    assert.equal(posted.status, 200);
    assert.equal((JSON.parse(await text(posted)) as { length: number }).length, 'after the kill'.length);
    // Dead work connections are not the session's failures.
    assert.equal(session().consecutiveFailures, failuresBefore);
    assert.equal(session().isEjected(), false);
    await waitFor(() => work.spares >= 4, { timeoutMs: 10_000, what: 'the pool refilled after the kill' });
    const after = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'GET',
      path: '/after',
    });
    assert.equal(after.status, 200);
    await text(after);
    assert.ok(work.size > 0);
  });

  it('a work connection the application closed while idle leaves the pool before a request meets it', async () => {
    const work = pool();
    const res = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'GET',
      path: '/a',
    });
    await text(res);
    await waitFor(() => work.idle('app@1.0.0') > 0, { what: 'a kept-alive connection' });
    // The application closes its idle keep-alive connections; the agent closes the work
    // connections they were piped to; the platform must notice the FIN (its socket came
    // from an HTTP server, which allows half-open connections).
    app.server.closeIdleConnections();
    await waitFor(() => work.idle('app@1.0.0') === 0, {
      what: 'idle work connections closed by the agent to leave the pool',
    });
    const post = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/b',
      body: 'x',
    });
    assert.equal(post.status, 200);
    await text(post);
  });

  it('falls back to HTTP/2 streams when no work connection is free, and never exceeds the pool size', async () => {
    const work = pool();
    const results = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const res = await platform.tunnel.request({
          providerId: 'prv_test',
          service: 'app@1.0.0',
          method: 'POST',
          path: `/c${i}`,
          body: `body ${i}`,
        });
        return JSON.parse(await text(res)) as { path: string; length: number };
      }),
    );
    results.forEach((r, i) => assert.deepEqual([r.path, r.length], [`/c${i}`, `body ${i}`.length]));
    assert.ok(work.size <= 16, `pool held ${work.size} > 16`);
  });
});
