import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InsituError, waitFor } from '@insitu/core';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bodyFrom, createHttpProxyHandler, type TunnelClient } from '@insitu/tunnel';
import {
  credentialFor,
  echoHandler,
  readAll,
  startAgent,
  startPlatform,
  text,
  waitRoutable,
  zeroStream,
  type TestPlatform,
} from './helpers.js';

function isCode(code: string, status?: number) {
  return (error: unknown) =>
    error instanceof InsituError && error.code === code && (status === undefined || error.status === status);
}

describe('tunnel: requests through one session', () => {
  const platforms: TestPlatform[] = [];
  const agents: TunnelClient[] = [];
  after(async () => {
    await Promise.all(agents.map((agent) => agent.close(200)));
    await Promise.all(platforms.map((platform) => platform.close()));
  });

  it('carries method, path, headers and bodies both ways, and reports the session', async () => {
    const platform = await startPlatform();
    platforms.push(platform);
    agents.push(
      await startAgent([platform.url], echoHandler('a'), {
        agentId: 'agt_a',
        services: [{ key: 'app@1.0.0', weight: 2 }],
      }),
    );
    await waitRoutable(platform.tunnel, 1);
    const get = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'GET',
      path: '/rows?limit=5',
      headers: { 'x-test': 'yes', connection: 'keep-alive' },
    });
    assert.equal(get.status, 200);
    assert.equal(get.headers['x-agent'], 'a');
    assert.deepEqual(JSON.parse(await text(get)), {
      agent: 'a',
      method: 'GET',
      path: '/rows?limit=5',
      body: '',
      header: 'yes',
    });
    const post = await platform.tunnel.request({
      providerId: 'prv_test',
      service: 'app@1.0.0',
      method: 'POST',
      path: '/q',
      body: bodyFrom('{"x":1}'),
    });
    assert.equal(JSON.parse(await text(post)).body, '{"x":1}');
    const [info] = platform.tunnel.sessions();
    assert.equal(info?.agentId, 'agt_a');
    assert.deepEqual(info?.services, [{ key: 'app@1.0.0', weight: 2 }]);
    assert.equal(info?.requests, 2);
  });

  it('proxies to a local HTTP application with createHttpProxyHandler, and answers 502 when it is down', async () => {
    const app = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'text/plain', 'x-app': 'yes' });
        res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString('utf8')}`);
      });
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const port = (app.address() as AddressInfo).port;
    const platform = await startPlatform();
    platforms.push(platform);
    const handler = createHttpProxyHandler({ host: '127.0.0.1', port });
    // The raw-stream form (what the tunnel client picks) and the (req, res) form.
    agents.push(await startAgent([platform.url], handler, { providerId: 'prv_proxy', sessions: 1 }));
    agents.push(
      await startAgent([platform.url], (req, res) => handler(req, res), {
        providerId: 'prv_proxy_compat',
        sessions: 1,
      }),
    );
    for (const providerId of ['prv_proxy', 'prv_proxy_compat']) {
      await waitRoutable(platform.tunnel, 1, providerId);
      const get = await platform.tunnel.request({ providerId, method: 'GET', path: '/a?b=1' });
      assert.equal(get.status, 201);
      assert.equal(get.headers['x-app'], 'yes');
      assert.equal(await text(get), 'GET /a?b=1 ');
      const post = await platform.tunnel.request({
        providerId,
        method: 'POST',
        path: '/p',
        body: zeroStream(100_000, 1000),
      });
      assert.equal((await text(post)).length, 'POST /p '.length + 100_000);
    }
    await new Promise<void>((resolve) => app.close(() => resolve()));
    app.closeAllConnections();
    for (const providerId of ['prv_proxy', 'prv_proxy_compat']) {
      const down = await platform.tunnel.request({ providerId, method: 'GET', path: '/down' });
      assert.equal(down.status, 502);
      assert.match(await text(down), /INSITU_TUNNEL_UPSTREAM_FAILED/);
    }
    handler.close();
  });

  it('sends a request refused by a full session to another one, and answers 503 when every session is full', async () => {
    const platform = await startPlatform({ timings: { maxStreams: 1 } });
    platforms.push(platform);
    for (const name of ['f1', 'f2'])
      agents.push(await startAgent([platform.url], echoHandler(name, 300), { providerId: 'prv_full', sessions: 1 }));
    await waitRoutable(platform.tunnel, 2, 'prv_full');
    const results = await Promise.allSettled(
      Array.from({ length: 3 }, () =>
        platform.tunnel.request({ providerId: 'prv_full', method: 'GET', path: '/' }).then(text),
      ),
    );
    const served = results
      .filter((r): r is PromiseFulfilledResult<string> => r.status === 'fulfilled')
      .map((r) => (JSON.parse(r.value) as { agent: string }).agent);
    assert.deepEqual(served.sort(), ['f1', 'f2']);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.ok(refused && isCode('INSITU_TUNNEL_UNAVAILABLE', 503)(refused.reason));
    assert.equal(platform.tunnel.sessions().filter((s) => s.ejected).length, 0, 'a busy session is not ejected');
  });

  it('answers INSITU_TUNNEL_NO_ROUTE (503) for an unknown provider or a service nobody announced', async () => {
    const platform = platforms[0];
    assert.ok(platform);
    await assert.rejects(
      platform.tunnel.request({ providerId: 'prv_other', method: 'GET', path: '/' }),
      isCode('INSITU_TUNNEL_NO_ROUTE', 503),
    );
    await assert.rejects(
      platform.tunnel.request({ providerId: 'prv_test', service: 'app@9.9.9', method: 'GET', path: '/' }),
      isCode('INSITU_TUNNEL_NO_ROUTE', 503),
    );
  });

  it('routes a service once the agent announces it, and runs platform commands on the agent', async () => {
    const platform = await startPlatform();
    platforms.push(platform);
    const agent = await startAgent([platform.url], echoHandler('b'), {
      agentId: 'agt_cmd',
      providerId: 'prv_cmd',
      services: [],
    });
    agent.onCommand('deploy', (payload) => ({ deployed: (payload as { app: string }).app }));
    agent.onCommand('explode', () => {
      throw new Error('no disk');
    });
    agents.push(agent);
    await waitFor(() => platform.tunnel.sessions().length === 1);
    await assert.rejects(
      platform.tunnel.request({ providerId: 'prv_cmd', service: 'new@2.0.0', method: 'GET', path: '/' }),
      isCode('INSITU_TUNNEL_NO_ROUTE'),
    );
    agent.announce([{ key: 'new@2.0.0' }]);
    await waitRoutable(platform.tunnel, 1, 'prv_cmd', 'new@2.0.0');
    const response = await platform.tunnel.request({
      providerId: 'prv_cmd',
      service: 'new@2.0.0',
      method: 'GET',
      path: '/hi',
    });
    assert.equal(JSON.parse(await text(response)).agent, 'b');
    assert.deepEqual(await platform.tunnel.command('agt_cmd', 'deploy', { app: 'x@1' }), { deployed: 'x@1' });
    await assert.rejects(
      platform.tunnel.command('agt_cmd', 'explode'),
      (e: unknown) =>
        e instanceof InsituError && e.code === 'INSITU_TUNNEL_COMMAND_FAILED' && /no disk/.test(e.message),
    );
    await assert.rejects(platform.tunnel.command('agt_cmd', 'nope'), isCode('INSITU_TUNNEL_COMMAND_FAILED'));
  });

  it('answers INSITU_TUNNEL_TIMEOUT (504) at the deadline when the agent never answers, and the session keeps serving', async () => {
    const platform = await startPlatform();
    platforms.push(platform);
    agents.push(
      await startAgent(
        [platform.url],
        (req, res) => {
          if (req.url === '/hang') return;
          echoHandler('c')(req, res);
        },
        { providerId: 'prv_hang' },
      ),
    );
    await waitRoutable(platform.tunnel, 1, 'prv_hang');
    const started = Date.now();
    await assert.rejects(
      platform.tunnel.request({ providerId: 'prv_hang', method: 'GET', path: '/hang', deadlineMs: 300 }),
      isCode('INSITU_TUNNEL_TIMEOUT', 504),
    );
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2000, `gave up after ${took} ms`);
    const ok = await platform.tunnel.request({ providerId: 'prv_hang', method: 'GET', path: '/fine' });
    assert.equal(ok.status, 200);
    await text(ok);
  });

  it('runs 1,000 concurrent streams over one session', async () => {
    // PING liveness is tested elsewhere; with the 1 s PING timeout of the other tests a
    // loaded machine busy with the burst of 1,000 answers could drop the session mid-read.
    const liveness = { pingIntervalMs: 5000, pingTimeoutMs: 10_000 };
    const platform = await startPlatform({ timings: liveness });
    platforms.push(platform);
    let concurrent = 0;
    let peak = 0;
    const waiting: Array<() => void> = [];
    agents.push(
      await startAgent(
        [platform.url],
        (req, res) => {
          concurrent++;
          peak = Math.max(peak, concurrent);
          const finish = (): void => {
            concurrent--;
            res.end(req.url);
          };
          waiting.push(finish);
          // Answer only once all 1,000 are in flight at once.
          if (waiting.length === 1000) for (const f of waiting.splice(0)) f();
        },
        { providerId: 'prv_many', sessions: 1, ...liveness },
      ),
    );
    await waitRoutable(platform.tunnel, 1, 'prv_many');
    const responses = await Promise.all(
      Array.from({ length: 1000 }, (_unused, i) =>
        platform.tunnel
          .request({ providerId: 'prv_many', method: 'GET', path: `/${i}`, deadlineMs: 60_000 })
          .then(text),
      ),
    );
    assert.equal(peak, 1000);
    assert.deepEqual(
      responses,
      Array.from({ length: 1000 }, (_unused, i) => `/${i}`),
    );
    assert.equal(platform.tunnel.sessions().length, 1);
  });

  it('does not let a reader that never reads stall other streams of the session', async () => {
    const platform = await startPlatform({ idleTimeoutMs: 1500 });
    platforms.push(platform);
    agents.push(
      await startAgent(
        [platform.url],
        (req, res) => {
          if (req.url === '/huge') {
            // Streams until flow control stops it; never finishes on its own.
            const stream = zeroStream(1024 * 1024 * 1024);
            stream.pipe(res);
            res.on('close', () => stream.destroy());
            return;
          }
          echoHandler('d')(req, res);
        },
        { providerId: 'prv_slow', sessions: 1 },
      ),
    );
    await waitRoutable(platform.tunnel, 1, 'prv_slow');
    const stuck = await Promise.all(
      Array.from({ length: 20 }, () =>
        platform.tunnel.request({ providerId: 'prv_slow', method: 'GET', path: '/huge' }),
      ),
    );
    const closed = stuck.map(
      (response) => new Promise<void>((resolve) => response.body.once('close', () => resolve())),
    );
    for (const response of stuck) response.body.on('error', () => undefined);
    const rssBefore = process.memoryUsage().rss;
    const quick = await Promise.all(
      Array.from({ length: 200 }, (_unused, i) =>
        platform.tunnel
          .request({ providerId: 'prv_slow', method: 'GET', path: `/q${i}`, deadlineMs: 10_000 })
          .then(text),
      ),
    );
    assert.equal(quick.length, 200);
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 200 * 1024 * 1024, `memory grew by ${Math.round(grown / 1048576)} MiB`);
    // The idle timeout ends the unread streams; the session stays.
    await Promise.all(closed);
    assert.equal(platform.tunnel.sessions()[0]?.inFlight, 0);
    const after = await platform.tunnel.request({ providerId: 'prv_slow', method: 'GET', path: '/after' });
    assert.equal(after.status, 200);
    await readAll(after.body);
  });

  it('bounds an agent that never reads request bodies: the upload times out, other requests pass', async () => {
    const platform = await startPlatform();
    platforms.push(platform);
    agents.push(
      await startAgent(
        [platform.url],
        (req, res) => {
          if (req.url === '/upload') return; // never reads, never answers
          echoHandler('e')(req, res);
        },
        { providerId: 'prv_noread', sessions: 1 },
      ),
    );
    await waitRoutable(platform.tunnel, 1, 'prv_noread');
    const body = zeroStream(512 * 1024 * 1024);
    await assert.rejects(
      platform.tunnel.request({ providerId: 'prv_noread', method: 'POST', path: '/upload', body, deadlineMs: 1000 }),
      isCode('INSITU_TUNNEL_TIMEOUT'),
    );
    assert.ok(body.readableLength <= 1024 * 1024, 'the upload stalled on flow control');
    const ok = await platform.tunnel.request({ providerId: 'prv_noread', method: 'GET', path: '/x' });
    assert.equal(ok.status, 200);
    await readAll(ok.body);
  });

  it('refuses a rejected credential with a clear error and backs off for long, without a retry storm', async () => {
    const platform = await startPlatform();
    platforms.push(platform);
    let attempts = 0;
    platform.server.prependListener('upgrade', () => attempts++);
    const agent = await startAgent([platform.url], echoHandler('x'), {
      credential: 'isu_agt_unknown',
      waitSessions: 0,
      backoff: { baseMs: 10, maxMs: 50, rejectedMs: 60_000 },
    });
    agents.push(agent);
    const rejected = await new Promise<InsituError>((resolve) => agent.once('rejected', resolve));
    assert.equal(rejected.code, 'INSITU_TUNNEL_CREDENTIAL_REJECTED');
    assert.match(rejected.message, /refused the credential/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(attempts, 1, 'one attempt, then a long back-off');
    assert.equal(agent.status().lastError?.code, 'INSITU_TUNNEL_CREDENTIAL_REJECTED');
    assert.equal(platform.tunnel.sessions().length, 0);
  });

  it('refuses a revoked credential on reconnect and closes the revoked agent’s sessions', async () => {
    const platform = await startPlatform();
    platforms.push(platform);
    const credential = credentialFor('agt_revoked', 'prv_revoked');
    const agent = await startAgent([platform.url], echoHandler('r'), { credential });
    agents.push(agent);
    await waitRoutable(platform.tunnel, 1, 'prv_revoked');
    const { credentials } = await import('./helpers.js');
    credentials.delete(credential);
    const rejected = new Promise<InsituError>((resolve) => agent.once('rejected', resolve));
    platform.tunnel.closeAgent('agt_revoked');
    assert.equal((await rejected).code, 'INSITU_TUNNEL_CREDENTIAL_REJECTED');
    await assert.rejects(
      platform.tunnel.request({ providerId: 'prv_revoked', method: 'GET', path: '/' }),
      isCode('INSITU_TUNNEL_NO_ROUTE'),
    );
  });
});
