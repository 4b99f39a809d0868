import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { waitFor } from '@insitu/core';
import { makeTempDir, removeDir } from '@insitu/test-helpers';
import {
  type InsituProcess,
  ok,
  providerAndDeveloper,
  publishApp,
  rest,
  startAgent,
  startPlatform,
  tunnelYaml,
  WORK_CONNECTION_MODES,
  writeBundle,
} from './support.js';

/*
 * What the gateway promises about a call, held on both ways a call reaches an
 * application: HTTP/2 streams (work connections off) and work connections (plain
 * HTTP/1.1 piped by the agent). A real server, a real agent, an application in bubblewrap
 * that echoes what it got, answers its own 404, sleeps, and dies in the middle of a call.
 */

const PASSWORD = 'a-long-enough-password';

const APP = `
import { createServer } from 'node:http';
const server = createServer((req, res) => {
  const path = req.url.split('?')[0];
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (path === '/healthz') return res.end('ok');
    if (path === '/echo') {
      res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'echo', 'proxy-authenticate': 'Basic' });
      return res.end(JSON.stringify({ headers: req.headers, length: body.length, text: body.toString('utf8'), pid: process.pid }));
    }
    if (path === '/slow') return setTimeout(() => res.end('late'), 20_000);
    if (path === '/die-before') return process.exit(3);
    if (path === '/die-during') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      return setTimeout(() => process.exit(3), 50);
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('the application has no ' + req.url);
  });
});
server.listen({ fd: Number(process.env.INSITU_LISTEN_FD) });
`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The answer broke off before its end. */
  broken: boolean;
}

/** One HTTP/1.1 call; `chunks` go chunked (no content-length), `body` with a content-length. */
function send(
  url: string,
  key: string,
  path: string,
  options: { method?: string; body?: string; chunks?: string[]; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, ...options.headers };
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
    else if (options.chunks) headers['transfer-encoding'] = 'chunked';
    const req = request(
      new URL(`${url}/s/guarded/${path}`),
      { method: options.method ?? (options.body !== undefined || options.chunks ? 'POST' : 'GET'), headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, broken: false }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, broken: true }));
        res.on('aborted', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, broken: true }));
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
    req.on('error', reject);
    if (options.body !== undefined) req.end(options.body);
    else {
      for (const chunk of options.chunks ?? []) req.write(chunk);
      req.end();
    }
  });
}

for (const workConnections of WORK_CONNECTION_MODES)
  describe(`a call's guarantees (work connections: ${workConnections})`, { timeout: 300_000 }, () => {
    let dir = '';
    let server: InsituProcess | undefined;
    let agent: InsituProcess | undefined;
    let url = '';
    let key = '';
    let adminToken = '';
    let devToken = '';
    let serviceId = '';

    /** Requests the server sent over work connections so far. */
    async function workRequests(): Promise<number> {
      const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      const line = text.split('\n').find((l) => l.startsWith('insitu_tunnel_work_requests_total'));
      return Number(line?.split(' ')[1] ?? 0);
    }

    /**
     * Wait until the agent has restarted the instance that died (`readyCount` instances
     * became ready so far) and calls are answered again. (Until then the agent announces
     * the deployment as starting, not running, and the platform routes nothing to it.)
     */
    async function servedAgain(readyCount: number): Promise<void> {
      await waitFor(() => (agent?.output.split('"msg":"instance ready"').length ?? 0) - 1 >= readyCount || undefined, {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: `${readyCount} instances ready so far`,
      });
      await waitFor(async () => ((await send(url, key, 'echo', { body: '{}' })).status === 200 ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 100,
        what: 'calls served again',
      });
    }

    before(async () => {
      dir = await makeTempDir('insitu-e2e-guard-');
      const db = new BetterSqlite3(join(dir, 'orders.db'));
      db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT NOT NULL)');
      db.close();
      await writeFile(
        join(dir, 'agent.yaml'),
        'sync: { intervalSeconds: 600 }\nsources:\n  - name: shop\n    kind: sqlite\n    path: ./orders.db\n    datasets:\n      orders: { description: Orders }\n' +
          tunnelYaml(workConnections),
      );
      ({ server, url, adminToken } = await startPlatform(dir));
      const { acme, dev } = await providerAndDeveloper(url, adminToken, { password: PASSWORD });
      devToken = dev.token;
      agent = await startAgent(dir, url, acme.agentToken, { name: 'agent-a' });

      const appDir = join(dir, 'app');
      await writeBundle(
        appDir,
        {
          name: 'guarded',
          version: '1.0.0',
          runtime: 'node',
          entry: 'index.mjs',
          datasets: [{ provider: 'acme-data', dataset: 'orders' }],
          endpoints: [{ method: 'POST', path: '/echo' }],
          limits: { requestTimeoutMs: 1500 },
        },
        { 'index.mjs': APP },
      );
      ({ serviceId, key } = await publishApp(url, {
        bundle: appDir,
        service: 'guarded',
        developer: dev,
        approver: acme,
        reason: 'guarded',
        replicas: 2,
        rate: { rate: 1000, burst: 1000 },
      }));
      await waitFor(async () => (await send(url, key, 'echo', { body: '{}' })).status === 200 || undefined, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'the app to answer through the gateway',
      }).catch((error: unknown) => {
        console.log(agent?.output.slice(-6000), server?.output.slice(-6000));
        throw error;
      });
    });

    after(async () => {
      await agent?.stop();
      await server?.stop();
      await removeDir(dir);
    });

    it(workConnections > 0 ? 'sends calls over work connections' : 'sends no call over work connections', async () => {
      const before = await workRequests();
      for (let i = 0; i < 5; i++) assert.equal((await send(url, key, 'echo', { body: '{}' })).status, 200);
      const after = await workRequests();
      if (workConnections > 0) assert.ok(after - before >= 4, `${after - before} of 5 calls over work connections`);
      else assert.equal(after, 0);
    });

    it('keeps the content-length, filters hop-by-hop headers and credentials, and names the request', async () => {
      const body = '{"word":"héllo"}';
      const answer = await send(url, key, 'echo?x=1', {
        body,
        headers: { 'x-custom': 'kept', 'proxy-authorization': 'secret', te: 'trailers', cookie: 'c=1' },
      });
      assert.equal(answer.status, 200, answer.text);
      const seen = JSON.parse(answer.text) as { headers: Record<string, string>; length: number; text: string };
      assert.equal(seen.headers['content-length'], String(Buffer.byteLength(body)));
      assert.equal(seen.text, body);
      assert.equal(seen.headers['x-custom'], 'kept');
      for (const dropped of ['authorization', 'proxy-authorization', 'cookie', 'te', 'transfer-encoding'])
        assert.equal(seen.headers[dropped], undefined, `${dropped} reached the application`);
      const requestId = answer.headers['insitu-request-id'];
      assert.match(String(requestId), /^req_/);
      assert.equal(seen.headers['insitu-request-id'], requestId, 'the application sees the id the caller gets');
      assert.equal(answer.headers['x-app'], 'echo');
      assert.equal(answer.headers['proxy-authenticate'], undefined, "the application's hop-by-hop headers stay behind");
    });

    it('passes a chunked body, and answers 413 to an oversized chunked one; the next call is served', async () => {
      const chunked = await send(url, key, 'echo', { chunks: ['{"parts":', '[1,2,', '3]}'] });
      assert.equal(chunked.status, 200, chunked.text);
      assert.equal((JSON.parse(chunked.text) as { text: string }).text, '{"parts":[1,2,3]}');
      await ok(url, 'PATCH', `/api/v1/services/${serviceId}`, devToken, { maxRequestBytes: 1024 });
      const big = await send(url, key, 'echo', { chunks: [`{"a":"${'x'.repeat(800)}`, `${'y'.repeat(800)}"}`] });
      assert.equal(big.status, 413, big.text);
      assert.equal(JSON.parse(big.text).error.code, 'INSITU_BODY_TOO_LARGE');
      assert.equal((await send(url, key, 'echo', { body: '{}' })).status, 200);
      await ok(url, 'PATCH', `/api/v1/services/${serviceId}`, devToken, { maxRequestBytes: 1024 * 1024 });
    });

    it("puts the request id on the application's own 404", async () => {
      const answer = await send(url, key, 'nowhere');
      assert.equal(answer.status, 404);
      assert.equal(answer.text, 'the application has no /nowhere');
      assert.match(String(answer.headers['insitu-request-id']), /^req_/);
    });

    it("answers 504 at the version's request timeout, not later", async () => {
      const answer = await send(url, key, 'slow');
      assert.equal(answer.status, 504, answer.text);
      assert.match(JSON.parse(answer.text).error.code, /^INSITU_[A-Z_]*TIMEOUT$/);
      assert.equal((await send(url, key, 'echo', { body: '{}' })).status, 200);
    });

    it('answers a coded 502 when the instance dies before answering a POST, and breaks off an answer it dies in', async () => {
      const before = await send(url, key, 'die-before', { body: '{}' });
      assert.ok([502, 503].includes(before.status), `${before.status} ${before.text}`);
      assert.match(JSON.parse(before.text).error.code, /^INSITU_(TUNNEL_UPSTREAM_FAILED|APP_UNAVAILABLE)$/);
      await servedAgain(3);
      const during = await send(url, key, 'die-during', { body: '{}' });
      assert.equal(during.status, 200, during.text);
      assert.ok(during.broken, 'the answer is broken off, not passed as complete');
      await servedAgain(4);
    });

    it('serves nothing of an undeployed version', async () => {
      const deployments = await ok(url, 'GET', '/api/v1/deployments?limit=10', devToken, undefined);
      const id = (deployments.items as Array<{ id: string }>)[0]?.id ?? '';
      const removed = await rest(url, 'DELETE', `/api/v1/deployments/${id}`, devToken);
      assert.ok([200, 202, 204].includes(removed.status), JSON.stringify(removed.body));
      await waitFor(
        async () => {
          const answer = await send(url, key, 'echo', { body: '{}' });
          return answer.status === 503 ? answer : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'calls refused after the undeploy' },
      );
      for (let i = 0; i < 5; i++) {
        const answer = await send(url, key, 'echo', { body: '{}' });
        assert.equal(answer.status, 503, `call ${i} after the undeploy: ${answer.status} ${answer.text}`);
      }
    });
  });
